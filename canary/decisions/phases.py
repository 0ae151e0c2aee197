"""The rollout's phases: the state machine README.md draws under "The rollout"."""

from __future__ import annotations

import enum


class Phase(enum.StrEnum):
    PENDING = "PENDING"
    PREFLIGHT = "PREFLIGHT"
    PREPULL = "PREPULL"
    CANARY_DEPLOY = "CANARY_DEPLOY"
    WARMUP_GATE = "WARMUP_GATE"
    TRAFFIC = "TRAFFIC"
    PROMOTING = "PROMOTING"
    SUCCEEDED = "SUCCEEDED"
    ROLLING_BACK = "ROLLING_BACK"
    ROLLED_BACK = "ROLLED_BACK"
    FAILED = "FAILED"  # roll back itself failed: an operator is needed
    PREFLIGHT_FAILED = "PREFLIGHT_FAILED"  # stopped before touching anything
    PAUSED = "PAUSED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Phase.SUCCEEDED, Phase.ROLLED_BACK, Phase.FAILED, Phase.PREFLIGHT_FAILED})
# Exit codes a CI job can use.
EXIT_SUCCEEDED, EXIT_ERROR, EXIT_ROLLED_BACK, EXIT_PAUSED = 0, 1, 3, 4
EXIT_CODES = {Phase.SUCCEEDED: EXIT_SUCCEEDED, Phase.ROLLED_BACK: EXIT_ROLLED_BACK, Phase.FAILED: EXIT_ERROR,
              Phase.PREFLIGHT_FAILED: EXIT_ERROR, Phase.PAUSED: EXIT_PAUSED}
