"""End-to-end tests run on the shared sandbox fleet (fixtures `sandbox` and
`stable_fleet` in tests/conftest.py, helpers in tests/sandbox_fleet.py and helpers.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def state_dir(tmp_path) -> dict[str, str]:
    """A state store of the test's own: its rollouts and history only."""
    return {"VOXFLEET_STATE_DIR": str(tmp_path / "state")}
