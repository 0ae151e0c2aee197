"""The release verbs of the `rollout` CLI: model check, build, gate, publish, images, release."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter
from pathlib import Path

from canary import fleet as fleet_ops
from canary import images, registry
from canary.inventory import Fleet, load_fleet
from canary.policy import Policy
from canary.release.artifact import ReleaseError, check_artifact
from canary.release.gate import GateMachine, run_gate
from canary.release.publish import publish
from canary.rollout.commands import cmd_start, parse_overrides
from models.recipe import build as build_model
from models.releases import RELEASES

REPO_ROOT = Path(__file__).resolve().parents[2]


def image_tag(version: str, registry_address: str | None, repository: str = "tts") -> str:
    return f"{registry_address.rstrip('/')}/{repository}:{version}" if registry_address else f"tts:{version}"


def _fleet(args: argparse.Namespace) -> Fleet | None:
    """The inventory's fleet (with `--set` overrides), read once per command: every
    release step asks for it and each read runs ansible-inventory. None: no inventory."""
    if not hasattr(args, "_fleet"):
        inventory = Path(args.inventory)
        exists = (inventory / "hosts.yml").exists() or inventory.is_file()
        args._fleet = load_fleet(inventory, parse_overrides(getattr(args, "set", []))) if exists else None
    return args._fleet


def push_target(args: argparse.Namespace) -> tuple[str | None, str]:
    """(registry to push to, repository): --registry, else the inventory's when it exists."""
    if args.registry:
        return args.registry, "tts"
    fleet = _fleet(args)
    return (fleet.registry_push, fleet.repository) if fleet else (None, "tts")


def _required_target(args: argparse.Namespace) -> tuple[str, str]:
    push_registry, repository = push_target(args)
    if not push_registry:
        raise ReleaseError("no registry: pass --registry HOST:PORT or an inventory with tts_registry_push")
    return push_registry, repository


def cmd_model_check(args: argparse.Namespace) -> int:
    manifest = check_artifact(REPO_ROOT, args.version, args.allow_unshipped)
    print(f"{manifest.version}\t{manifest.sha256}\t{len(manifest.files)} files verified\t{manifest.directory}")
    return 0


def ensure_demo_model(version: str) -> None:
    """Demo releases are rebuilt from their recipe when their model directory is missing."""
    model_dir = REPO_ROOT / "build" / "models" / version
    if not model_dir.exists() and version in RELEASES:
        print(f"building the demo model {version} from its recipe into {model_dir}", file=sys.stderr)
        build_model(version, model_dir.parent)


