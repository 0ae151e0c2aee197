"""The state machine driven through every transition with in-memory ports and a fake clock."""

from __future__ import annotations

import pytest

from canary.adapters.lb_traffic import TrafficChangeError
from canary.adapters.store import Record
from canary.decisions.phases import Phase
from canary.decisions.plan import RolloutState
from canary.decisions.status import status_view
from canary.rollout.controller import Controller, RolloutError
from canary.rollout.ports import ShiftedClock
from tests.unit.fakes import POLICY, Crash, VersionBehaviour, make_fleet, run, to_first_step


def test_a_healthy_version_walks_every_phase_to_every_host(world):
    sim, store, controller, clock = world
    c = controller()
    record = c.start("v1.3.0")
    assert record.phase == "PENDING"
    phases = run(c, clock)
    assert phases[-1] == "SUCCEEDED"
    seen = list(dict.fromkeys(phases))
    assert seen == ["PREFLIGHT", "PREPULL", "CANARY_DEPLOY", "WARMUP_GATE", "TRAFFIC", "PROMOTING", "SUCCEEDED"]
    assert set(sim.hosts.values()) == {"v1.3.0"}
    assert sim.deploys[0] == ("v1.3.0", ("node1", "node2", "node3"), True)  # pre-pull everywhere first
    shares = [percent for _, percent in sim.applied]
    assert 10 in shares and 50 in shares and 67 in shares and 100 in shares  # 67: node1, node2 of 3 by capacity
    assert shares.index(10) < shares.index(50) < shares.index(67) < shares.index(100)  # no jumps past a step
    final = store.get(record.id)
    assert final.result == "succeeded" and final.ended_at is not None
    # history links the rollout to what it shipped: image digest and source revision
    assert (final.stable_version, final.image_digest, final.git_revision) == ("v1.2.0", "sha256:v1.3.0",
                                                                             "rev-v1.3.0")
    assert all(s.state == "up" and s.version == "v1.3.0" for s in sim.servers)
    kinds = [e.kind for e in store.events(record.id)]
    assert kinds.count("verdict") >= 3 and "enter SUCCEEDED" in kinds


def test_each_step_waits_for_dwell_and_min_requests(world):
    sim, store, controller, clock = world
    sim.rps = 2.0  # 10% canary share: 0.2 canary req/s, min 50 → about 250 s at step 1
    c = controller()
    record = c.start("v1.3.0")
    def run_until(pred):
        while True:
            clock.sleep(10)
            record = c.tick()
            if pred(record):
                return record

    step1 = run_until(lambda r: r.phase == "TRAFFIC" and r.state["weight_live"] == 10)
    entered = step1.state["step_started_at"]
    step2 = run_until(lambda r: r.state.get("step_index") == 1)
    assert step2.state["step_started_at"] - entered >= 200
    verdicts = [e.data for e in store.events(record.id) if e.kind == "verdict"]
    assert any("inconclusive" in v["verdict"]["verdict"] for v in verdicts)  # too few requests is never pass


def test_a_failing_version_is_rolled_back_within_two_intervals(world):
    sim, store, controller, clock = world
    sim.behaviour["v1.3.0"] = VersionBehaviour(error_rate=0.3)
    c = controller()
    record = c.start("v1.3.0")
    phases = run(c, clock)
    assert phases[-1] == "ROLLED_BACK"
    final = store.get(record.id)
    assert final.result == "rolled_back" and "analysis failed" in final.reason
    assert set(sim.hosts.values()) == {"v1.2.0"}  # the canary got its old version back
    assert all(s.state == "up" and s.version == "v1.2.0" for s in sim.servers)
    traffic_looks = [e for e in store.events(record.id) if e.kind in ("verdict", "enter ROLLING_BACK")]
    assert len([e for e in traffic_looks if e.kind == "verdict"]) <= 2


def test_broken_audio_never_gets_traffic(world):
    sim, store, controller, clock = world
    sim.behaviour["v1.3.0"] = VersionBehaviour(golden_ok=False)
    c = controller()
    record = c.start("v1.3.0")
    assert run(c, clock)[-1] == "ROLLED_BACK"
    assert "warm-up gate failed" in store.get(record.id).reason
    assert all(percent == 0 for _, percent in sim.applied)
    for servers, _ in sim.applied:
        assert all(s.state == "down" or s.version == "v1.2.0" for s in servers)


