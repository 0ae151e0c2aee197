"""The `rollout` command line.

Each subcommand is a thin wrapper over a module that does the work, so the same
steps are callable from CI workflows, tests and the controller.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from canary import images, local_container
from models.recipe import RecipeError
from models.recipe import build as build_model
from models.releases import RELEASES, VARIANTS

REPO_ROOT = Path(__file__).resolve().parents[1]
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def image_tag(version: str, registry: str | None) -> str:
    return f"{registry.rstrip('/')}/tts:{version}" if registry else f"tts:{version}"


def cmd_model_build(args: argparse.Namespace) -> int:
    for version in args.version:
        path = build_model(version, args.out, args.variant)
        print(path)
    return EXIT_OK


def cmd_build(args: argparse.Namespace) -> int:
    model_dir = REPO_ROOT / "build" / "models" / args.version
    if not model_dir.exists() and args.version in RELEASES:
        build_model(args.version, model_dir.parent)  # demo releases are rebuilt from their recipe
    tag = image_tag(args.version, args.registry)
    image_id = images.build_image(REPO_ROOT, args.version, tag, args.base_image, images.git_revision(REPO_ROOT))
    print(f"{tag}\t{image_id}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    tag = image_tag(args.version, args.registry)
    name = local_container.container_name(args.version)
    options = local_container.RunOptions(port=args.port, bind=args.bind,
                                         env=(("IMAGE_TAG", tag),))
    print(f"starting {tag} as {name} on {args.bind}:{args.port} (waits until the model speaks)…", flush=True)
    local_container.run(tag, name, options)
    base = f"http://{args.bind}:{args.port}"
    print(f"ready: {name} serves {args.version}\n"
          f"  web UI:   {base}/ui/\n"
          f"  speech:   curl -o hello.wav -H 'content-type: application/json' "
          f"-d '{{\"model\":\"tts-1\",\"input\":\"Hello!\",\"voice\":\"alloy\",\"response_format\":\"wav\"}}' "
          f"{base}/v1/audio/speech\n"
          f"  health:   {base}/readyz   metrics: {base}/metrics   version: {base}/version\n"
          f"  stop it:  make demo-stop  (or: rollout stop {args.version})")
    return EXIT_OK


def cmd_stop(args: argparse.Namespace) -> int:
    name = local_container.container_name(args.version)
    print(f"removed {name}" if local_container.remove(name) else f"{name} was not running")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rollout", description="Ship TTS model versions to a GPU fleet.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    model = sub.add_parser("model", help="model artifacts").add_subparsers(dest="model_command", required=True)
    mb = model.add_parser("build", help="build demo model directories from their release seeds")
    mb.add_argument("version", nargs="+", choices=sorted(RELEASES))
    mb.add_argument("--variant", choices=sorted(VARIANTS), help="a broken, test-only variant")
    mb.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "models")
    mb.set_defaults(func=cmd_model_build)

    b = sub.add_parser("build", help="build the service image for a model version")
    b.add_argument("version")
    b.add_argument("--registry", help="registry host:port to prefix the tag with")
    b.add_argument("--base-image", default=images.DEFAULT_BASE_IMAGE,
                   help="base image (default: the locally made Debian image; production: a CUDA PyTorch image)")
    b.set_defaults(func=cmd_build)

    r = sub.add_parser("run", help="run a version's image on the local Docker engine, hardened")
    r.add_argument("version")
    r.add_argument("--registry")
    r.add_argument("--port", type=int, default=6006)
    r.add_argument("--bind", default="127.0.0.1")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("stop", help="remove the local container of a version")
    s.add_argument("version")
    s.set_defaults(func=cmd_stop)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (images.ImageBuildError, local_container.ContainerError, RecipeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
