"""The local verbs, for a developer's machine: the sandbox fleet, and one version's
image run hardened on the local Docker engine."""

from __future__ import annotations

import argparse

from canary import DEFAULT_INVENTORY, REPO_ROOT
from canary.adapters import images, local_container
from canary.cli.common import EXIT_ERROR, EXIT_OK, Subcommands, UsageError, add_group, add_verb
from canary.devtools import sandbox


def cmd_sandbox(args: argparse.Namespace) -> int:
    if args.sandbox_command == "up":
        capacities = tuple(args.capacity or ())
        if capacities and args.hosts not in (None, len(capacities)):
            raise UsageError(f"--hosts {args.hosts} but --capacity names {len(capacities)} hosts")
        spec = sandbox.SandboxSpec(hosts=len(capacities) or args.hosts or 3, lbs=args.lbs, capacities=capacities)
        for name, what in sandbox.up(spec, DEFAULT_INVENTORY, REPO_ROOT).items():
            print(f"{name:<20} {what}")
        urls = ", ".join(f"http://127.0.0.1:{spec.lb_http_port(j)}" for j in spec.lb_numbers)
        print(f"inventory: {DEFAULT_INVENTORY / 'hosts.yml'}\nload balancers: {urls}")
    elif args.sandbox_command == "down":
        removed = sandbox.down(DEFAULT_INVENTORY, remove_images=args.images)
        print("\n".join(f"removed {r}" for r in removed) or "nothing to remove")
    else:
        existing = sandbox.load_spec(DEFAULT_INVENTORY)
        if existing is None:
            print("no sandbox (run `rollout sandbox up`)")
            return EXIT_ERROR
        for row in sandbox.status(existing):
            print(f"{row['name']:<20} {row['role']:<10} {row['state']:<8} {row['runs']}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    tag = images.image_tag(args.version, args.registry)
    name = local_container.container_name(args.version)
    options = local_container.RunOptions(port=args.port, bind=args.bind,
                                         env=(("IMAGE_TAG", tag),))
    print(f"starting {tag} as {name} on {args.bind}:{args.port} (waits until the model speaks)…", flush=True)
    local_container.run(tag, name, options)
    base = f"http://{args.bind}:{args.port}"
    from service.golden import model_voice  # numpy and soundfile: only for this verb

    voice = model_voice(base)
    print(f"ready: {name} serves {args.version}\n"
          f"  web UI:   {base}/ui/\n"
          f"  speech:   curl -o hello.wav -H 'content-type: application/json' "
          f"-d '{{\"model\":\"tts-1\",\"input\":\"Hello!\",\"voice\":\"{voice}\",\"response_format\":\"wav\"}}' "
          f"{base}/v1/audio/speech\n"
          f"  health:   {base}/readyz   metrics: {base}/metrics   version: {base}/version\n"
          f"  stop it:  make run-image-stop  (or: rollout stop {args.version})")
    return EXIT_OK


def cmd_stop(args: argparse.Namespace) -> int:
    name = local_container.container_name(args.version)
    print(f"removed {name}" if local_container.remove(name) else f"{name} was not running")
    return EXIT_OK


def capacity_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--capacity {text!r}: whole numbers separated by commas") from None
    if not 2 <= len(values) <= 16 or any(not 1 <= v <= 4 for v in values):
        raise argparse.ArgumentTypeError(f"--capacity {text!r}: 2 to 16 hosts of capacity 1 to 4")
    return values


def register(sub: Subcommands) -> None:
    group = add_group(sub, "sandbox", "the local sandbox fleet")
    up = add_verb(group, "up", cmd_sandbox, "create or reconcile the sandbox (idempotent)", inventory=False)
    up.add_argument("--hosts", type=int, choices=range(2, 17), metavar="N", help="GPU-host stand-ins (default 3)")
    up.add_argument("--lbs", type=int, choices=range(1, 5), metavar="M", default=2,
                    help="nginx LB hosts, each with its own log and published port (default 2, an HA pair)")
    up.add_argument("--capacity", type=capacity_list, metavar="C,C,…",
                    help="each host's capacity, e.g. 1,1,2 (a whole number each; default 1)")
    down = add_verb(group, "down", cmd_sandbox, "remove exactly what `up` created", inventory=False)
    down.add_argument("--images", action="store_true", help="also remove the sandbox images")
    add_verb(group, "status", cmd_sandbox, "each sandbox host and what it runs", inventory=False)

    run = add_verb(sub, "run", cmd_run, "run a version's image on the local Docker engine, hardened",
                   version=True, inventory=False)
    run.add_argument("--registry")
    run.add_argument("--port", type=int, default=6006)
    run.add_argument("--bind", default="127.0.0.1")
    add_verb(sub, "stop", cmd_stop, "remove the local container of a version", version=True, inventory=False)