def test_the_warmup_gate_compares_with_the_canary_host_itself_before_its_switch(world):
    sim, store, controller, clock = world
    c = controller()
    record = c.start("v1.3.0")
    assert run(c, clock)[-1] == "SUCCEEDED"
    # the stable version's prompts from the drained canary host, then the new version's there:
    # no host carrying users' traffic is handed the golden prompts
    assert sim.golden_asked == [("node1", "v1.2.0", False), ("node1", "v1.3.0", False)]
    gate = next(e for e in store.events(record.id) if e.kind == "warmup_gate")
    assert gate.data["against"] == "node1 on v1.2.0 before its switch" and not gate.data["problems"]


def test_without_a_baseline_from_the_canary_host_a_stable_host_speaks_it(world):
    sim, store, controller, clock = world
    sim.golden_unanswered.add("node1")
    c = controller()
    record = c.start("v1.3.0")
    phases = run(c, clock)
    baseline = next(e for e in store.events(record.id) if e.kind == "golden baseline")
    assert baseline.data["host"] == "" and "No such container" in baseline.data["why"]
    assert ("node2", "v1.2.0", True) in sim.golden_asked  # the gate asked a stable host, as before
    assert phases[-1] == "ROLLED_BACK"  # and the canary, still unanswered, failed it


@pytest.mark.parametrize("problem, fragment", [
    ("missing tag", "not in the registry"),
    ("unreachable", "node2: unreachable"),
    ("mixed", "mixed versions"),
    ("already live", "already runs on every host"),
    ("mislabelled", "carries model version v1.2.0 (label io.voxfleet.model.version), not v1.3.0"),
])
def test_preflight_stops_and_touches_nothing(world, problem, fragment):
    sim, store, controller, clock = world
    version = "v1.3.0"
    if problem == "missing tag":
        version = "v9.9.9"
    elif problem == "unreachable":
        sim.unreachable = {"node2"}
    elif problem == "mixed":
        sim.hosts["node3"] = "v1.1.0"
    elif problem == "mislabelled":  # a tag pushed with another version's image
        sim.mislabelled["v1.3.0"] = "v1.2.0"
    else:
        version = "v1.2.0"
    c = controller()
    record = c.start(version)
    assert run(c, clock)[-1] == "PREFLIGHT_FAILED"
    assert fragment in store.get(record.id).reason
    assert sim.applied == [] and sim.deploys == []


def test_a_second_start_is_refused_while_one_is_active(world):
    sim, store, controller, clock = world
    first = controller().start("v1.3.0")
    with pytest.raises(RolloutError, match=first.id):
        controller().start("v1.4.0")


@pytest.mark.parametrize("crash_on, at_phase", [("apply", "TRAFFIC"), ("deploy", "CANARY_DEPLOY"),
                                                ("deploy", "PROMOTING"), ("apply", "PROMOTING")])
def test_a_crash_between_state_written_and_action_done_resumes_the_same(world, crash_on, at_phase):
    sim, store, controller, clock = world
    c = controller()
    record = c.start("v1.3.0")
    crashed = False
    for _ in range(500):
        if not crashed and store.get(record.id).phase == at_phase:
            sim.crash_on, crashed = crash_on, True  # armed: the next such action dies after it happened
        try:
            r = c.tick()
        except Crash:
            c = controller()  # the process died; a new one resumes from the store
            continue
        if Phase(r.phase).terminal:
            break
        clock.sleep(10)
    assert crashed and store.get(record.id).phase == "SUCCEEDED"
    live = [e.data["canary_percent"] for e in store.events(record.id) if e.kind == "weights live"]
    assert live == [10, 50, 67]  # each step once, in order, then promotion by capacity: none repeated or skipped
    shares = [p for _, p in sim.applied]
    steps_seen = [p for p in shares if p]  # 0: before the canary, and all on the new version at the end
    assert steps_seen[0] == 10 and steps_seen == sorted(steps_seen), f"the LB saw shares {shares}: a jump back"
    assert set(steps_seen) == {10, 50, 67, 100}, f"the LB saw shares {shares}: a step skipped or made up"


