"""Command line for the model recipe: `python -m models build VERSION [--variant V] [--out DIR]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.recipe import RecipeError, build
from models.releases import RELEASES, VARIANTS
from service.model_dir import read_manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build a demo model directory from its release seed")
    b.add_argument("version", nargs="+", help=f"release(s): {', '.join(RELEASES)}")
    b.add_argument("--variant", choices=sorted(VARIANTS), help="a broken test-only variant")
    b.add_argument("--out", type=Path, default=Path("build/models"))
    sub.add_parser("list", help="list releases and variants")
    args = parser.parse_args(argv)
    if args.command == "list":
        print("releases:", " ".join(RELEASES))
        print("variants:", " ".join(VARIANTS))
        return 0
    for version in args.version:
        try:
            directory = build(version, args.out, args.variant)
        except RecipeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        manifest = read_manifest(directory)
        print(f"{manifest.version}\t{manifest.sha256}\t{directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