def cmd_build(args: argparse.Namespace) -> int:
    ensure_demo_model(args.version)
    tag = image_tag(args.version, None)
    image_id = images.build_image(REPO_ROOT, args.version, tag, args.base_image, images.git_revision(REPO_ROOT))
    tags = [tag]
    push_registry, repository = push_target(args)
    if push_registry:
        tags.append(image_tag(args.version, push_registry, repository))
        images.tag_image(tag, tags[-1])
    print(f"{image_id}\t{' '.join(tags)}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    push_registry, repository = _required_target(args)
    done = publish(args.version, image_tag(args.version, None), push_registry, repository)
    print(f"{done.target}\t{done.digest}\t{done.action}" + (f"\t{done.note}" if done.note else ""))
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    push_registry, repository = _required_target(args)
    versions = registry.list_versions(push_registry, repository)
    for item in versions:
        print(f"{item.version}\t{item.digest}")
    if not versions:
        print(f"no versions in {push_registry}/{repository}")
    return 0


def live_version(args: argparse.Namespace) -> str | None:
    """The version the fleet serves now (None: nothing deployed yet, or no inventory)."""
    fleet = _fleet(args)
    if fleet is None:
        return None
    running = [s.version for s in fleet_ops.facts(fleet, strict=True).values()
               if s.version and s.container_state == "running"]
    return Counter(running).most_common(1)[0][0] if running else None


def baseline_image(version: str, args: argparse.Namespace) -> str:
    """A local image of the live version: built here, or pulled from the registry."""
    local = image_tag(version, None)
    if images.image_present(local):
        return local
    push_registry, repository = _required_target(args)
    remote = image_tag(version, push_registry, repository)
    pulled = subprocess.run(["docker", "pull", remote], capture_output=True, text=True)
    if pulled.returncode != 0:
        raise ReleaseError(f"cannot get the live version's image {remote} to compare with: {pulled.stderr.strip()}")
    return remote


def cmd_gate(args: argparse.Namespace) -> int:
    fleet = _fleet(args)
    policy = fleet.policy if fleet else Policy()
    baseline = None if args.baseline == "none" else args.baseline or live_version(args)
    if baseline == args.version:
        baseline = None  # re-gating the live version: nothing else to compare with
    report = run_gate(args.version, image_tag(args.version, None), baseline,
                      baseline_image(baseline, args) if baseline else None, policy,
                      GateMachine(gpus=args.gpus, memory=args.memory))
    print(report.markdown())
    markdown, _ = report.save(Path(args.report))
    print(f"\nreport: {markdown}")
    if not report.passed:
        raise ReleaseError(f"{args.version} failed the release gate: {'; '.join(report.problems)}")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    """model check → build → gate → publish → start, stopping at the first refusal."""
    ensure_demo_model(args.version)
    steps = [("model check", cmd_model_check), ("build", cmd_build), ("gate", cmd_gate), ("publish", cmd_publish)]
    for i, (name, step) in enumerate(steps, 1):
        print(f"== release {args.version}: {i}/{len(steps) + 1} {name}", flush=True)
        step(args)
    print(f"== release {args.version}: {len(steps) + 1}/{len(steps) + 1} rollout start", flush=True)
    return cmd_start(args)


def register(sub: argparse._SubParsersAction, inventory_default: str) -> None:
    def add(name: str, func, help_text: str, *options: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text)
        parser.add_argument("version")
        parser.add_argument("-i", "--inventory", default=inventory_default)
        if "registry" in options:
            parser.add_argument("--registry", help="registry host:port (default: the inventory's tts_registry_push)")
        if "build" in options:
            parser.add_argument("--base-image", default=images.DEFAULT_BASE_IMAGE,
                                help="base image (default: the locally made Debian image; production: a CUDA "
                                     "PyTorch image)")
        if "gate" in options:
            parser.add_argument("--baseline", help="version to compare with (default: the one live on the "
                                                   "inventory's fleet; `none`: hard checks only)")
            parser.add_argument("--report", default=str(REPO_ROOT / "build" / "reports"),
                                help="folder for gate-VERSION.md and .json")
            parser.add_argument("--gpus", default="", help="docker --gpus for the gate's containers (e.g. all): "
                                                           "a real model is gated on a GPU like the fleet's")
            parser.add_argument("--memory", default="4g", help="memory limit of the gate's containers")
        if "model" in options:
            parser.add_argument("--allow-unshipped", action="store_true",
                                help="accept a test-only variant (`shipped: false`), for testing the pipeline")
        parser.set_defaults(func=func)
        return parser

    add("build", cmd_build, "build the service image for a model version", "registry", "build")
    add("publish", cmd_publish, "push a built version's image to the registry (tags are immutable)", "registry")
    images_parser = sub.add_parser("images", help="list the versions in the registry")
    images_parser.add_argument("--registry")
    images_parser.add_argument("-i", "--inventory", default=inventory_default)
    images_parser.set_defaults(func=cmd_images)
    add("gate", cmd_gate, "golden prompts on the image vs the live version; fails on a regression", "registry",
        "gate")
    release = add("release", cmd_release, "model check, build, gate, publish, then rollout start",
                  "registry", "build", "gate", "model")
    release.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="override a rollout_policy value for the rollout, e.g. --set dwell_s=30")
    release.add_argument("--detach", action="store_true", help="leave the rollout to `rollout tick`")