def test_inconclusive_too_long_pauses_then_resume_continues(tmp_path, world):
    sim, store, _, clock = world
    sim.rps = 0.0  # no traffic at all: never enough data
    fleet = make_fleet(tmp_path, dict(POLICY, step_max_s=120))
    c = Controller(fleet, store, sim, sim, sim, sim, sim, clock, actor="tester")
    record = c.start("v1.3.0")
    assert run(c, clock)[-1] == "PAUSED"
    assert "inconclusive for over 120s" in store.get(record.id).reason
    sim.rps = 20.0
    resumed = c.resume("traffic is back")
    assert resumed.phase == "TRAFFIC"
    assert run(c, clock)[-1] == "SUCCEEDED"


def test_inconclusive_too_long_fails_when_policy_says_so(tmp_path, world):
    sim, store, _, clock = world
    sim.rps = 0.0
    fleet = make_fleet(tmp_path, dict(POLICY, step_max_s=120, inconclusive_action="fail"))
    c = Controller(fleet, store, sim, sim, sim, sim, sim, clock, actor="tester")
    c.start("v1.3.0")
    assert run(c, clock)[-1] == "ROLLED_BACK"


def test_abort_takes_traffic_off_at_once_from_another_process(world):
    sim, store, controller, clock = world
    c = controller()
    record = c.start("v1.3.0")
    to_first_step(c, clock, record.id)
    other = controller()  # an operator's `rollout abort` in another terminal
    aborted = other.abort("sounds odd")
    assert aborted.phase == "ROLLING_BACK"
    assert sim.share("v1.3.0") == 0.0  # one reload later the new version has no traffic
    assert run(c, clock)[-1] == "ROLLED_BACK"
    assert "aborted by tester: sounds odd" in store.get(record.id).reason
    assert set(sim.hosts.values()) == {"v1.2.0"}


def test_state_round_trips_through_the_store(world):
    sim, store, controller, clock = world
    record = controller().start("v1.3.0")
    state = RolloutState.from_dict(store.get(record.id).state)
    assert state.phase is Phase.PENDING and state.canary_hosts == ["node1"]
    assert state.batches == [["node2"], ["node3"]]


def test_a_canary_that_never_starts_is_restored_too(world):
    sim, store, controller, clock = world
    sim.broken_start = {"v1.3.0"}  # the start fails but leaves the new container on node1
    c = controller()
    record = c.start("v1.3.0")
    assert run(c, clock)[-1] == "ROLLED_BACK"
    assert sim.hosts == {"node1": "v1.2.0", "node2": "v1.2.0", "node3": "v1.2.0"}
    assert "not ready" in store.get(record.id).reason


def test_an_abort_racing_a_failing_action_still_rolls_back(world):
    sim, store, controller, clock = world
    c = controller()
    record = c.start("v1.3.0")
    to_first_step(c, clock, record.id)
    controller().abort("operator")  # meanwhile, in another terminal
    # the foreground's action (begun in TRAFFIC) now fails: the abort's path must win
    c._on_error(store.get(record.id), RuntimeError("LB unreachable"), acting=Phase.TRAFFIC)
    assert store.get(record.id).phase == "ROLLING_BACK"
    assert run(c, clock)[-1] == "ROLLED_BACK"
    assert set(sim.hosts.values()) == {"v1.2.0"}
    assert "error superseded" in [e.kind for e in store.events(record.id)]


def a_minute_into_the_first_step(controller, clock) -> tuple[Controller, Record]:
    c = controller()
    record = c.start("v1.3.0")
    to_first_step(c, clock, record.id)
    clock.sleep(70)
    return c, record


def test_an_unexpected_error_after_traffic_moved_rolls_back(world):
    sim, store, controller, clock = world
    c, record = a_minute_into_the_first_step(controller, clock)
    sim.fail_apply = KeyError("surprise")  # the next weight change blows up unexpectedly
    phases = run(c, clock)
    assert phases[-1] == "ROLLED_BACK" and "surprise" in store.get(record.id).reason
    assert set(sim.hosts.values()) == {"v1.2.0"}


