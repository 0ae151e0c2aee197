"""Shared fixtures: model directories built by the real recipe, and the sandbox fleet,
each once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from canary.adapters.inventory import load_fleet
from canary.decisions.inventory import Fleet
from models.recipe import build
from tests.sandbox_fleet import INVENTORY, REPO, BackgroundBringUp, docker_works, ready_for_a_release, stable_everywhere

# These machines are noisy (2 cores shared with a sandbox fleet): no per-example deadline.
settings.register_profile("voxfleet", deadline=None)
settings.load_profile("voxfleet")


BRING_UP_LOG = REPO / "build" / "logs" / "sandbox-up.log"
_bring_up: BackgroundBringUp | None = None


def _order(item: pytest.Item) -> int:
    """Tests that need no Docker engine first (the sandbox comes up meanwhile), then those
    that do, in their own order; the capacity-share tests last: they reshape the sandbox
    (1,1,2), so nothing after them needs it put back (the next session's `sandbox up` and
    deploy do that)."""
    if item.path.name == "test_capacity_shares.py":
        return 2
    return 1 if item.get_closest_marker("sandbox") or item.get_closest_marker("docker") else 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    global _bring_up
    items.sort(key=_order)
    needs_sandbox = any(item.get_closest_marker("sandbox") for item in items)
    if needs_sandbox and not config.option.collectonly and docker_works():
        _bring_up = BackgroundBringUp(BRING_UP_LOG)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _bring_up:
        _bring_up.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _bring_up:
        terminalreporter.write_line(_bring_up.summary())


@pytest.fixture(autouse=True)
def _engine_after_bring_up(request: pytest.FixtureRequest) -> None:
    """A test that uses the Docker engine starts once the background bring-up is done with it."""
    if _bring_up and (request.node.get_closest_marker("sandbox") or request.node.get_closest_marker("docker")):
        _bring_up.wait()


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def model_dirs(model_root: Path) -> dict[str, Path]:
    """Healthy releases and broken variants, built from their seeds."""
    dirs = {v: build(v, model_root) for v in ("v1.2.0", "v1.3.0")}
    for variant in ("silent", "nan", "slow", "flaky", "mute"):
        dirs[f"v1.3.0-{variant}"] = build("v1.3.0", model_root, variant)
    return dirs


@pytest.fixture(scope="session")
def sandbox() -> Fleet:
    """The sandbox fleet ready for a release (tests/sandbox_fleet.py: up once, left up)."""
    if not docker_works():  # a failure, not a skip: deselect with -m "not sandbox" where there is no engine
        pytest.fail("no Docker engine: the sandbox fleet needs one (start dockerd, or deselect -m 'not sandbox')")
    if _bring_up:
        _bring_up.wait()
    else:  # a session that collected no sandbox test, yet asks for it
        ready_for_a_release()
    return load_fleet(INVENTORY)


@pytest.fixture
def stable_fleet(sandbox: Fleet) -> Fleet:
    """Every node on v1.2.0, the LB spreading traffic evenly over them: the state before a release."""
    from canary.adapters import fleet as fleet_ops
    from canary.adapters.rollout_ports import LbTrafficPort
    from canary.decisions.traffic import canary_percent_of

    stable_everywhere(sandbox)
    # the split by the controller's own fast path: the role's run is the preflight's business
    servers = fleet_ops.split(sandbox, canary={}, stable={n.name: "v1.2.0" for n in sandbox.nodes}, canary_percent=0)
    LbTrafficPort(sandbox).apply(servers, canary_percent_of(servers))
    return sandbox
