"""The rollout verbs: start, plan, status, abort, resume, pause, promote, set-weight,
rollback, tick, history, show."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from canary.adapters.inventory import load_fleet
from canary.adapters.metrics_server import serve_metrics
from canary.adapters.store import Record, Store, StoreError
from canary.cli.common import EXIT_ERROR, Subcommands, add_verb, parse_overrides
from canary.decisions.capacity import PlanError
from canary.decisions.controller_metrics import exposition
from canary.decisions.inventory import InventoryError
from canary.decisions.phases import Phase
from canary.decisions.plan import layout_rows, plan_rollout, planned_layouts
from canary.decisions.report import rollout_html
from canary.decisions.status import status_view
from canary.release.artifact import check_version_tag
from canary.rollout.controller import Controller, RolloutError
from canary.rollout.production import controller_for, follow, previous_version, state_path


def build_controller(args: argparse.Namespace) -> Controller:
    fleet = load_fleet(Path(args.inventory), parse_overrides(getattr(args, "set", [])))
    return controller_for(fleet, Store(state_path()))


def cmd_start(args: argparse.Namespace) -> int:
    controller = build_controller(args)
    record = controller.start(args.version, controller.fleet.policy)
    print(f"started {record.id}: {args.version} on {controller.fleet.source}")
    if args.detach:
        print("detached: `rollout tick` (a timer) advances it; `rollout status -w` follows it")
        return 0
    return follow(controller, record)


def cmd_resume(args: argparse.Namespace) -> int:
    controller = build_controller(args)
    record = controller.store.active(controller.fleet_key)
    if record is None:
        print("no active rollout on this fleet")
        return EXIT_ERROR
    record = controller.resume(args.reason, adopt_policy=args.adopt_policy)
    if args.adopt_policy:
        print(f"{record.id}: now runs with the rollout_policy in {controller.fleet.source}")
    if args.detach:
        print(f"{record.id}: {record.phase}; ticks carry it on")
        return 0
    return follow(controller, record)


def cmd_tick(args: argparse.Namespace) -> int:
    """One reconcile of every active rollout in the state store (each on the inventory
    it started from), or of the one on `-i INVENTORY`."""
    store = Store(state_path())
    sources = [Path(args.inventory)] if args.inventory else [Path(r.fleet) for r in store.all_active()]
    if not sources:
        print("no active rollout")
    failed = 0
    for source in sources:
        try:
            controller = controller_for(load_fleet(source), store)
            record = controller.tick()
            controller.notifier.flush()
            print(f"{source}: {record.id} {record.phase}" if record else f"{source}: no active rollout")
        except Exception as exc:  # noqa: BLE001 (one broken fleet must not stop the ticks of the others)
            failed += 1
            known = isinstance(exc, (InventoryError, RolloutError, StoreError))
            print(f"error: {source}: {'' if known else type(exc).__name__ + ': '}{exc}", file=sys.stderr)
    return EXIT_ERROR if failed else 0


def cmd_pause(args: argparse.Namespace) -> int:
    record = build_controller(args).pause(args.reason)
    print(f"{record.id}: {record.phase} ({record.reason})")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    record = build_controller(args).promote(args.reason, full=args.full)
    what = "every remaining step and batch" if args.full else "the current step"
    print(f"{record.id}: promoting {what} without waiting; analysis still watching")
    return 0


def cmd_set_weight(args: argparse.Namespace) -> int:
    record = build_controller(args).set_weight(args.percent, args.reason)
    print(f"{record.id}: manual mode at {args.percent}% to {record.version}; "
          "`rollout resume` or `rollout promote` hands control back")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """Abort the active rollout; with none active, roll `--to` (default: the version
    before the last success) out again by the same safe path as any release."""
    controller = build_controller(args)
    if controller.store.active(controller.fleet_key):
        return rolled_back(controller, controller.abort(args.reason))
    target = args.to or previous_version(controller.store, controller.fleet_key)
    if not target:
        raise RolloutError("no earlier version known for this fleet; say which with --to VERSION")
    record = controller.start(target, controller.fleet.policy)
    print(f"started {record.id}: rolling back to {target} ({args.reason})")
    return follow(controller, record)


def cmd_abort(args: argparse.Namespace) -> int:
    controller = build_controller(args)
    return rolled_back(controller, controller.abort(args.reason))


def rolled_back(controller: Controller, record: Record) -> int:
    """Follow an aborted rollout's roll back; one stopped before preflight passed touched no host."""
    if record.phase == Phase.PREFLIGHT_FAILED.value:
        print(f"{record.id}: stopped before {record.version} reached any host; nothing to roll back")
        return 0
    print(f"{record.id}: traffic is off {record.version}; rolling back")
    return follow(controller, record)


