"""The release verbs: model build/check, build, gate, publish, images, release."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from canary import REPO_ROOT
from canary.adapters import fleet as fleet_ops
from canary.adapters import images, registry
from canary.adapters.inventory import load_fleet
from canary.cli.common import EXIT_OK, Subcommands, add_group, add_verb, parse_overrides
from canary.cli.rollout import cmd_start
from canary.decisions.inventory import Fleet
from canary.decisions.policy import Policy
from canary.release.artifact import ReleaseError, check_artifact
from canary.release.gate import GateMachine, run_gate
from canary.release.publish import publish
from models.releases import RELEASES, VARIANTS


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


def insecure_registries(args: argparse.Namespace) -> tuple[str, ...]:
    """The inventory's tts_registry_insecure (none without an inventory: HTTPS only)."""
    fleet = _fleet(args)
    return fleet.registry_insecure if fleet else ()


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
        from models.recipe import build as build_model  # torch: imported only to build a model

        build_model(version, model_dir.parent)


def cmd_build(args: argparse.Namespace) -> int:
    ensure_demo_model(args.version)
    tag = images.image_tag(args.version, None)
    image_id = images.build_image(REPO_ROOT, args.version, tag, args.base_image, images.git_revision(REPO_ROOT))
    tags = [tag]
    push_registry, repository = push_target(args)
    if push_registry:
        tags.append(images.image_tag(args.version, push_registry, repository))
        images.tag_image(tag, tags[-1])
    print(f"{image_id}\t{' '.join(tags)}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    push_registry, repository = _required_target(args)
    done = publish(args.version, images.image_tag(args.version, None), push_registry, repository,
                   insecure_registries(args))
    print(f"{done.target}\t{done.digest}\t{done.action}" + (f"\t{done.note}" if done.note else ""))
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    push_registry, repository = _required_target(args)
    versions = registry.list_versions(push_registry, repository, insecure_registries(args))
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
    local = images.image_tag(version, None)
    if images.image_present(local):
        return local
    push_registry, repository = _required_target(args)
    remote = images.image_tag(version, push_registry, repository)
    try:
        images.pull_image(remote)
    except images.ImageBuildError as exc:
        raise ReleaseError(f"cannot get the live version's image to compare with: {exc}") from exc
    return remote


def cmd_gate(args: argparse.Namespace) -> int:
    fleet = _fleet(args)
    policy = fleet.policy if fleet else Policy()
    baseline = None if args.baseline == "none" else args.baseline or live_version(args)
    if baseline == args.version:
        baseline = None  # re-gating the live version: nothing else to compare with
    report = run_gate(args.version, images.image_tag(args.version, None), baseline,
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


def cmd_model_build(args: argparse.Namespace) -> int:
    from models.recipe import build as build_model  # torch: imported only to build a model

    for version in args.version:
        print(build_model(version, args.out, args.variant))
    return EXIT_OK


def _registry_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry", help="registry host:port (default: the inventory's tts_registry_push)")


def _build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-image", default=images.DEFAULT_BASE_IMAGE,
                        help="base image (default: the locally made Debian image; production: a CUDA PyTorch image)")


def _gate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", help="version to compare with (default: the one live on the inventory's "
                                           "fleet; `none`: hard checks only)")
    parser.add_argument("--report", default=str(REPO_ROOT / "build" / "reports"),
                        help="folder for gate-VERSION.md and .json")
    parser.add_argument("--gpus", default="", help="docker --gpus for the gate's containers (e.g. all): a real "
                                                   "model is gated on a GPU like the fleet's")
    parser.add_argument("--memory", default="4g", help="memory limit of the gate's containers")


def _unshipped_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-unshipped", action="store_true",
                        help="accept a test-only variant (`shipped: false`), for testing the pipeline")


def register(sub: Subcommands) -> None:
    model = add_group(sub, "model", "model artifacts")
    model_build = add_verb(model, "build", cmd_model_build, "build demo model directories from their release seeds",
                           inventory=False)
    model_build.add_argument("version", nargs="+", choices=sorted(RELEASES))
    model_build.add_argument("--variant", choices=sorted(VARIANTS), help="a broken, test-only variant")
    model_build.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "models")
    _unshipped_option(add_verb(model, "check", cmd_model_check, "verify a release's model artifact: manifest, "
                               "every file's sha256, version", version=True, inventory=False))

    build = add_verb(sub, "build", cmd_build, "build the service image for a model version", version=True)
    _registry_option(build)
    _build_options(build)
    _registry_option(add_verb(sub, "publish", cmd_publish, "push a built version's image to the registry "
                              "(tags are immutable)", version=True))
    _registry_option(add_verb(sub, "images", cmd_images, "list the versions in the registry"))
    gate = add_verb(sub, "gate", cmd_gate, "golden prompts on the image vs the live version; fails on a regression",
                    version=True)
    _registry_option(gate)
    _gate_options(gate)
    release = add_verb(sub, "release", cmd_release, "model check, build, gate, publish, then rollout start",
                       version=True, policy=True)
    for options in (_registry_option, _build_options, _gate_options, _unshipped_option):
        options(release)
    release.add_argument("--detach", action="store_true", help="leave the rollout to `rollout tick`")
