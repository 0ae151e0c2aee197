"""The `rollout` command line.

Each subcommand is a thin wrapper over a module that does the work, so the same
steps are callable from CI workflows, tests and the controller.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from canary import fleet_report, images, local_container, registry, sandbox
from canary.fleet import FleetError
from canary.inventory import InventoryError, load_fleet
from canary.release import commands as release_commands
from canary.release.artifact import ReleaseError
from canary.rollout import commands as rollout_commands
from canary.rollout.controller import RolloutError
from canary.store import StoreError
from models.recipe import RecipeError
from models.recipe import build as build_model
from models.releases import RELEASES, VARIANTS

REPO_ROOT = Path(__file__).resolve().parents[1]
SANDBOX_INVENTORY = REPO_ROOT / "inventory" / "sandbox"
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def cmd_model_build(args: argparse.Namespace) -> int:
    for version in args.version:
        path = build_model(version, args.out, args.variant)
        print(path)
    return EXIT_OK


def cmd_sandbox(args: argparse.Namespace) -> int:
    if args.sandbox_command == "up":
        spec = sandbox.SandboxSpec(hosts=args.hosts)
        for name, what in sandbox.up(spec, SANDBOX_INVENTORY, REPO_ROOT).items():
            print(f"{name:<20} {what}")
        print(f"inventory: {SANDBOX_INVENTORY / 'hosts.yml'}\nload balancer: http://127.0.0.1:{spec.http_port}")
    elif args.sandbox_command == "down":
        removed = sandbox.down(SANDBOX_INVENTORY, remove_images=args.images)
        print("\n".join(f"removed {r}" for r in removed) or "nothing to remove")
    else:
        spec = sandbox.load_spec(SANDBOX_INVENTORY)
        if spec is None:
            print("no sandbox (run `rollout sandbox up`)")
            return EXIT_ERROR
        for row in sandbox.status(spec):
            print(f"{row['name']:<18} {row['role']:<9} {row['state']:<8} {row['runs']}")
    return EXIT_OK


def cmd_inventory_check(args: argparse.Namespace) -> int:
    fleet = load_fleet(Path(args.inventory))
    print(f"inventory {fleet.source}: ok")
    for node in fleet.nodes:
        print(f"  {node.name:<10} {node.upstream:<24} gpus={node.gpu_count} "
              f"{'canary-eligible' if node.canary_eligible else ''}")
    print(f"  lb: {', '.join(fleet.lbs)}   registry: {fleet.registry}   steps: {list(fleet.policy.steps)}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    tag = release_commands.image_tag(args.version, args.registry)
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
    mc = model.add_parser("check", help="verify a release's model artifact: manifest, every file's sha256, version")
    mc.add_argument("version")
    mc.add_argument("--allow-unshipped", action="store_true", help="accept a test-only variant")
    mc.set_defaults(func=release_commands.cmd_model_check)

    sb = sub.add_parser("sandbox", help="the local sandbox fleet").add_subparsers(dest="sandbox_command",
                                                                                 required=True)
    sb_up = sb.add_parser("up", help="create or reconcile the sandbox (idempotent)")
    sb_up.add_argument("--hosts", type=int, default=3, choices=range(2, 17), metavar="N")
    sb_down = sb.add_parser("down", help="remove exactly what `up` created")
    sb_down.add_argument("--images", action="store_true", help="also remove the sandbox images")
    sb.add_parser("status", help="each sandbox host and what it runs")
    for parser_ in (sb_up, sb_down, sb.choices["status"]):
        parser_.set_defaults(func=cmd_sandbox)

    inv = sub.add_parser("inventory", help="inventory tools").add_subparsers(dest="inventory_command", required=True)
    ic = inv.add_parser("check", help="validate an inventory and name each mistake")
    ic.add_argument("-i", "--inventory", default=str(SANDBOX_INVENTORY))
    ic.set_defaults(func=cmd_inventory_check)

    release_commands.register(sub, str(SANDBOX_INVENTORY))
    fleet_report.register(sub, str(SANDBOX_INVENTORY))
    rollout_commands.register(sub, str(SANDBOX_INVENTORY))

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
    except InventoryError as exc:
        print(f"error: inventory {exc.source}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_ERROR
    except (images.ImageBuildError, local_container.ContainerError, RecipeError, registry.RegistryError,
            sandbox.SandboxError, RolloutError, StoreError, FleetError, ReleaseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
