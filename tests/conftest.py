"""Shared fixtures: model directories built by the real recipe, and the sandbox fleet,
each once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from canary.adapters.inventory import load_fleet
from canary.decisions.inventory import Fleet
from models.recipe import build
from tests.sandbox_fleet import INVENTORY, bring_up, docker_works

REPO = Path(__file__).resolve().parents[1]
# These machines are noisy (2 cores shared with a sandbox fleet): no per-example deadline.
settings.register_profile("voxfleet", deadline=None)
settings.load_profile("voxfleet")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The capacity-share tests reshape the sandbox (1,1,2): they run last, so nothing after
    them needs it put back (the next session's `sandbox up` and deploy do that)."""
    items.sort(key=lambda item: item.path.name == "test_capacity_shares.py")


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
    """The sandbox fleet with v1.2.0 and v1.3.0 published (up once, left up)."""
    if not docker_works():  # a failure, not a skip: deselect with -m "not sandbox" where there is no engine
        pytest.fail("no Docker engine: the sandbox fleet needs one (start dockerd, or deselect -m 'not sandbox')")
    bring_up()
    return load_fleet(INVENTORY)


@pytest.fixture(scope="session")
def prepared_lbs(sandbox: Fleet) -> list[str]:
    """The nginx_lb role run once on every LB this session, as each rollout's preflight
    runs it: whatever a sandbox left up from another checkout had, the LBs now serve this
    tree's config, and the fast path (voxfleet-lb-apply) is there to change their split."""
    from canary.adapters import fleet as fleet_ops

    fleet_ops.set_traffic(sandbox, canary={}, stable={n.name: "v1.2.0" for n in sandbox.nodes}, canary_percent=0)
    return list(sandbox.lbs)


@pytest.fixture
def stable_fleet(sandbox: Fleet, prepared_lbs: list[str]) -> Fleet:
    """Every node on v1.2.0, the LB spreading traffic evenly over them: the state before a release."""
    from canary.adapters import fleet as fleet_ops
    from canary.adapters import registry
    from canary.adapters.rollout_ports import LbTrafficPort
    from canary.decisions.traffic import canary_percent_of

    # a deploy that changes nothing still takes its time: only when a node is not running the
    # registry's v1.2.0 (the tag is rebuilt from this tree each session), or is not healthy
    digest = registry.tag_digest(sandbox.registry_push, sandbox.repository, "v1.2.0", sandbox.registry_insecure)
    states = fleet_ops.facts(sandbox)
    current = [s for s in states.values() if s.version == "v1.2.0" and s.health == "healthy"
               and digest and (s.image_digest or "").endswith(digest)]
    if len(current) < len(sandbox.nodes):
        fleet_ops.deploy(sandbox, "v1.2.0")
    # the split by the controller's own fast path: the role's run is the preflight's business
    servers = fleet_ops.split(sandbox, canary={}, stable={n.name: "v1.2.0" for n in sandbox.nodes}, canary_percent=0)
    LbTrafficPort(sandbox).apply(servers, canary_percent_of(servers))
    return sandbox
