"""What a traffic step does next, and which hosts a roll back must restore (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from canary.decisions.judge import Verdict
from canary.decisions.phases import Phase
from canary.decisions.plan import RolloutState
from canary.decisions.policy import parse_policy
from canary.decisions.schedule import promotion_gate


@dataclass(frozen=True)
class StepDecision:
    action: str  # wait | advance | rollback | pause | fail
    reason: str


def rollback_targets(state: RolloutState) -> list[str]:
    """Every host that may run the new version: those that finished a deploy, and any
    whose deploy was under way (a failed start leaves the new container behind)."""
    hosts = [*state.new_hosts, *state.draining]
    if state.acting_phase in (Phase.CANARY_DEPLOY, Phase.WARMUP_GATE, Phase.TRAFFIC, Phase.PROMOTING):
        hosts += state.canary_hosts
    return [h for h in state.upstream if h in set(hosts)]


def decide_step(state: RolloutState, verdict: Verdict, now: float, calendar_now: float | None = None) -> StepDecision:
    """What a traffic step does after an analysis (pure). `calendar_now`: the time promotion
    windows are judged at (default `now`)."""
    policy = parse_policy(state.policy)
    if verdict.verdict == "fail" and state.consecutive_fails + 1 >= policy.consecutive_failures:
        return StepDecision("rollback", f"analysis failed {state.consecutive_fails + 1}× in a row: {verdict.summary}")
    if verdict.verdict == "fail":
        return StepDecision("wait", f"analysis failed once ({verdict.summary}); confirming")
    if state.manual:
        return StepDecision("wait", f"manual weight {state.weight_set}% (rollout set-weight); analysis watching: "
                                    f"{verdict.summary}")
    if state.skip_wait or state.full_promote:  # an operator's promote: no wait, but no fail either
        return StepDecision("advance", f"{state.stage_name} promoted by an operator: {verdict.summary}")
    dwell_left = policy.dwell_s - (now - (state.step_started_at or now))
    if verdict.verdict == "pass" and dwell_left <= 0:
        allowed, why = promotion_gate(policy, now if calendar_now is None else calendar_now)
        if state.step_index == 0 and state.acting_phase is Phase.TRAFFIC and not allowed:
            return StepDecision("wait", f"canary healthy; {why}")
        return StepDecision("advance", f"{state.stage_name} passed: {verdict.summary}")
    if verdict.verdict == "pass":
        return StepDecision("wait", f"passing; {dwell_left:.0f}s of dwell left")
    since = state.inconclusive_since if state.inconclusive_since is not None else now
    if now - since > policy.step_max_s:
        action = "pause" if policy.inconclusive_action == "pause" else "rollback"
        return StepDecision(action, f"inconclusive for over {policy.step_max_s}s: {verdict.summary}")
    return StepDecision("wait", verdict.summary)  # the summary says "inconclusive: why"