def live_weight(view: dict[str, Any]) -> str:
    """The canary share live on the LBs; while a stage's hosts switch or its weights go out,
    the share of the layout the LBs are given meanwhile."""
    if view["weight_live"] is not None:
        return f"{view['weight_live']}%"
    on_its_way = f" (on its way to {view['weight_set']}%)" if view["phase"] == Phase.TRAFFIC.value else ""
    return f"{view['weight_layout']}%{on_its_way}"


def traffic_summary(view: dict[str, Any]) -> str:
    """The canary's weight while a rollout runs; once it ended well, where it left all the
    traffic (its last weight, a promotion batch's share, would say otherwise). A FAILED one
    keeps its weights: they are what an operator has to put right."""
    ended_on = {Phase.SUCCEEDED.value: view["version"], Phase.ROLLED_BACK.value: view["stable_version"],
                Phase.PREFLIGHT_FAILED.value: view["stable_version"]}
    if view["phase"] in ended_on:
        return f"traffic: all of it on {ended_on[view['phase']] or 'the stable version'}"
    return f"weight: set {view['weight_set']}%  live {live_weight(view)}"


def print_status(view: dict[str, Any]) -> None:
    step = f"step {view['step']}/{len(view['steps'])}" if view["step"] else "-"
    print(f"{view['id']}  {view['version']} (stable {view['stable_version'] or '?'})  {view['phase']}  {step}")
    print(f"  {traffic_summary(view)}  canary: {', '.join(view['canary_hosts'])}")
    for server in view["lb_servers"]:
        digest = server.get("digest") or ""
        print(f"  lb  {server['address']:<24} {server['version']:<10} weight {server['weight']:<4} {server['state']:<5}"
              f" {digest[:19] + '…' if digest else ''}")
    verdict = view["last_verdict"]
    if verdict:
        print(f"  last verdict: {verdict['summary']}")
        for metric in verdict.get("metrics", []):
            print(f"    {metric['metric']:<21} {metric['verdict']:<13} {metric['reason']}")
    if view["estimate"]:
        print(f"  estimate: {view['estimate']}")
    if view["reason"]:
        print(f"  reason: {view['reason']}")


def status_markdown(view: dict[str, Any]) -> str:
    """The rollout as a Markdown report (a CI job summary)."""
    lines = [f"### Rollout {view['id']}: {view['version']} ({view['result'] or view['phase']})", "",
             f"- stable before: {view['stable_version'] or '?'}",
             f"- phase: {view['phase']}" + (f", step {view['step']}/{len(view['steps'])}" if view["step"] else ""),
             f"- reason: {view['reason'] or '-'}", "",
             "| LB server | version | weight | state |", "|---|---|---|---|"]
    lines += [f"| {s['address']} | {s['version']} | {s['weight']} | {s['state']} |" for s in view["lb_servers"]]
    verdict = view["last_verdict"]
    if verdict:
        lines += ["", f"Last analysis: {verdict['summary']}", "", "| metric | verdict | reason |", "|---|---|---|"]
        lines += [f"| {m['metric']} | {m['verdict']} | {m['reason']} |" for m in verdict.get("metrics", [])]
    return "\n".join(lines)


def open_store_for_reading() -> Store | None:
    """The state store, or None when none exists yet (reading must not create one)."""
    path = state_path()
    return Store(path, create_if_missing=False) if path.exists() else None


