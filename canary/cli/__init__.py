"""The `rollout` command line: one module per verb group, each with `register(sub)`.

Every verb is a thin wrapper over a module that does the work, so the same steps are
callable from CI workflows, tests and the controller. Errors the user can act on end
as one `error: ...` line (an inventory's as a list) and exit code 1.
"""

from __future__ import annotations

import argparse
import os
import sys

from canary.adapters.fleet import FleetError
from canary.adapters.images import ImageBuildError
from canary.adapters.local_container import ContainerError
from canary.adapters.registry import RegistryError
from canary.adapters.store import StoreError
from canary.cli import fleet, local, release, rollout
from canary.cli.common import EXIT_ERROR, EXIT_OK, UsageError
from canary.decisions.inventory import InventoryError
from canary.devtools.sandbox import SandboxError
from canary.release.artifact import ReleaseError
from canary.rollout.controller import RolloutError
from models.releases import RecipeError

VERB_GROUPS = (rollout, release, fleet, local)
KNOWN_ERRORS = (ImageBuildError, ContainerError, RecipeError, RegistryError, SandboxError, RolloutError, StoreError,
                FleetError, ReleaseError, UsageError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rollout", description="Ship TTS model versions to a GPU fleet.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in VERB_GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except InventoryError as exc:
        print(f"error: inventory {exc.source}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_ERROR
    except KNOWN_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # the reader went away (`rollout history | head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_OK
