"""Command line for the model recipe and artifacts.

    python -m models build VERSION... [--variant V] [--out DIR]
    python -m models pack VERSION [--models build/models] [--out build/artifacts]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.artifact import pack
from models.recipe import RecipeError, build
from models.releases import RELEASES, VARIANTS
from service.model_dir import ModelDirError, read_manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build a demo model directory from its release seed")
    b.add_argument("version", nargs="+", help=f"release(s): {', '.join(RELEASES)}")
    b.add_argument("--variant", choices=sorted(VARIANTS), help="a broken test-only variant")
    b.add_argument("--out", type=Path, default=Path("build/models"))
    p = sub.add_parser("pack", help="pack a model directory as a reproducible tar.gz for MODEL_URI")
    p.add_argument("version", help="the model directory <--models>/<VERSION>")
    p.add_argument("--models", type=Path, default=Path("build/models"), help="where model directories live")
    p.add_argument("--out", type=Path, default=Path("build/artifacts"), help="writes <OUT>/<VERSION>.tar.gz")
    sub.add_parser("list", help="list releases and variants")
    args = parser.parse_args(argv)
    if args.command == "pack":
        return _pack(args.version, args.models, args.out)
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


def _pack(version: str, models: Path, out_dir: Path) -> int:
    model_dir, out = models / version, out_dir / f"{version}.tar.gz"
    try:
        manifest = read_manifest(model_dir)
        if manifest.version != version:
            raise ModelDirError(f"{model_dir / 'manifest.json'}: version {manifest.version}, expected {version}")
        sha256 = pack(model_dir, out)
    except ModelDirError as exc:
        hint = f" (make it with: python -m models build {version} --out {models})" if version in RELEASES else ""
        print(f"error: {exc}{hint}", file=sys.stderr)
        return 2
    (out_dir / f"{version}.tar.gz.sha256").write_text(f"{sha256}  {out.name}\n")
    print(f"{sha256}  {out}")
    print(f"serve it with MODEL_URI=<where {out.name} is published> MODEL_URI_SHA256={sha256}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
