"""What every verb group of the `rollout` CLI shares: one way to declare a verb."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import yaml

from canary import DEFAULT_INVENTORY

Subcommands = argparse._SubParsersAction
Handler = Callable[[argparse.Namespace], int]
EXIT_OK, EXIT_ERROR = 0, 1


class UsageError(ValueError):
    """A command line that cannot mean anything; the message names the argument."""


def add_verb(sub: Subcommands, name: str, func: Handler, help_text: str, *, version: bool = False,
             inventory: bool = True, policy: bool = False) -> argparse.ArgumentParser:
    """A verb `name` calling `func(args)`; with the usual VERSION, `-i INVENTORY` and
    `--set KEY=VALUE` arguments where asked."""
    parser = sub.add_parser(name, help=help_text)
    if version:
        parser.add_argument("version")
    if inventory:
        parser.add_argument("-i", "--inventory", default=str(DEFAULT_INVENTORY),
                            help="the fleet's Ansible inventory (default: the sandbox's)")
    if policy:
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="override a rollout_policy value, e.g. --set dwell_s=30")
    parser.set_defaults(func=func)
    return parser


def add_group(sub: Subcommands, name: str, help_text: str) -> Subcommands:
    """A verb that takes verbs of its own (`rollout sandbox up`)."""
    return sub.add_parser(name, help=help_text).add_subparsers(dest=f"{name}_command", required=True,
                                                                metavar="COMMAND")


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`--set dwell_s=30 --set steps=[10,100]`: values are YAML scalars or lists."""
    overrides: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--set {pair!r}: expected KEY=VALUE")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides
