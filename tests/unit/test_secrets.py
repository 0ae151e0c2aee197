"""Secrets stay secret: the notify URL is stored, logged and shown redacted only (the real
one in a 0600 file the later ticks read); the state store is private (0700/0600)."""

from __future__ import annotations

import argparse
import json
import logging
import stat
from pathlib import Path

import pytest

from canary.adapters.notify import Notice, WebhookNotifier, notifier_for
from canary.adapters.private_files import SECRETS_DIR, load_secret
from canary.adapters.store import Store
from canary.cli.rollout import cmd_history, cmd_show
from canary.decisions.policy import parse_policy
from canary.decisions.redact import is_redacted, redact_url
from canary.decisions.status import status_view
from canary.rollout.controller import NOTIFY_SECRET, Controller
from canary.rollout.production import with_rollout_policy
from tests.unit.fakes import POLICY, FakeClock, SimulatedFleet, make_fleet, run
from tests.unit.webhook import webhook_server

TOKEN = "T000/B000/s3cr3tT0ken"
HOOK = f"https://user:pw@hooks.example.com:8443/services/{TOKEN}?x=1"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("url", "shown"), [
    ("https://hooks.slack.com/services/T0/B0/xyz", "https://hooks.slack.com/***"),
    (HOOK, "https://hooks.example.com:8443/***"),
    ("http://127.0.0.1:9?token=1", "http://127.0.0.1:9/***"),
    ("not a url/with/secret", "***"),
    ("", ""),
])
def test_a_url_is_redacted_to_its_scheme_and_host(url, shown):
    assert redact_url(url) == shown
    assert TOKEN not in redact_url(url) and "pw" not in redact_url(url)
    assert not url or is_redacted(redact_url(url))


@pytest.fixture
def webhook():
    """(a webhook URL with a token in its path, the notices it received)."""
    with webhook_server(f"/services/{TOKEN}") as hook:
        yield hook


