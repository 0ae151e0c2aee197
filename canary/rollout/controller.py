"""The reconcile loop: one `tick()` moves the active rollout one step, durably.

Each phase's action is idempotent and the phase is written to the store before the
action runs, so a controller killed at any instant resumes by running the same
action again (`rollout tick`), never by jumping traffic somewhere it did not mean to.
Deciding is delegated to pure functions in `canary.decisions` (`plan.traffic_layout`,
`steps.decide_step`, the judge); acting goes through the ports.
"""

from __future__ import annotations

import getpass
import os
import platform
import signal
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from canary.adapters.fleet import FleetError
from canary.adapters.lb_traffic import TrafficChangeError
from canary.adapters.notify import Notice, NullNotifier, WebhookNotifier, notifier_for
from canary.adapters.private_files import forget_secrets, save_secret
from canary.adapters.prometheus import PrometheusSource, PrometheusUnavailable
from canary.adapters.store import ActiveRolloutError, ConcurrentUpdateError, Record, Store
from canary.decisions.access_log import Attempt, Request
from canary.decisions.capacity import Layout, PlanError, drain_shortfall, peak
from canary.decisions.drift import WAY_OUT, inventory_drift, on_listed_hosts
from canary.decisions.inventory import Fleet
from canary.decisions.judge import Verdict, judge
from canary.decisions.phases import Phase
from canary.decisions.plan import RolloutState, plan_rollout, traffic_layout
from canary.decisions.policy import PLAN_KEYS, Policy, parse_policy, policy_changes, stored_policy
from canary.decisions.prometheus_evidence import both, judge_totals, unavailable
from canary.decisions.quality import compare
from canary.decisions.status import event_line
from canary.decisions.steps import decide_step, rollback_targets
from canary.decisions.traffic import check_version
from canary.rollout.ports import (
    AggregatePort,
    Clock,
    FleetPort,
    MetricsPort,
    ProbePort,
    RegistryPort,
    TrafficPort,
)

# How a new stage starts being judged: weights to re-apply, samples from the next cursor.
JUDGING_AFRESH: dict[str, Any] = {"weight_live": None, "step_cursor": {}, "looks": 0, "consecutive_fails": 0,
                                  "inconclusive_since": None, "skip_wait": False}
LOAD_WINDOW_S = 60.0  # the request rate a drain must fit is measured over this long
TICK_LEASE_S = 1800  # longer than any single action (a deploy waits for health)
# Crash tests set this to an event kind ("enter CANARY_DEPLOY", "weights live", ...), or to
# "*N" for the N-th event this process records ("*": the first): the controller then dies
# by SIGKILL right after recording it, before acting on it: the worst instant for a crash,
# state written and action not done.
CRASH_AFTER_ENV = "VOXFLEET_CRASH_AFTER"
NOTIFY_SECRET = "notify_url"  # the file name next to the state store holding a rollout's webhook


def _crash_now(crash_after: str, kind: str, recorded: int) -> bool:
    if crash_after.startswith("*"):
        return recorded == int(crash_after[1:] or 1)
    return crash_after == kind


class RolloutError(RuntimeError):
    """The rollout cannot go on as asked; the message names the cause."""


class Superseded(RuntimeError):
    """Another process (an operator's abort) changed the rollout; reload and go on."""


OPERATOR_PHASES = (Phase.TRAFFIC, Phase.PAUSED)
NOTICES = {Phase.PREFLIGHT: "started", Phase.PAUSED: "paused", Phase.ROLLED_BACK: "rolled_back",
           Phase.SUCCEEDED: "succeeded", Phase.FAILED: "failed", Phase.PREFLIGHT_FAILED: "preflight_failed"}