def test_an_lb_that_refuses_a_weight_change_pauses_the_rollout_naming_it(world):
    sim, store, controller, clock = world
    c, record = a_minute_into_the_first_step(controller, clock)
    before = sim.share("v1.3.0")
    sim.fail_apply = TrafficChangeError("LB lb2: traffic change to 50% refused: nginx: [emerg] no space left; "
                                        "the other LBs are back on the previous split (lb1)")
    phases = run(c, clock)
    paused = store.get(record.id)
    assert phases[-1] == "PAUSED" and "LB lb2" in paused.reason and "rollout resume" in paused.reason
    assert sim.share("v1.3.0") == before and set(sim.hosts.values()) == {"v1.2.0", "v1.3.0"}  # nothing moved
    c.resume("lb2 has disk again")
    assert run(c, clock)[-1] == "SUCCEEDED" and set(sim.hosts.values()) == {"v1.3.0"}


def test_a_canary_host_that_is_gone_is_drained_and_the_roll_back_goes_on_without_it(world):
    sim, store, controller, clock = world
    sim.behaviour["v1.3.0"] = VersionBehaviour(error_rate=0.5)
    c = controller()
    record = c.start("v1.3.0")
    to_first_step(c, clock, record.id)
    canary = next(h for h, v in sim.hosts.items() if v == "v1.3.0")
    sim.unreachable.add(canary)  # powered off mid-step
    phases = run(c, clock)
    done = store.get(record.id)
    assert phases[-1] == "ROLLED_BACK", phases
    assert f"{canary} could not be reached to restore v1.2.0: kept out of traffic" in done.reason
    assert [s.state for s in sim.servers if s.address == sim.addresses[canary]] == ["down"]
    assert {h: v for h, v in sim.hosts.items() if h != canary} == {h: "v1.2.0" for h in sim.hosts if h != canary}
    restored = [e for e in store.events(record.id) if e.kind == "previous version restored"][0]
    assert restored.data["lost"] == [canary] and canary not in restored.data["hosts"]


def test_a_fail_verdict_drains_the_canary_in_the_same_tick(world):
    sim, store, controller, clock = world
    sim.behaviour["v1.3.0"] = VersionBehaviour(error_rate=0.5)
    c = controller()
    c.start("v1.3.0")
    for _ in range(100):
        r = c.tick()
        if r.phase == "ROLLING_BACK":
            break
        clock.sleep(10)
    assert sim.share("v1.3.0") == 0.0  # the tick that decided also drained


def test_a_healthy_canary_waits_for_the_promotion_window(tmp_path, world):
    sim, store, _, clock = world
    # 1_800_000_000 is Fri 2027-01-15 08:00 UTC; the window opens at 09:00 UTC
    fleet = make_fleet(tmp_path, dict(POLICY, promotion_window="09:00-10:00", promotion_timezone="UTC",
                                      step_max_s=7200))
    c = Controller(fleet, store, sim, sim, sim, sim, sim, clock, actor="tester")
    record = c.start("v1.3.0")
    while clock.now() < 1_800_000_000 + 3000:  # held for 50 minutes, a look a minute
        c.tick()
        clock.sleep(60)
    held = store.get(record.id)
    assert held.phase == "TRAFFIC" and held.state["step_index"] == 0
    assert "holding for the promotion window 09:00-10:00 UTC" in held.state["last_verdict"]["decision"]["reason"]
    assert run(c, clock)[-1] == "SUCCEEDED"
    first_50 = next(e.at for e in store.events(record.id) if e.kind == "weights live"
                    and e.data["canary_percent"] == 50)
    assert first_50 >= 1_800_000_000 + 3600


def test_a_shifted_calendar_opens_the_window_and_moves_nothing_else(tmp_path, world):
    """VOXFLEET_CALENDAR_SHIFT_FILE's clock: promotion windows are judged at the shifted
    time; events, dwell and leases keep the controller's own clock."""
    sim, store, _, clock = world
    fleet = make_fleet(tmp_path, dict(POLICY, promotion_window="20:00-21:00", promotion_timezone="UTC",
                                      step_max_s=7200))
    shift = tmp_path / "shift"
    c = Controller(fleet, store, sim, sim, sim, sim, sim, clock, actor="tester", calendar=ShiftedClock(clock, shift))
    record = c.start("v1.3.0")
    for _ in range(60):  # 10 minutes: held, 11 hours before the window opens
        c.tick()
        clock.sleep(10)
    assert store.get(record.id).state["step_index"] == 0
    shift.write_text(str(12 * 3600))
    jumped_at = clock.now()
    assert run(c, clock)[-1] == "SUCCEEDED"
    step2 = next(e for e in store.events(record.id) if e.kind == "enter TRAFFIC" and "step 2" in e.data["reason"])
    assert jumped_at <= step2.at < jumped_at + 60  # the next look after the shift, on the controller's clock