def cmd_status(args: argparse.Namespace) -> int:
    fleet = load_fleet(Path(args.inventory))
    key = str(fleet.source.resolve())
    store = None
    while True:
        store = store or open_store_for_reading()
        record = store and store.current(key)
        if not record:
            message = ("no rollouts on this fleet yet" if store else
                       f"no rollouts recorded yet: no state store at {state_path()} (VOXFLEET_STATE_DIR)")
            print(json.dumps({"id": None, "phase": None, "message": message}) if args.json else message)
            return 0
        view = status_view(record, time.time())
        if args.json:
            print(json.dumps(view, indent=2))
        elif args.markdown:
            print(status_markdown(view))
        else:
            if args.watch:
                print("\033[2J\033[H", end="")
            print_status(view)
        if not args.watch or Phase(record.phase).terminal:
            return 0
        time.sleep(2.0)


def cmd_plan(args: argparse.Namespace) -> int:
    """What `start` would do, stage by stage, with each host's expected share of the load
    next to its share of the capacity; refuses a policy the fleet cannot honour."""
    check_version_tag(args.version)
    fleet = load_fleet(Path(args.inventory), parse_overrides(args.set))
    try:
        state = plan_rollout(fleet, fleet.policy, "plan", args.version, stable_version="(current)")
    except PlanError as exc:
        raise RolloutError(f"the policy cannot be honoured on {fleet.source}: {exc}") from exc
    stages: list[dict[str, Any]] = [{"stage": name, "hosts": layout_rows(state, layout)}
                                    for name, layout in planned_layouts(state)]
    policy = fleet.policy
    if args.json:
        print(json.dumps({"version": args.version, "inventory": str(fleet.source), "canary_hosts": state.canary_hosts,
                          "canary_headroom": policy.canary_headroom, "stages": stages}, indent=2))
        return 0
    print(f"plan for {args.version} on {fleet.source} (changes nothing)")
    print(f"  pre-pull on: {', '.join(state.upstream)}; warm-up gate: golden prompts on "
          f"{', '.join(state.canary_hosts)} vs {state.stable_hosts[0]}")
    print(f"  each step and batch: dwell ≥ {policy.dwell_s}s and ≥ {policy.min_requests} requests on the new version, "
          f"analysis every {policy.interval_s}s; no host above {1 + policy.canary_headroom:.2f}× its capacity share")
    sources = {"access_log": "every LB's access log", "prometheus": f"Prometheus at {policy.prometheus_url}",
               "both": f"every LB's access log and Prometheus at {policy.prometheus_url}"}
    print(f"  judged from {sources[policy.evidence]}")
    for stage in stages:
        print(f"  {stage['stage']}")
        for row in stage["hosts"]:
            load = f"{row['load_share']:6.1%} of load" if row["in_service"] else "  out of traffic"
            print(f"      {row['host']:<12} {row['version']:<10} {load}  {row['capacity_share']:6.1%} of capacity  "
                  f"×{row['ratio']:.2f}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    store = open_store_for_reading()
    if store is None:
        print("[]" if args.json else f"no rollouts recorded yet: no state store at {state_path()}")
        return 0
    fleet = str(load_fleet(Path(args.inventory)).source.resolve()) if args.inventory else None
    records = store.history(fleet, limit=args.limit)
    if args.json:
        print(json.dumps([_record_dict(r, store) for r in records], indent=2, default=str))
        return 0
    for r in records:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started_at))
        ended = time.strftime("%H:%M:%S", time.localtime(r.ended_at)) if r.ended_at else "-"
        built = f"{(r.image_digest or '-').removeprefix('sha256:')[:12]}@{(r.git_revision or '-')[:12]}"
        print(f"{r.id}  {r.version:<10} {started} → {ended:<8} {r.result or r.phase:<16} {built:<25} "
              f"{r.reason or ''}")
    return 0


def _record_dict(record: Record, store: Store, events: bool = False) -> dict[str, Any]:
    data = {"id": record.id, "version": record.version,
            "stable_version": record.stable_version or record.state.get("stable_version"),
            "phase": record.phase, "result": record.result, "reason": record.reason,
            "image_digest": record.image_digest or record.state.get("image_digest"),
            "git_revision": record.git_revision,
            "started_at": record.started_at, "ended_at": record.ended_at}
    if events:
        data["events"] = [{"seq": e.seq, "at": e.at, "kind": e.kind, "actor": e.actor, "data": e.data}
                          for e in store.events(record.id)]
    return data