@pytest.fixture
def fleet_world(tmp_path, monkeypatch, webhook):
    """A rollout started with `--set notify_url=<webhook>`; the inventory has none."""
    url, received = webhook
    monkeypatch.setenv("VOXFLEET_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("VOXFLEET_NOTIFY_URL", raising=False)
    clock = FakeClock()
    sim = SimulatedFleet(hosts={"node1": "v1.2.0", "node2": "v1.2.0", "node3": "v1.2.0"},
                         addresses={f"node{i}": f"10.9.0.{i}:6006" for i in (1, 2, 3)},
                         registry_tags={"v1.2.0", "v1.3.0"}, clock=clock)
    fleet = make_fleet(tmp_path, {**POLICY, "notify_url": url})
    store = Store(tmp_path / "state" / "rollouts.db")

    def controller(from_store: bool = False) -> Controller:
        """from_store: a later process (`rollout tick`), which reads the policy the rollout started with."""
        inventory = make_fleet(tmp_path) if from_store else fleet  # the inventory itself has no URL
        chosen = with_rollout_policy(inventory, store) if from_store else inventory
        return Controller(chosen, store, sim, sim, sim, sim, sim, clock, actor="tester",
                          notifier=WebhookNotifier(chosen.policy.notify_url) if chosen.policy.notify_url else None)

    yield store, controller, clock, tmp_path / "state", url, received
    store.close()


def test_the_notify_url_is_never_stored_shown_or_printed(fleet_world, capsys):
    store, controller, clock, state_dir, url, _ = fleet_world
    record = controller().start("v1.3.0")
    assert run(controller(from_store=True), clock)[-1] == "SUCCEEDED"
    record = store.get(record.id)
    assert record.state["policy"]["notify_url"] == redact_url(url) == url.split("/services")[0] + "/***"
    for path in state_dir.glob("rollouts.db*"):  # the database, its WAL and shared memory
        assert TOKEN.encode() not in path.read_bytes(), path
    assert TOKEN not in json.dumps([e.data for e in store.events(record.id)])
    assert TOKEN not in json.dumps(status_view(record, clock.now()), default=str)
    cmd_show(argparse.Namespace(rollout_id=record.id, html=None))
    cmd_history(argparse.Namespace(json=True, inventory=None, limit=50))
    printed = capsys.readouterr().out
    assert record.id in printed and TOKEN not in printed
    page = state_dir.parent / "report.html"
    cmd_show(argparse.Namespace(rollout_id=record.id, html=str(page)))
    assert record.id in page.read_text() and TOKEN not in page.read_text()


def test_a_later_tick_sends_to_the_url_given_at_start(fleet_world):
    store, controller, clock, state_dir, url, received = fleet_world
    record = controller().start("v1.3.0")  # `rollout start --detach`: this process sends nothing
    secret = state_dir / SECRETS_DIR / f"{record.id}.{NOTIFY_SECRET}"
    assert secret.read_text() == url
    assert (mode(secret), mode(secret.parent)) == (0o600, 0o700)
    later = controller(from_store=True)  # a `rollout tick` process: the inventory has no notify_url
    assert later.fleet.policy.notify_url == url
    run(later, clock)
    later.notifier.flush()
    assert [m["voxfleet"]["kind"] for m in received][::len(received) - 1] == ["started", "succeeded"]
    assert all(m["path"] == f"/services/{TOKEN}" for m in received)
    assert not secret.exists()  # the rollout ended: its secret is gone
    assert load_secret(state_dir, record.id, NOTIFY_SECRET) == ""


def test_a_redacted_url_is_never_sent_to(monkeypatch):
    monkeypatch.delenv("VOXFLEET_NOTIFY_URL", raising=False)
    assert type(notifier_for("https://hooks.example.com/***")).__name__ == "NullNotifier"
    monkeypatch.setenv("VOXFLEET_NOTIFY_URL", HOOK)
    assert notifier_for("https://hooks.example.com/***").url == HOOK  # type: ignore[union-attr]


def test_a_failed_send_logs_the_url_redacted(caplog):
    url = f"http://127.0.0.1:9/services/{TOKEN}"
    notifier = WebhookNotifier(url, timeout_s=0.5, attempts=1, backoff_s=0.01)
    with caplog.at_level(logging.WARNING, logger="voxfleet.notify"):
        notifier.notify(Notice("rolled_back", "r-1", "v1.3.0", "rolled back"))
        notifier.flush(10)
    assert "failed after 1 attempts" in caplog.text and "http://127.0.0.1:9/***" in caplog.text
    assert TOKEN not in caplog.text
    with pytest.raises(ValueError) as refused:
        WebhookNotifier(f"ftp://hooks.example.com/{TOKEN}")
    assert TOKEN not in str(refused.value)


def test_the_policy_parser_accepts_the_redacted_form():
    assert parse_policy({"notify_url": redact_url(HOOK)}).notify_url == "https://hooks.example.com:8443/***"


# --- the state store's file modes ---------------------------------------------------------------------------


def test_a_new_store_is_private(tmp_path, caplog):
    db = tmp_path / "fresh" / "state" / "rollouts.db"
    with caplog.at_level(logging.WARNING, logger="voxfleet.files"), Store(db) as store:
        store.create("r-1", "fleet", "v1.3.0", None, "PENDING", {}, "tester", 1.0)
        files = [db, db.with_name("rollouts.db-wal"), db.with_name("rollouts.db-shm")]
        assert all(f.exists() for f in files)
        assert [mode(f) for f in files] == [0o600] * 3
    assert mode(db.parent) == 0o700
    assert "tightened" not in caplog.text  # private from the first byte, not made so afterwards


def test_an_existing_loose_store_is_tightened_and_a_loose_directory_warned_about(tmp_path, caplog):
    directory = tmp_path / "shared"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    db = directory / "rollouts.db"
    Store(db).close()
    db.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="voxfleet.files"), Store(db):
        assert mode(db) == 0o600
        assert all(mode(f) == 0o600 for f in directory.glob("rollouts.db-*"))
    assert f"state directory {directory} is mode 0755" in caplog.text
    assert f"{db} was mode 0644: tightened to 0600" in caplog.text
    assert mode(directory) == 0o755  # a directory that may be shared is not changed, only named
