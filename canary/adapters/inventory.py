"""Read the operator's inventory the way Ansible reads it: `ansible-inventory --list`.

Parsing (YAML or INI, group_vars, host_vars) is Ansible's, so the controller sees
exactly what the playbooks will see; `canary.decisions.inventory.check_fleet` checks it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from canary.decisions.inventory import Fleet, InventoryError, check_fleet


def ansible_inventory_list(source: Path) -> dict[str, Any]:
    binary = Path(sys.executable).with_name("ansible-inventory")
    cmd = [str(binary) if binary.exists() else "ansible-inventory", "-i", str(source), "--list"]
    # stdin from /dev/null: Ansible refuses a non-blocking stdin, which any ssh sharing
    # ours (a timer's overlapping ticks) may leave behind.
    result = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0 or "[WARNING]: Unable to parse" in result.stderr:
        detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
        raise InventoryError(source, [f"ansible-inventory cannot parse it: {' '.join(detail[-3:])}"])
    return json.loads(result.stdout)


def load_fleet(source: Path | str, policy_overrides: dict[str, Any] | None = None) -> Fleet:
    """Read and check the inventory at `source`; raise InventoryError listing every problem."""
    source = Path(source)
    if not source.exists():
        raise InventoryError(source, ["does not exist (for the sandbox, run `rollout sandbox up` first)"])
    data = ansible_inventory_list(source)
    hostvars: dict[str, dict[str, Any]] = data.get("_meta", {}).get("hostvars", {})
    return check_fleet(source, data, hostvars, policy_overrides)