class Controller:
    def __init__(self, fleet: Fleet, store: Store, fleet_port: FleetPort, traffic: TrafficPort,
                 metrics: MetricsPort, probe: ProbePort, registry: RegistryPort, clock: Clock,
                 actor: str | None = None, log: Callable[[str], None] = lambda _: None,
                 notifier: NullNotifier | WebhookNotifier | None = None, calendar: Clock | None = None,
                 aggregates: Callable[[str], AggregatePort] = PrometheusSource) -> None:
        self.fleet, self.store, self.fleet_port, self.traffic = fleet, store, fleet_port, traffic
        self.metrics, self.probe, self.registry, self.clock = metrics, probe, registry, clock
        self.calendar = calendar or clock  # the time promotion windows are judged at
        self.aggregates = aggregates  # Prometheus (policy evidence: prometheus|both), by its URL
        self.actor = actor or getpass.getuser()
        self.log = log
        self.notifier = notifier or notifier_for(fleet.policy.notify_url)
        self._samples: tuple[tuple[str, str, int, int], list[Request]] | None = None  # (stage, requests)
        self._cursor: dict[str, Any] = {}
        self._baseline_cache: tuple[tuple[str, str, int, int], list[Attempt]] | None = None
        self.holder = f"{platform.node()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._recorded = 0  # events this controller recorded (for crash tests)

    @property
    def fleet_key(self) -> str:
        return str(self.fleet.source.resolve())

    # -- persistence -----------------------------------------------------------------
    def _save(self, record: Record, state: RolloutState, kind: str, data: dict[str, Any] | None = None,
              result: str | None = None) -> Record:
        ended = state.phase.terminal
        saved = self.store.save(record.id, state.phase.value, state.to_dict(), self.clock.now(),
                                record.revision, kind, self.actor, data or {}, result=result,
                                reason=state.reason or None, ended=ended, stable_version=state.stable_version or None,
                                image_digest=state.image_digest or None, git_revision=state.git_revision or None)
        self.log(event_line(state, kind, data or {}))
        if ended:
            forget_secrets(self.store.path.parent, record.id)
        self._recorded += 1
        if _crash_now(os.environ.get(CRASH_AFTER_ENV, ""), kind, self._recorded):
            os.kill(os.getpid(), signal.SIGKILL)
        return saved

    def _enter(self, record: Record, state: RolloutState, phase: Phase, reason: str = "",
               **changes: Any) -> tuple[Record, RolloutState]:
        state = replace(state, phase=phase, reason=reason or state.reason, **changes)
        result = {Phase.SUCCEEDED: "succeeded", Phase.ROLLED_BACK: "rolled_back", Phase.FAILED: "failed",
                  Phase.PREFLIGHT_FAILED: "preflight_failed"}.get(phase)
        saved = self._save(record, state, f"enter {phase.value}", {"reason": reason}, result=result)
        if phase in NOTICES:
            self._notify(NOTICES[phase], state, reason)
        return saved, state

    def _notify(self, kind: str, state: RolloutState, reason: str) -> None:
        verdict = (state.last_verdict or {}).get("verdict") or {}
        fields: dict[str, Any] = {"step": f"{state.step_index + 1}/{len(state.steps)}" if state.step_index >= 0 else "-",
                                  "weight": f"{state.weight_set}%", "stable": state.stable_version or "?"}
        if verdict:
            fields.update(verdict=verdict.get("summary", ""), canary_requests=verdict.get("canary_n", 0),
                          stable_requests=verdict.get("stable_n", 0))
        text = f"voxfleet {state.version}: {kind.replace('_', ' ')}" + (f" — {reason}" if reason else "")
        self.notifier.notify(Notice(kind, state.rollout_id, state.version, text, fields))

    # -- starting --------------------------------------------------------------------
    def start(self, version: str, policy: Policy | None = None) -> Record:
        """Create the rollout record (the fleet's lock) in PENDING; ticks do the rest."""
        policy = policy or self.fleet.policy
        try:
            check_version(version)
        except ValueError as exc:
            raise RolloutError(str(exc)) from exc
        active = self.store.active(self.fleet_key)
        if active is not None:
            raise RolloutError(f"rollout {active.id} of {active.version} is already active on this fleet "
                               f"(phase {active.phase}); abort it or wait for it")
        rollout_id = f"r-{self.clock.now():.0f}-{uuid.uuid4().hex[:6]}"
        try:
            state = plan_rollout(self.fleet, policy, rollout_id, version, stable_version="")
        except PlanError as exc:
            raise RolloutError(f"the policy cannot be honoured on {self.fleet.source}: {exc}") from exc
        if policy.notify_url:  # the stored state has it redacted; later ticks read it here
            save_secret(self.store.path.parent, rollout_id, NOTIFY_SECRET, policy.notify_url)
        try:
            return self.store.create(rollout_id, self.fleet_key, version, None, state.phase.value,
                                     state.to_dict(), self.actor, self.clock.now())
        except ActiveRolloutError as exc:
            forget_secrets(self.store.path.parent, rollout_id)
            raise RolloutError(str(exc)) from exc

    # -- the loop --------------------------------------------------------------------
    def tick(self) -> Record | None:
        """Advance the active rollout by one action; returns its record (None when idle).

        One tick at a time per fleet (a lease in the store), so a timer's tick and a
        foreground `rollout start` never act at once; a tick that finds the lease taken
        does nothing."""
        record = self.store.active(self.fleet_key)
        if record is None:
            return None
        lease = f"tick:{self.fleet_key}"
        if not self._take_lease(lease):
            return record
        try:
            state = RolloutState.from_dict(record.state)
            try:
                return self._dispatch(record, state)
            except (Superseded, ConcurrentUpdateError):
                return self.store.get(record.id)
            except Exception as exc:  # any doubt after traffic moved means roll back
                return self._on_error(self.store.get(record.id), exc, acting=state.phase)
        finally:
            self.store.unlock(lease, self.holder)

    def _take_lease(self, lease: str) -> bool:
        if self.store.lock(lease, self.holder, TICK_LEASE_S, self.clock.now()):
            return True
        held = self.store.lease(lease)
        if held is None:
            return self.store.lock(lease, self.holder, TICK_LEASE_S, self.clock.now())
        host, _, rest = held[0].partition(":")
        pid = rest.partition(":")[0]
        if host == platform.node() and pid.isdigit() and not _alive(int(pid)):
            self.store.unlock(lease, held[0])  # its holder was killed mid-tick (SIGKILL leaves no cleanup)
            return self.store.lock(lease, self.holder, TICK_LEASE_S, self.clock.now())
        return False

    def _guard(self, record: Record) -> None:
        """Refuse to act on a stale view: an abort may have moved the rollout meanwhile."""
        if self.store.get(record.id).revision != record.revision:
            raise Superseded(record.id)

    def _on_error(self, record: Record, exc: Exception, acting: Phase) -> Record:
        state = RolloutState.from_dict(record.state)
        message = str(exc).strip() or type(exc).__name__
        if state.phase.terminal:
            return record
        if state.phase is not acting:  # an abort moved the rollout meanwhile: its path wins
            self.store.append_event(record.id, "error superseded", self.actor,
                                    {"phase": acting.value, "error": message}, self.clock.now())
            return record
        if state.phase in (Phase.PENDING, Phase.PREFLIGHT):
            return self._enter(record, state, Phase.PREFLIGHT_FAILED, f"preflight: {message}")[0]
        if isinstance(exc, TrafficChangeError) and state.phase in (Phase.TRAFFIC, Phase.PROMOTING):
            # one LB refused the new split and the others were put back: nothing moved, so
            # nothing needs rolling back; an operator has an LB to look at
            return self._enter(record, state, Phase.PAUSED, f"{message}. Traffic stays as it was: fix the LB "
                               "and `rollout resume`, or `rollout abort` to roll back",
                               paused_phase=state.phase.value)[0]
        if state.phase is Phase.ROLLING_BACK:
            return self._enter(record, state, Phase.FAILED, f"roll back failed: {message}")[0]
        if state.phase is Phase.PROMOTING and state.batch_index >= len(state.batches):
            # every host already runs the new version; only the final reload failed: retry it
            self.store.append_event(record.id, "final reload failed, retrying", self.actor,
                                    {"error": message}, self.clock.now())
            return record
        return self._start_rollback(record, state, f"error in {state.phase.value}: {message}")

    def _start_rollback(self, record: Record, state: RolloutState, reason: str) -> Record:
        """Enter ROLLING_BACK and drain the new version at once, in the same tick."""
        record, state = self._enter(record, state, Phase.ROLLING_BACK, reason, rollback_stage="drain",
                                    paused_phase=None, new_hosts=rollback_targets(state))
        return self._rolling_back(record, state)

    def _dispatch(self, record: Record, state: RolloutState) -> Record:
        record, state = self._notice_policy_edit(record, state)
        record, state, go_on = self._follow_inventory(record, state)
        if not go_on:
            return record
        handlers = {
            Phase.PENDING: self._pending, Phase.PREFLIGHT: self._preflight, Phase.PREPULL: self._prepull,
            Phase.CANARY_DEPLOY: self._canary_deploy, Phase.WARMUP_GATE: self._warmup_gate,
            Phase.TRAFFIC: self._traffic, Phase.PROMOTING: self._promoting, Phase.ROLLING_BACK: self._rolling_back,
            Phase.PAUSED: self._paused,
        }
        return handlers[state.phase](record, state)

    def _notice_policy_edit(self, record: Record, state: RolloutState) -> tuple[Record, RolloutState]:
        """An edit of the inventory's rollout_policy is recorded once; the rollout keeps
        the policy it started with until an operator adopts the new one."""
        if self.fleet.inventory_policy is None or not state.inventory_policy:
            return record, state
        now = stored_policy(self.fleet.inventory_policy)
        if now == state.inventory_policy:
            return (record, state) if not state.policy_edit_seen else \
                (self._save(record, replace(state, policy_edit_seen={}), "policy edit undone", {}), state)
        if now == state.policy_edit_seen:
            return record, state
        state = replace(state, policy_edit_seen=now)
        record = self._save(record, state, "policy edited", {
            "changes": policy_changes(state.inventory_policy, now),
            "message": f"rollout_policy in {self.fleet.source} changed; this rollout keeps the policy it started "
                       "with (`rollout resume --adopt-policy` takes the new one)"})
        return record, state

    def _follow_inventory(self, record: Record, state: RolloutState) -> tuple[Record, RolloutState, bool]:
        """Compare the rollout's hosts with the inventory as it is now (see drift.py);
        False: the rollout paused and this tick does nothing more."""
        drift = inventory_drift(state, self.fleet)
        if not (drift.added or drift.blocking) or state.phase is Phase.PAUSED:
            return record, state, True
        message = drift.describe(state, str(self.fleet.source))
        if state.phase in (Phase.PENDING, Phase.PREFLIGHT) and drift.blocking:
            raise RolloutError(f"{message}; nothing was changed: start the rollout again")
        if state.phase is Phase.ROLLING_BACK and drift.blocking:
            return *self._on_listed_hosts(record, state, {"message": message, "removed": list(drift.removed)}), True
        if drift.blocking:
            record, state = self._enter(record, state, Phase.PAUSED, f"{message}. Traffic stays as it is: {WAY_OUT}",
                                        paused_phase=state.phase.value)
            return record, state, False
        if list(drift.added) != state.ignored_hosts:
            state = replace(state, ignored_hosts=list(drift.added))
            record = self._save(record, state, "inventory changed", {"message": message,
                                                                     "added": list(drift.added)})
        return record, state, True

    def _on_listed_hosts(self, record: Record, state: RolloutState, data: dict[str, Any]
                         ) -> tuple[Record, RolloutState]:
        """A roll back drops the hosts gone from the inventory (the LB stops routing to them)."""
        state = on_listed_hosts(state, self.fleet)
        return self._save(record, state, "inventory changed", data), state

    def _apply_layout(self, state: RolloutState, record: Record | None = None) -> str:
        if record is not None:
            self._guard(record)
        servers, share = traffic_layout(state)
        return self.traffic.apply(servers, share)

    # -- phases ----------------------------------------------------------------------
    def _pending(self, record: Record, state: RolloutState) -> Record:
        return self._enter(record, state, Phase.PREFLIGHT)[0]

    def _preflight(self, record: Record, state: RolloutState) -> Record:
        digest = self.registry.digest(state.version)
        if digest is None:
            raise RolloutError(f"image {self.fleet.image(state.version)} is not in the registry "
                               f"(publish it first: rollout publish {state.version})")
        nodes = self.fleet_port.states()
        missing = sorted(set(state.upstream) - set(nodes))
        if missing:
            raise RolloutError(f"host(s) {', '.join(missing)} did not report (unreachable?)")
        running = {h: s.version for h, s in nodes.items() if h in state.upstream}
        unhealthy = sorted(h for h, s in nodes.items() if h in state.upstream and s.health != "healthy")
        if unhealthy:
            raise RolloutError(f"host(s) {', '.join(unhealthy)} not healthy: "
                               + ", ".join(f"{h} {nodes[h].container_state}/{nodes[h].health}" for h in unhealthy))
        versions = sorted(set(running.values()), key=str)
        if len(versions) != 1:
            raise RolloutError("the fleet runs mixed versions: "
                               + ", ".join(f"{h} {v}" for h, v in sorted(running.items())))
        stable = versions[0] or ""
        if stable == state.version:
            raise RolloutError(f"{state.version} already runs on every host")
        if not state.stable_hosts:
            raise RolloutError("no stable host left to carry traffic besides the canary")
        fits, why = self._fitting(state, state.canary_hosts)
        if fits != state.canary_hosts:
            raise RolloutError(f"the fleet cannot take even its canary ({', '.join(state.canary_hosts)}) out of "
                               f"traffic now: {why}")
        labels = self.registry.labels(state.version)
        if labels.model_version and labels.model_version != state.version:
            raise RolloutError(f"image {self.fleet.image(state.version)} carries model version "
                               f"{labels.model_version} (label io.voxfleet.model.version), not {state.version}: "
                               f"rebuild and publish it (rollout build {state.version})")
        ran = {(nodes[h].image_digest or "").rpartition("@")[2] for h in state.upstream}
        state = replace(state, stable_version=stable, image_digest=digest, git_revision=labels.revision,
                        stable_digest=ran.pop() if len(ran) == 1 else "")
        self._guard(record)
        servers, share = traffic_layout(state)  # the LB config rendered and validated (all stable): no traffic change
        self.traffic.prepare(servers, share)
        return self._enter(record, state, Phase.PREPULL, f"stable {stable} on {len(running)} hosts")[0]

    def _prepull(self, record: Record, state: RolloutState) -> Record:
        self._guard(record)
        self.fleet_port.deploy(state.version, list(state.upstream), pull_only=True, digest=state.image_digest)
        record, state = self._enter(record, state, Phase.CANARY_DEPLOY)
        return record

    def _canary_deploy(self, record: Record, state: RolloutState) -> Record:
        if state.canary_hosts and self._fitting(state, state.canary_hosts)[0] != state.canary_hosts:
            return self._wait_for_capacity(record, state, state.canary_hosts)
        self._apply_layout(state, record)  # drain the canary host(s): the others carry everything
        if not state.golden_baseline:
            record, state = self._golden_baseline(record, state)
        for batch in state.step_switches[0] if state.step_switches else [state.canary_hosts]:
            self.fleet_port.deploy(state.version, batch, digest=state.image_digest)
        return self._enter(record, state, Phase.WARMUP_GATE, new_hosts=list(state.canary_hosts))[0]

    def _golden_baseline(self, record: Record, state: RolloutState) -> tuple[Record, RolloutState]:
        """The stable version's golden prompts, spoken by the first canary host while it is
        drained and before it is switched: the warm-up gate compares the new version with
        them on the same host, and no host carrying users' traffic (near its capacity while
        the canary is out) is handed the prompts' half a minute of audio. Where that host
        does not speak the stable version, the gate asks a stable host, as it must."""
        if not state.canary_hosts:
            return record, state
        host = state.canary_hosts[0]
        try:
            reports = self.probe.golden([host]).get(host, [])
        except FleetError as exc:
            reports, why = [], str(exc)
        else:
            spoken = sorted({str(r.get("version") or "none") for r in reports})
            why = "" if spoken == [state.stable_version] else f"{host} answered as {', '.join(spoken) or 'nothing'}"
        baseline = {"host": host, "reports": reports} if not why else {"host": "", "reports": [], "why": why}
        state = replace(state, golden_baseline=baseline)
        return self._save(record, state, "golden baseline", baseline), state

    def _warmup_gate(self, record: Record, state: RolloutState) -> Record:
        before = state.golden_baseline
        if before.get("host"):
            reports = self.probe.golden(state.canary_hosts)
            baseline, against = before["reports"], f"{before['host']} on {state.stable_version} before its switch"
        else:
            stable_host = state.stable_hosts[0]
            reports = self.probe.golden(state.canary_hosts + [stable_host])
            baseline, against = reports.pop(stable_host, None), stable_host
        problems = []
        for host in state.canary_hosts:
            result = compare(reports.get(host, []), baseline)
            if not result.passed:
                problems.append(f"{host}: {result.summary()}")
        self.store.append_event(record.id, "warmup_gate", self.actor,
                                {"reports": reports, "baseline": baseline, "against": against,
                                 "problems": problems}, self.clock.now())
        if problems:
            return self._start_rollback(record, state, "warm-up gate failed: " + "; ".join(problems))
        if parse_policy(state.policy).listen_first and not state.listened:
            return self._enter(record, state, Phase.PAUSED,
                               f"listen first: {state.version} runs at 0% on {', '.join(state.canary_hosts)}; "
                               "requests with X-Voxfleet-Canary and the inventory's token reach it; `rollout resume` "
                               "gates it again, then starts step 1", paused_phase=Phase.WARMUP_GATE.value,
                               listened=True)[0]
        if not state.traffic_steps:  # no step below 100%: the canaries are promotion's first batch
            if len(state.batches) == 1:
                self._apply_layout(replace(state, phase=Phase.SUCCEEDED), record)
                return self._enter(record, state, Phase.SUCCEEDED, f"{state.version} runs on every host")[0]
            return self._enter_judging(record, state, Phase.PROMOTING, batch_index=1)[0]
        return self._enter_step(record, state, 0)

    def _enter_step(self, record: Record, state: RolloutState, index: int) -> Record:
        weight = state.traffic_steps[index]
        record, state = self._enter_judging(record, state, Phase.TRAFFIC, f"step {index + 1}: {weight}%",
                                            step_index=index, weight_set=weight, manual=False)
        return self._traffic(record, state)

    def _enter_judging(self, record: Record, state: RolloutState, phase: Phase, reason: str = "",
                       **changes: Any) -> tuple[Record, RolloutState]:
        """A new stage to judge: its weights go live on the next action, its samples start then."""
        return self._enter(record, state, phase, reason or state.reason, **JUDGING_AFRESH,
                           step_started_at=self.clock.now(), baseline_cursor=state.step_cursor, advancing=False,
                           **changes)

    def _traffic(self, record: Record, state: RolloutState) -> Record:
        if state.draining or state.pending_switches():  # this step's hosts first (at the previous step's share)
            batch = state.draining or state.pending_switches()[0]
            return self._switch(record, state, [h for h in batch if h not in state.new_hosts])
        return self._judge(record, state)

    def _promoting(self, record: Record, state: RolloutState) -> Record:
        if state.draining or state.advancing:
            batch = state.draining or [h for h in state.batches[state.batch_index] if h not in state.new_hosts]
            return self._switch(record, state, batch)
        return self._judge(record, state)

    def _switch(self, record: Record, state: RolloutState, batch: list[str]) -> Record:
        """Switch `batch` to the new version: out of traffic, deploy and verify, back in.
        Only as many of its hosts as the hosts left in service can do without."""
        if not state.draining:
            fits, _ = self._fitting(state, batch)
            if not fits:
                return self._wait_for_capacity(record, state, batch)
            state = replace(state, draining=fits, capacity_wait="")
            record = self._save(record, state, "switching", {"hosts": fits, "to": state.version})
        self._apply_layout(state, record)  # drain the batch (again, after a crash: idempotent)
        self.fleet_port.deploy(state.version, state.draining, digest=state.image_digest)
        switched = state.draining
        state = replace(state, new_hosts=state.new_hosts + [h for h in switched if h not in state.new_hosts],
                        draining=[])
        if state.phase is Phase.PROMOTING and set(state.batches[state.batch_index]) <= set(state.new_hosts):
            state = replace(state, batch_index=state.batch_index + 1, advancing=False)
            if state.batch_index >= len(state.batches):
                self._apply_layout(replace(state, phase=Phase.SUCCEEDED), record)
                return self._enter(record, state, Phase.SUCCEEDED, f"{state.version} runs on every host")[0]
            state = replace(state, **JUDGING_AFRESH, step_started_at=self.clock.now(),
                            baseline_cursor=state.step_cursor)
        self._apply_layout(state, record)  # readmit it with the new version
        return self._save(record, state, "batch switched", {"hosts": switched, "batch": state.batch_index})

    def _shortfall(self, state: RolloutState, out: list[str], rate: float | None = None) -> str:
        """What the hosts left in service lack to carry the load the LB measured (`rate`, read
        when not given); "" when it fits or capacity_unit_rps is unknown (0)."""
        unit_rps = float(state.policy.get("capacity_unit_rps") or 0)
        if not unit_rps or not out:
            return ""
        rate = self.metrics.request_rate(LOAD_WINDOW_S) if rate is None else rate
        return drain_shortfall(state.capacities(), set(out), rate, unit_rps) or ""

    def _fitting(self, state: RolloutState, batch: list[str]) -> tuple[list[str], str]:
        """(the longest head of `batch` the hosts left in service can do without, and why not
        more) by the request rate the LB measures now and policy capacity_unit_rps; with
        that unset (0), the plan's shares alone decide."""
        if not float(state.policy.get("capacity_unit_rps") or 0):
            return batch, ""
        rate = self.metrics.request_rate(LOAD_WINDOW_S)  # once for every size tried
        why = ""
        for size in range(len(batch), 0, -1):
            why = self._shortfall(state, batch[:size], rate)
            if not why:
                return batch[:size], ""
        return [], why

    def _wait_for_capacity(self, record: Record, state: RolloutState, hosts: list[str]) -> Record:
        """Stay in the phase and say why (recorded once while the reason stays the same)."""
        message = f"waiting to switch {', '.join(hosts)}: {self._fitting(state, hosts[:1])[1]}"
        if message == state.capacity_wait:
            return record
        return self._save(record, replace(state, capacity_wait=message), "waiting for capacity", {"reason": message})

    def _judge(self, record: Record, state: RolloutState) -> Record:
        """One analysis of the current stage: new-version hosts against the rest."""
        if state.weight_live != state.weight_set or state.weight_live is None:
            _, percent = traffic_layout(state)
            self._apply_layout(state, record)
            state = replace(state, weight_set=percent if state.phase is Phase.PROMOTING else state.weight_set)
            state = replace(state, weight_live=state.weight_set, step_cursor=self.metrics.cursor(),
                            step_started_at=self.clock.now())
            return self._save(record, state, "weights live", {"canary_percent": state.weight_set})
        requests = self._step_requests(record, state)
        canary, stable = self._split(state, requests)
        baseline = state.weight_set == 100 and bool(state.baseline_cursor)
        if baseline:
            stable = self._baseline(record, state)  # stable is only a backup now: compare with the last step
        policy = parse_policy(state.policy)
        settled = datetime.fromtimestamp((state.step_started_at or 0) + policy.latency_settle_s, UTC)
        load_ratio = load_per_capacity(state, canary, stable)
        verdict = judge(canary, stable, policy, looks=state.looks + 1, load_ratio=load_ratio,
                        canary_from=settled, stable_from=None if baseline else settled)
        if policy.evidence != "access_log":
            from_prometheus = self._prometheus_verdict(state, policy, load_ratio, baseline)
            verdict = from_prometheus if policy.evidence == "prometheus" else both(verdict, from_prometheus)
        decision = decide_step(state, verdict, self.clock.now(), self.calendar.now())
        evidence = {"verdict": verdict_dict(verdict), "decision": asdict(decision),
                    "step": state.step_index + 1, "weight": state.weight_set, "stage": state.stage_name,
                    "canary_n_by_lb": canary_attempts_by_lb(state, requests)}
        state = replace(state, looks=state.looks + 1, last_verdict=evidence,
                        consecutive_fails=state.consecutive_fails + 1 if verdict.verdict == "fail" else 0,
                        inconclusive_since=(state.inconclusive_since or self.clock.now())
                        if verdict.verdict == "inconclusive" else None)
        if decision.action == "rollback":  # the failing verdict is kept too, with its numbers
            return self._start_rollback(self._save(record, state, "verdict", evidence), state, decision.reason)
        if decision.action == "pause":
            return self._enter(record, state, Phase.PAUSED, decision.reason, paused_phase=state.phase.value)[0]
        if decision.action != "advance":
            return self._save(record, state, "verdict", evidence)
        self._notify("step_passed", state, decision.reason)
        if state.phase is Phase.TRAFFIC and state.step_index + 1 < len(state.traffic_steps):
            return self._enter_step(self._save(record, state, "verdict", evidence), state, state.step_index + 1)
        if state.phase is Phase.TRAFFIC:
            record = self._save(record, state, "verdict", evidence)
            record, state = self._enter(record, state, Phase.PROMOTING, decision.reason, advancing=True)
        else:  # the next promotion batch
            state = replace(state, advancing=True)
            record = self._save(record, state, "verdict", evidence)
        return self._promoting(record, state)

    def _prometheus_verdict(self, state: RolloutState, policy: Policy, load_ratio: float,
                            baseline: bool) -> Verdict:
        """The judge on Prometheus' totals for this stage (since its weights went live);
        inconclusive, saying why, when Prometheus cannot answer."""
        now = self.clock.now()
        started = state.step_started_at or now
        source = self.aggregates(policy.prometheus_url)
        try:
            totals = source.totals([state.version, state.stable_version], started, now,
                                   latency_since=min(now, started + policy.latency_settle_s))
            stable = totals[state.stable_version]
            if baseline:  # stable is only a backup now: its numbers from the stage before
                stable = source.totals([state.stable_version], started - max(policy.dwell_s, now - started),
                                       started)[state.stable_version]
        except PrometheusUnavailable as exc:
            return unavailable(f"no Prometheus evidence: {exc}")
        return judge_totals(totals[state.version], stable, policy, load_ratio)

    def _step_requests(self, record: Record, state: RolloutState) -> list[Request]:
        """All API requests since the stage's weights went live; cached between ticks."""
        key = (record.id, state.phase.value, state.step_index, state.batch_index)
        if self._samples is None or self._samples[0] != key:
            requests, cursor = self.metrics.read(state.step_cursor)
            self._samples = (key, requests)
            self._cursor = cursor
        else:
            more, self._cursor = self.metrics.read(self._cursor)
            self._samples[1].extend(more)
        return self._samples[1]

    def _baseline(self, record: Record, state: RolloutState) -> list[Attempt]:
        """Stable's attempts during the previous step, read once per step."""
        key = (record.id, state.phase.value, state.step_index, state.batch_index)
        if self._baseline_cache is None or self._baseline_cache[0] != key:
            requests, _ = self.metrics.read(state.baseline_cursor)
            started = datetime.fromtimestamp(state.step_started_at or 0, UTC)
            earlier = [r for r in requests if r.time < started]
            self._baseline_cache = (key, self._split(state, earlier)[1])
        return self._baseline_cache[1]

    @staticmethod
    def _split(state: RolloutState, requests: list[Request]) -> tuple[list[Attempt], list[Attempt]]:
        canary_addresses, stable_addresses = state.canary_addresses(), state.stable_addresses()
        canary = [a for r in requests for a in r.attempts if a.address in canary_addresses]
        stable = [a for r in requests for a in r.attempts if a.address in stable_addresses]
        return canary, stable

    def _rolling_back(self, record: Record, state: RolloutState) -> Record:
        drain = replace(state, rollback_stage="drain")
        if state.rollback_stage in ("", "drain"):
            # away from a failing version whatever the load: if the rest cannot carry it, say so
            short = self._shortfall(state, state.new_hosts)
            self._apply_layout(drain)  # traffic off the new version first, one validated reload
            return self._save(record, replace(state, rollback_stage="restore"), "traffic off new version",
                              {"hosts": state.new_hosts, **({"fleet_short": short} if short else {})})
        if state.rollback_stage == "restore":
            self._apply_layout(drain)  # again: a stale writer may have raced the abort
            size = int(state.policy.get("batch_size", 1))
            lost: list[str] = []
            for i in range(0, len(state.new_hosts), size):  # in batches: some may still serve
                lost += self._restore(state.stable_version, state.new_hosts[i:i + size], state.stable_digest)
            restored = [h for h in state.new_hosts if h not in lost]
            return self._save(record, replace(state, rollback_stage="readmit", new_hosts=[], lost_hosts=lost),
                              "previous version restored", {"version": state.stable_version, "hosts": restored,
                                                            **({"lost": lost} if lost else {})})
        self._apply_layout(state)
        reason = state.reason + (f"; {', '.join(state.lost_hosts)} could not be reached to restore "
                                 f"{state.stable_version}: kept out of traffic" if state.lost_hosts else "")
        return self._enter(record, state, Phase.ROLLED_BACK, reason)[0]

    def _restore(self, version: str, hosts: list[str], digest: str) -> list[str]:
        """Put `version` back on `hosts`; the hosts that could not be reached (a host that is
        gone stays drained: the roll back goes on without it). Any other failure raises."""
        try:
            self.fleet_port.deploy(version, hosts, digest=digest)
        except FleetError as exc:
            unreachable = exc.result.unreachable_hosts()
            if not unreachable or exc.result.failed_hosts():
                raise
            return [h for h in hosts if h in unreachable]
        return []

    def _paused(self, record: Record, state: RolloutState) -> Record:
        return record  # an operator resumes, promotes or aborts

    # -- operator verbs --------------------------------------------------------------
    def abort(self, reason: str) -> Record:
        """Traffic off the new version now, in one reload, whatever else is running.

        Takes no lease (nothing may block an abort): it wins the state by
        compare-and-swap and drains at once; the rest of the roll back continues in
        ticks. A tick that was mid-action notices the change before its next action."""
        for _ in range(20):
            record = self.store.active(self.fleet_key)
            if record is None:
                raise RolloutError("no active rollout on this fleet")
            state = RolloutState.from_dict(record.state)
            why = f"aborted by {self.actor}: {reason}"
            try:
                if state.phase in (Phase.PENDING, Phase.PREFLIGHT):
                    return self._enter(record, state, Phase.PREFLIGHT_FAILED, why)[0]
                if state.phase is not Phase.ROLLING_BACK:
                    listed = on_listed_hosts(replace(state, new_hosts=rollback_targets(state)), self.fleet)
                    record, state = self._enter(record, listed, Phase.ROLLING_BACK, why, rollback_stage="drain",
                                                paused_phase=None)
                elif inventory_drift(state, self.fleet).blocking:  # already rolling back: on listed hosts only
                    record, state = self._on_listed_hosts(record, state, {"reason": why})
                if state.rollback_stage in ("", "drain"):
                    return self._rolling_back(record, state)
                return record
            except ConcurrentUpdateError:
                continue
        raise RolloutError("could not record the abort: the state store kept changing")

    def _operator(self, verb: str, reason: str, change) -> Record:
        """Apply an operator's change to the active rollout by compare-and-swap; the
        foreground loop or the next tick acts on it."""
        for _ in range(20):
            record = self.store.active(self.fleet_key)
            if record is None:
                raise RolloutError("no active rollout on this fleet")
            state = RolloutState.from_dict(record.state)
            changes = change(state)
            changed = {k: v.value if isinstance(v, Phase) else v for k, v in changes.items() if k != "reason"}
            new = replace(state, **changes)
            try:
                saved = self._save(record, new, verb, {**changed, "reason": reason})
            except ConcurrentUpdateError:
                continue
            if new.phase is not state.phase and new.phase in NOTICES:  # e.g. an operator's pause
                self._notify(NOTICES[new.phase], new, new.reason)
            return saved
        raise RolloutError(f"could not record {verb}: the state store kept changing")

    def pause(self, reason: str) -> Record:
        def change(state: RolloutState) -> dict[str, Any]:
            if state.phase is Phase.PAUSED:
                return {}
            if state.phase not in (Phase.TRAFFIC, Phase.PROMOTING):
                raise RolloutError(f"can pause during traffic steps or promotion, not in {state.phase.value}")
            return {"phase": Phase.PAUSED, "paused_phase": state.phase.value,
                    "reason": f"paused by {self.actor}: {reason}"}
        return self._operator("pause", reason, change)

    def promote(self, reason: str, full: bool = False) -> Record:
        """Pass the current step without waiting (full: every remaining step and batch);
        a failing analysis still rolls back."""
        def change(state: RolloutState) -> dict[str, Any]:
            phase = Phase(state.paused_phase) if state.phase is Phase.PAUSED and state.paused_phase else state.phase
            if phase not in (Phase.TRAFFIC, Phase.PROMOTING):
                raise RolloutError(f"nothing to promote in {state.phase.value}; promote acts on traffic steps")
            changes: dict[str, Any] = {"skip_wait": True, "manual": False}
            if full:
                changes["full_promote"] = True
            if state.phase is Phase.PAUSED:
                changes.update(phase=phase, paused_phase=None, inconclusive_since=None)
            return changes
        return self._operator("promote --full" if full else "promote", reason, change)

    def set_weight(self, percent: int, reason: str) -> Record:
        """Manual mode: hold the canary at `percent` until promote, resume or abort."""
        if not 0 <= percent <= 100:
            raise RolloutError(f"weight must be 0..100, got {percent}")

        def change(state: RolloutState) -> dict[str, Any]:
            if state.phase not in OPERATOR_PHASES:
                raise RolloutError(f"set-weight acts on traffic steps, not {state.phase.value}")
            limit = 1 + float(state.policy.get("canary_headroom", 0.5))
            try:
                worst = float(peak(state.capacities(), Layout(frozenset(state.new_hosts), share=Fraction(percent, 100))))
            except PlanError as exc:
                raise RolloutError(f"set-weight {percent}%: {exc}") from exc
            if worst > limit:
                raise RolloutError(f"set-weight {percent}%: a host would carry {worst:.2f}× its share of the "
                                   f"fleet's capacity with {state.version} on {', '.join(state.new_hosts)}, above "
                                   f"1 + canary_headroom = {limit:.2f}")
            return {"phase": Phase.TRAFFIC, "paused_phase": None, "manual": True, "weight_set": percent,
                    "weight_live": None}
        return self._operator("set-weight", reason, change)

    def resume(self, reason: str, adopt_policy: bool = False) -> Record:
        """Leave PAUSED for the phase it paused in (a traffic step starts its wait anew);
        `adopt_policy`: the inventory's rollout_policy as it is now replaces the one the
        rollout started with (not the keys its plan was built from)."""
        record = self.store.active(self.fleet_key)
        if record is None:
            raise RolloutError("no active rollout on this fleet")
        if adopt_policy:
            record = self._adopt_policy(record, reason)
        state = RolloutState.from_dict(record.state)
        drift = inventory_drift(state, self.fleet)
        if drift.blocking and state.phase is not Phase.ROLLING_BACK:  # a roll back follows the inventory
            raise RolloutError(f"{drift.describe(state, str(self.fleet.source))}: {WAY_OUT}")
        if state.phase is Phase.PAUSED:
            phase = Phase(state.paused_phase or Phase.TRAFFIC.value)
            return self._enter(record, state, phase, f"resumed by {self.actor}: {reason}", paused_phase=None,
                               manual=False, inconclusive_since=None, step_started_at=self.clock.now())[0]
        if state.manual:  # leave manual mode: the step's weight and automatic progress come back
            return self._save(record, replace(state, manual=False, weight_set=state.step_weight, weight_live=None),
                              "resume", {"reason": reason})
        return record

    def _adopt_policy(self, record: Record, reason: str) -> Record:
        new = self.fleet.inventory_policy or self.fleet.policy
        for _ in range(20):
            state = RolloutState.from_dict(record.state)
            stored = stored_policy(new)
            changes = policy_changes(state.policy, stored)
            if not changes:
                raise RolloutError(f"rollout {record.id} already runs with the rollout_policy in {self.fleet.source}")
            fixed = [k for k in PLAN_KEYS if state.policy.get(k) != stored.get(k)]
            if fixed:
                raise RolloutError(f"rollout_policy.{', rollout_policy.'.join(fixed)} changed: rollout {record.id}'s "
                                   "plan was built from them at start; abort it and start again to use them")
            try:
                saved = self._save(record, replace(state, policy=stored, inventory_policy=stored, policy_edit_seen={}),
                                   "policy adopted", {"changes": changes, "reason": reason})
            except ConcurrentUpdateError:
                record = self.store.get(record.id)
                continue
            if new.notify_url:
                save_secret(self.store.path.parent, record.id, NOTIFY_SECRET, new.notify_url)
            else:
                forget_secrets(self.store.path.parent, record.id)
            return saved
        raise RolloutError("could not record the adopted policy: the state store kept changing")


