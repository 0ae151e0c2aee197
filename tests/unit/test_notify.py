"""Notices reach a real HTTP server; a dead webhook never blocks the controller."""

from __future__ import annotations

import time

import pytest

from canary.adapters.notify import Notice, WebhookNotifier
from canary.rollout.controller import Controller
from tests.unit.fakes import VersionBehaviour, run
from tests.unit.webhook import webhook_server


@pytest.fixture
def webhook():
    with webhook_server("/hook") as hook:
        yield hook


def rollout_with_webhook(world, url: str) -> str:
    """Run a v1.3.0 rollout to its end with notices to `url`; returns the final phase."""
    sim, store, controller, clock = world
    c = controller()
    c.notifier = WebhookNotifier(url)
    c.start("v1.3.0")
    phase = run(c, clock)[-1]
    c.notifier.flush()
    return phase


def test_a_rolled_back_rollout_sends_notices_that_name_version_step_reason_and_numbers(world, webhook):
    url, received = webhook
    world[0].behaviour["v1.3.0"] = VersionBehaviour(error_rate=0.4)
    assert rollout_with_webhook(world, url) == "ROLLED_BACK"
    kinds = [m["voxfleet"]["kind"] for m in received]
    assert kinds[0] == "started" and kinds[-1] == "rolled_back"
    last = received[-1]
    assert "v1.3.0" in last["text"] and "analysis failed" in last["text"]
    assert last["voxfleet"]["step"] == "1/3" and last["voxfleet"]["canary_requests"] > 0
    assert "error rate" in last["voxfleet"]["verdict"]
    assert all(isinstance(m["attachments"][0]["fields"], list) for m in received)  # Slack-compatible


def test_a_healthy_rollout_notices_each_step_and_success(world, webhook):
    url, received = webhook
    assert rollout_with_webhook(world, url) == "SUCCEEDED"
    kinds = [m["voxfleet"]["kind"] for m in received]
    assert kinds.count("step_passed") == 3 and kinds[-1] == "succeeded"


def test_a_dead_webhook_is_retried_briefly_logged_and_never_blocks(caplog):
    notifier = WebhookNotifier("http://127.0.0.1:9/none", timeout_s=0.5, attempts=2, backoff_s=0.05)
    started = time.monotonic()
    for i in range(5):
        notifier.notify(Notice("rolled_back", "r-1", "v1.3.0", f"rolled back {i}"))
    assert time.monotonic() - started < 0.1  # notify() only queues
    notifier.flush(10)
    assert len(notifier.failed) == 5 and not notifier.sent
    assert "failed after 2 attempts" in caplog.text


def test_controller_without_a_url_sends_nothing(world):
    sim, store, controller, clock = world
    assert type(controller().notifier).__name__ == "NullNotifier"
    assert isinstance(controller(), Controller)


def test_a_command_that_returns_at_once_still_sends_its_notice(webhook):
    """`rollout start --detach`, `pause`, `abort`: the process exits right after queueing."""
    import subprocess
    import sys

    url, received = webhook
    program = ("from canary.adapters.notify import Notice, WebhookNotifier\n"
               f"WebhookNotifier({url!r}).notify(Notice('started', 'r-1', 'v1.3.0', 'v1.3.0 started'))\n")
    subprocess.run([sys.executable, "-c", program], check=True, timeout=30)
    assert [body["voxfleet"]["kind"] for body in received] == ["started"]


def test_an_operator_pause_is_noticed_with_who_and_why(world, webhook):
    url, received = webhook
    sim, store, controller, clock = world
    c = controller()
    c.notifier = WebhookNotifier(url)
    c.start("v1.3.0")
    for _ in range(100):
        if c.tick().phase == "TRAFFIC":
            break
        clock.sleep(5)
    c.pause("checking the dashboards")
    c.pause("again")  # already paused: no second notice
    c.notifier.flush()
    paused = [m for m in received if m["voxfleet"]["kind"] == "paused"]
    assert len(paused) == 1 and "paused by" in paused[0]["text"] and "checking the dashboards" in paused[0]["text"]
