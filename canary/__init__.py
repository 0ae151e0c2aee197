"""voxfleet's rollout controller and its `rollout` command line.

The folders are the layers; each imports only from the ones above it in this list
(`tests/unit/test_layers.py` holds them to it):

- `decisions/`: pure functions of data (policy, inventory rules, plan and weights,
  the judge, schedules, quality comparison). No I/O: unit-tested without it.
- `adapters/`: the only code that reaches the world: hosts (through Ansible, the one
  connector), the LB's log, the registry, the local Docker engine, the state store
  (SQLite) and webhooks.
- `rollout/`: the controller, which decides with `decisions/` and acts through ports
  that `adapters/` implement; `release/`: the chain from a model version to a
  published image (artifact check, gate, publish).
- `cli/`: the `rollout` verbs, one module per verb group.
- `devtools/`: the sandbox fleet, the load generator and the demo: development and
  test tools, not part of what an operator runs against a real fleet.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# The inventory every verb uses without `-i`: the local sandbox (`rollout sandbox up` writes it).
DEFAULT_INVENTORY = REPO_ROOT / "inventory" / "sandbox"