def test_pause_holds_traffic_and_resume_continues(world):
    sim, store, controller, clock = world
    c = controller()
    record = c.start("v1.3.0")
    to_first_step(c, clock, record.id)
    paused = controller(actor="alice").pause("checking a complaint")
    assert paused.phase == "PAUSED" and "paused by alice: checking a complaint" in paused.reason
    applied = len(sim.applied)
    for _ in range(30):
        c.tick()
        clock.sleep(10)
    assert len(sim.applied) == applied and sim.share("v1.3.0") > 0  # nothing moves while paused
    controller(actor="bob").resume("all clear")
    assert run(c, clock)[-1] == "SUCCEEDED"
    events = store.events(record.id)
    pause_at = next(i for i, e in enumerate(events) if e.kind == "pause")
    resumed = next(e for e in events[pause_at:] if e.kind == "enter TRAFFIC")
    assert (events[pause_at].actor, resumed.actor) == ("alice", "bob") and "resumed by bob" in resumed.data["reason"]
    assert {e.actor for e in events if e.kind == "weights live"} == {"tester"}  # the ticking controller's
    pause = next(e for e in store.events(record.id) if e.kind == "pause")
    assert pause.data["reason"] == "checking a complaint" and pause.data["phase"] == "PAUSED"


def test_promote_skips_the_wait_but_not_a_failing_analysis(world):
    sim, store, controller, clock = world
    c = controller()
    record = c.start("v1.3.0")
    to_first_step(c, clock, record.id)
    controller().promote("looks good")
    c.tick()  # the next analysis advances at once, without the 60 s dwell
    assert store.get(record.id).state["step_index"] == 1
    sim.behaviour["v1.3.0"] = VersionBehaviour(error_rate=0.6)
    controller().promote("yolo", full=True)
    assert run(c, clock)[-1] == "ROLLED_BACK"  # analysis still watching


def test_promote_full_runs_every_remaining_step_and_batch(world):
    sim, store, controller, clock = world
    c = controller()
    record = c.start("v1.3.0")
    to_first_step(c, clock, record.id)
    controller().promote("ship it", full=True)
    ticks = run(c, clock)
    assert ticks[-1] == "SUCCEEDED" and ticks.count("TRAFFIC") <= 6
    assert set(sim.hosts.values()) == {"v1.3.0"}


def test_set_weight_holds_a_manual_share_until_resume(world):
    sim, store, controller, clock = world
    c = controller()
    record = c.start("v1.3.0")
    to_first_step(c, clock, record.id)
    controller().set_weight(30, "more samples please")
    for _ in range(20):
        c.tick()
        clock.sleep(10)
    held = store.get(record.id)
    assert held.state["weight_live"] == 30 and held.state["step_index"] == 0 and held.phase == "TRAFFIC"
    assert abs(sim.share("v1.3.0") - 0.3) < 1e-9
    with pytest.raises(RolloutError, match="0..100"):
        controller().set_weight(130, "typo")
    controller().resume("back to the plan")
    assert run(c, clock)[-1] == "SUCCEEDED"


def test_operator_verbs_name_what_they_cannot_do(world):
    sim, store, controller, clock = world
    with pytest.raises(RolloutError, match="no active rollout"):
        controller().pause("nothing")
    controller().start("v1.3.0")
    with pytest.raises(RolloutError, match="not in PENDING"):
        controller().pause("too early")
    with pytest.raises(RolloutError, match="nothing to promote in PENDING"):
        controller().promote("too early")


def test_rollback_knows_the_version_before_the_last_success(world):
    from canary.rollout.production import previous_version

    sim, store, controller, clock = world
    c = controller()
    assert previous_version(store, c.fleet_key) is None
    c.start("v1.3.0")
    assert run(c, clock)[-1] == "SUCCEEDED"
    assert previous_version(store, c.fleet_key) == "v1.2.0"
    c.start("v1.2.0")  # rolling back is a release of the old version, by the same safe path
    assert run(c, clock)[-1] == "SUCCEEDED"
    assert set(sim.hosts.values()) == {"v1.2.0"}


