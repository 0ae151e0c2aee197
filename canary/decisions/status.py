"""What `rollout status` shows of a rollout: its view of the state, and a time estimate (pure)."""

from __future__ import annotations

from typing import Any

from canary.decisions.phases import Phase
from canary.decisions.plan import RolloutState, traffic_layout


def metric_numbers(verdict: dict[str, Any], name: str) -> dict[str, Any]:
    """One metric's numbers (error_rate, latency, shed) from a stored verdict; {} if absent."""
    return next((m.get("numbers", {}) for m in verdict.get("metrics", []) if m.get("metric") == name), {})


def status_view(record: Any, now: float) -> dict[str, Any]:
    """`record`: a store Record (id, version, phase, result, reason, state and times)."""
    state = RolloutState.from_dict(record.state)
    servers, share = traffic_layout(state)
    evidence = state.last_verdict or {}
    digests = {state.version: state.image_digest, state.stable_version: state.stable_digest}
    verdict = evidence.get("verdict", {})
    view = {
        "id": record.id, "version": record.version, "stable_version": state.stable_version,
        "phase": record.phase, "result": record.result, "reason": record.reason,
        "step": state.step_index + 1 if state.step_index >= 0 else None, "steps": state.steps,
        "weight_set": state.weight_set, "weight_live": state.weight_live,
        "weight_layout": share,  # the canary share of the layout the LBs are given now
        "canary_hosts": state.canary_hosts, "new_version_hosts": state.new_hosts,
        "lb_servers": [{"address": s.address, "version": s.version, "weight": s.weight, "state": s.state,
                        "digest": digests.get(s.version, "")} for s in servers],
        "last_verdict": verdict or None, "last_decision": evidence.get("decision"),
        "started_at": record.started_at, "updated_at": record.updated_at, "ended_at": record.ended_at,
    }
    view["estimate"] = _estimate(state, verdict, now)
    return view


def _estimate(state: RolloutState, verdict: dict[str, Any], now: float) -> str:
    if state.phase is not Phase.TRAFFIC or not state.step_started_at:
        return ""
    policy = state.policy
    elapsed = max(now - state.step_started_at, 1.0)
    canary_n = verdict.get("canary_n", 0)
    rate = canary_n / elapsed
    need = max(policy["min_requests"] - canary_n, 0)
    dwell_left = max(policy["dwell_s"] - elapsed, 0)
    if need and rate <= 0:
        return f"waiting for canary requests ({canary_n}/{policy['min_requests']}); none yet"
    wait = max(dwell_left, need / rate if need else 0)
    steps_left = len(state.steps) - state.step_index - 1
    per_step = max(policy["dwell_s"], policy["min_requests"] / rate if rate else 0)
    return (f"this step ~{wait:.0f}s more ({canary_n}/{policy['min_requests']} canary requests at "
            f"{rate:.1f}/s), then {steps_left} step(s) of ~{per_step:.0f}s and promotion")


def event_line(state: RolloutState, kind: str, data: dict[str, Any]) -> str:
    """One line for the controller's log: the phase, and what this event did to which host."""
    where = f" step {state.step_index + 1}/{len(state.steps)} ({state.weight_set}%)" \
        if state.phase is Phase.TRAFFIC else ""
    hosts = ", ".join(data.get("hosts") or state.new_hosts or state.canary_hosts)
    what = {
        "verdict": lambda: (data.get("decision") or {}).get("reason", ""),
        "weights live": lambda: f"{data.get('canary_percent')}% of traffic to {state.version} on {hosts}",
        "switching": lambda: f"{hosts} out of traffic, switching to {state.version}",
        "batch switched": lambda: f"{hosts} now on {state.version} and back in traffic",
        "traffic off new version": lambda: f"traffic off {state.version} on {hosts}"
                                           + (f" (the fleet is short: {data['fleet_short']})"
                                              if data.get("fleet_short") else ""),
        "previous version restored": lambda: f"{state.stable_version} restored on {hosts or 'every host'}",
        "golden baseline": lambda: (f"{data['host']} spoke the golden prompts on {state.stable_version} "
                                    "out of traffic: the warm-up gate's baseline" if data.get("host") else
                                    f"none before the switch ({data.get('why', '')}): a stable host speaks them"),
    }.get(kind, lambda: str(data.get("reason") or state.reason or ""))()
    return f"{state.phase.value}{where}: {kind}{' — ' + what if what else ''}"