def _metrics_text() -> str:
    store = open_store_for_reading()
    if store is None:
        return ""
    with store:
        return exposition(store.history(limit=None))


def cmd_metrics(args: argparse.Namespace) -> int:
    if args.serve is None:
        print(_metrics_text(), end="")
        return 0
    server = serve_metrics(_metrics_text, args.bind, args.serve)
    print(f"serving the controller's metrics on http://{args.bind}:{server.server_address[1]}/metrics "
          f"(state store {state_path()})",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = Store(state_path(), create_if_missing=False)
    story = _record_dict(store.get(args.rollout_id), store, events=True)
    if args.html:
        Path(args.html).write_text(rollout_html(json.loads(json.dumps(story, default=str))))
        print(f"wrote {args.html}: open it in a browser (file://{Path(args.html).resolve()})")
        return 0
    print(json.dumps(story, indent=2, default=str))
    return 0


def register(sub: Subcommands) -> None:
    start = add_verb(sub, "start", cmd_start, "roll a published version out: canary, judge, promote or roll back",
                     version=True, policy=True)
    start.add_argument("--detach", action="store_true", help="leave the rollout to `rollout tick`")
    plan = add_verb(sub, "plan", cmd_plan, "show what start would do, changing nothing", version=True, policy=True)
    plan.add_argument("--json", action="store_true", help="the same as data")
    status = add_verb(sub, "status", cmd_status, "where the rollout stands")
    status.add_argument("-w", "--watch", action="store_true")
    status.add_argument("--json", action="store_true")
    status.add_argument("--markdown", action="store_true", help="a report for a CI job summary")
    abort = add_verb(sub, "abort", cmd_abort, "traffic off the new version now, then roll back")
    abort.add_argument("--reason", default="operator abort")
    resume = add_verb(sub, "resume", cmd_resume, "continue the active rollout (after a crash, or a pause)")
    resume.add_argument("--reason", default="operator resume")
    resume.add_argument("--detach", action="store_true", help="record the resume and leave the rollout to ticks")
    resume.add_argument("--adopt-policy", action="store_true",
                        help="take the inventory's rollout_policy as it is now (not steps, batch_size, "
                             "canary_headroom, canary_hosts: the plan is built from them)")
    pause = add_verb(sub, "pause", cmd_pause, "hold the rollout where it is (traffic stays as it is)")
    pause.add_argument("--reason", default="operator pause")
    promote = add_verb(sub, "promote", cmd_promote, "skip the current step's wait (--full: all remaining steps now)")
    promote.add_argument("--full", action="store_true")
    promote.add_argument("--reason", default="operator promote")
    weight = add_verb(sub, "set-weight", cmd_set_weight, "manual mode: hold the new version at N%% of traffic")
    weight.add_argument("percent", type=int)
    weight.add_argument("--reason", default="operator set-weight")
    rollback = add_verb(sub, "rollback", cmd_rollback,
                        "abort the active rollout, or roll a previous version out again", policy=True)
    rollback.add_argument("--to", help="version to put back (default: the one before the last success)")
    rollback.add_argument("--reason", default="operator rollback")
    tick = add_verb(sub, "tick", cmd_tick, "advance every active rollout by one reconcile, then exit (for timers)")
    tick.set_defaults(inventory=None)
    history = add_verb(sub, "history", cmd_history, "past rollouts")
    history.add_argument("--json", action="store_true")
    history.add_argument("--limit", type=int, default=50)
    metrics = add_verb(sub, "metrics", cmd_metrics, "the controller's metrics for Prometheus (phase, step, weights, "
                       "last verdict, rollouts by result)", inventory=False)
    metrics.add_argument("--serve", type=int, metavar="PORT", help="serve them on GET /metrics instead of printing")
    metrics.add_argument("--bind", default="127.0.0.1", help="the address to serve on (default 127.0.0.1)")
    show = add_verb(sub, "show", cmd_show, "one rollout's full story (JSON, or --html: a page with its timeline)",
                    inventory=False)
    show.add_argument("rollout_id")
    show.add_argument("--html", metavar="FILE", help="write a self-contained page: weights, error and shed rate, "
                      "latency per version over time, verdicts and operator actions")