def test_each_log_line_says_what_happened_to_which_host(tmp_path, world):
    sim, store, _, clock = world
    lines: list[str] = []
    c = Controller(make_fleet(tmp_path), store, sim, sim, sim, sim, sim, clock, actor="tester", log=lines.append)
    c.start("v1.3.0")
    assert run(c, clock)[-1] == "SUCCEEDED"
    assert "TRAFFIC step 1/3 (10%): weights live — 10% of traffic to v1.3.0 on node1" in lines
    assert ("CANARY_DEPLOY: golden baseline — node1 spoke the golden prompts on v1.2.0 out of traffic: "
            "the warm-up gate's baseline") in lines
    switched = [line for line in lines if "switch" in line]
    assert switched == ["PROMOTING: switching — node2 out of traffic, switching to v1.3.0",
                        "PROMOTING: batch switched — node2 now on v1.3.0 and back in traffic",
                        "PROMOTING: switching — node3 out of traffic, switching to v1.3.0"]
    assert "SUCCEEDED: enter SUCCEEDED — v1.3.0 runs on every host" in lines


def test_crash_tests_name_an_event_kind_or_the_nth_event_of_the_process():
    from canary.rollout.controller import _crash_now

    assert _crash_now("weights live", "weights live", 5) and not _crash_now("weights live", "verdict", 1)
    assert _crash_now("*", "verdict", 1) and not _crash_now("*", "verdict", 2)
    assert _crash_now("*2", "enter TRAFFIC", 2) and not _crash_now("*2", "verdict", 1)
    assert not _crash_now("", "verdict", 1)


@pytest.mark.parametrize("error_rate, ending", [(0.0, "SUCCEEDED"), (0.3, "ROLLED_BACK")])
def test_every_deploy_pulls_the_digest_preflight_resolved(world, error_rate, ending):
    """A tag pushed again mid-rollout cannot reach a host: the new version by the digest its
    tag had at preflight, the old one (a roll back) by the digest its hosts ran then."""
    sim, store, controller, clock = world
    sim.behaviour["v1.3.0"] = VersionBehaviour(error_rate=error_rate)
    c = controller()
    record = c.start("v1.3.0")
    assert run(c, clock)[-1] == ending
    assert store.get(record.id).state["image_digest"] == "sha256:v1.3.0"
    assert {d for v, d in sim.digests if v == "v1.3.0"} == {"sha256:v1.3.0"}
    assert {d for v, d in sim.digests if v == "v1.2.0"} == ({"sha256:v1.2.0"} if ending == "ROLLED_BACK" else set())
    live = "sha256:v1.3.0" if ending == "SUCCEEDED" else "sha256:v1.2.0"
    assert {s["digest"] for s in status_view(store.get(record.id), clock.now())["lb_servers"]} == {live}


def test_listen_first_holds_the_canary_at_zero_percent_until_resumed(tmp_path):
    from canary.adapters.store import Store
    from tests.unit.fakes import FakeClock, SimulatedFleet

    clock = FakeClock()
    sim = SimulatedFleet(hosts={f"node{i}": "v1.2.0" for i in (1, 2, 3)},
                         addresses={f"node{i}": f"10.9.0.{i}:6006" for i in (1, 2, 3)},
                         registry_tags={"v1.2.0", "v1.3.0"}, clock=clock)
    store = Store(tmp_path / "state.db")
    c = Controller(make_fleet(tmp_path, dict(POLICY, listen_first=True)), store, sim, sim, sim, sim, sim, clock)
    record = c.start("v1.3.0")
    assert run(c, clock)[-1] == "PAUSED"
    held = store.get(record.id)
    assert held.state["paused_phase"] == "WARMUP_GATE" and "listen first" in (held.reason or "")
    assert sim.hosts["node1"] == "v1.3.0" and sim.applied[-1][1] == 0  # deployed, no share yet
    assert [v for v, _ in sim.digests if v == "v1.3.0"]
    gates = len([e for e in store.events(record.id) if e.kind == "warmup_gate"])
    c.resume("listened: sounds right")
    assert run(c, clock)[-1] == "SUCCEEDED"
    assert len([e for e in store.events(record.id) if e.kind == "warmup_gate"]) == gates + 1  # gated again