def load_per_capacity(state: RolloutState, canary: list[Attempt], stable: list[Attempt]) -> float:
    """The canary side's attempts per unit of its capacity ÷ the stable side's (1.0 when unknown)."""
    caps = state.capacities()
    new = set(state.new_hosts or state.canary_hosts)
    cap_new = float(sum((c for h, c in caps.items() if h in new), Fraction(0)))
    cap_old = float(sum((c for h, c in caps.items() if h not in new), Fraction(0)))
    if not (canary and stable and cap_new and cap_old):
        return 1.0
    return (len(canary) / cap_new) / (len(stable) / cap_old)


def canary_attempts_by_lb(state: RolloutState, requests: list[Request]) -> dict[str, int]:
    """How many of the canary's attempts came through each LB (evidence: every LB is read)."""
    canary_addresses = state.canary_addresses()
    return dict(Counter(r.lb for r in requests for a in r.attempts if a.address in canary_addresses))


def verdict_dict(verdict: Verdict) -> dict[str, Any]:
    return {"verdict": verdict.verdict, "summary": verdict.summary, "canary_n": verdict.canary_n,
            "stable_n": verdict.stable_n,
            "metrics": [{"metric": m.metric, "verdict": m.verdict, "reason": m.reason, "numbers": m.numbers}
                        for m in verdict.metrics]}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
