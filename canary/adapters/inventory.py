"""Read the operator's inventory the way Ansible reads it: `ansible-inventory --list`.

Parsing (YAML or INI, group_vars, host_vars) is Ansible's, so the controller sees
exactly what the playbooks will see; `canary.decisions.inventory.check_fleet` checks it.

Every command reads the inventory, and `ansible-inventory` costs half a second of CPU a
run: a timer's ticks and a watched `rollout status` would spend it again and again on
files that did not change. So its output is kept (0600, in a 0700 cache directory)
under a key made of every file the inventory is read from, byte for byte, and the
Ansible settings that shape the parse. An inventory with anything that is not plain
data (a script, an inventory plugin, which may answer differently with nothing on disk
changed) is read afresh every time, as is one holding vaulted values (the cache would keep
them decrypted).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from canary.adapters.private_files import private_dir, write_private_file
from canary.decisions.inventory import Fleet, InventoryError, check_fleet

CACHE_DIR_ENV = "VOXFLEET_CACHE_DIR"
CACHE_KEPT_S = 7 * 86400  # an entry not rewritten for this long is removed at the next write
# a folder holding more is not an inventory of its own (-i /etc/ansible/hosts): not cached
MAX_CACHED_FILES, MAX_CACHED_BYTES = 200, 4 << 20
# what makes a file more than plain data: an inventory plugin's config, a vaulted value
_NOT_PLAIN = re.compile(rb"^plugin\s*:|\$ANSIBLE_VAULT;|!vault\b", re.MULTILINE)
# the ansible.cfg that ansible-inventory reads, in Ansible's order (ANSIBLE_CONFIG first)
_CONFIGS = ("ansible.cfg", "~/.ansible.cfg", "/etc/ansible/ansible.cfg")


def cache_dir() -> Path:
    """VOXFLEET_CACHE_DIR, else $XDG_CACHE_HOME/voxfleet, else ~/.cache/voxfleet."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "voxfleet"


def _run_ansible_inventory(source: Path) -> dict[str, Any]:
    binary = Path(sys.executable).with_name("ansible-inventory")
    cmd = [str(binary) if binary.exists() else "ansible-inventory", "-i", str(source), "--list"]
    # stdin from /dev/null: Ansible refuses a non-blocking stdin, which any ssh sharing
    # ours (a timer's overlapping ticks) may leave behind.
    result = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0 or "[WARNING]: Unable to parse" in result.stderr:
        detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
        raise InventoryError(source, [f"ansible-inventory cannot parse it: {' '.join(detail[-3:])}"])
    return json.loads(result.stdout)


def cache_key(source: Path) -> str | None:
    """What the parse depends on, hashed; None when the inventory is not plain data alone."""
    folder = source if source.is_dir() else source.parent
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if len(files) > MAX_CACHED_FILES:
        return None
    digest = hashlib.sha256()
    total = 0
    for path in files:
        content = path.read_bytes()
        total += len(content)
        if total > MAX_CACHED_BYTES or os.access(path, os.X_OK) or _NOT_PLAIN.search(content):
            return None
        digest.update(f"{path.relative_to(folder)}\0{len(content)}\0".encode() + content)
    configs = [Path(c).expanduser() for c in (os.environ.get("ANSIBLE_CONFIG", ""), *_CONFIGS) if c]
    config = next((c for c in configs if c.is_file()), Path())
    settings = {k: v for k, v in os.environ.items() if k.startswith("ANSIBLE_")}
    digest.update(json.dumps([str(source.resolve()), version("ansible-core"), sorted(settings.items()),
                              config.read_text() if config.is_file() else ""]).encode())
    return digest.hexdigest()


def ansible_inventory_list(source: Path) -> dict[str, Any]:
    """`ansible-inventory --list` of `source`, from the cache while no file it is read from changed."""
    key = cache_key(source)
    if key is None:
        return _run_ansible_inventory(source)
    kept = cache_dir() / "inventory" / f"{hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:24]}.json"
    try:
        saved = json.loads(kept.read_bytes())
        if saved.get("key") == key:
            return dict(saved["inventory"])
    except (OSError, ValueError, AttributeError, KeyError, TypeError):  # none yet, or unreadable: read afresh
        pass
    data = _run_ansible_inventory(source)
    try:
        private_dir(kept.parent, tighten=True)
        write_private_file(kept, json.dumps({"key": key, "inventory": data}).encode())
        for old in kept.parent.glob("*.json"):  # inventories gone (a test's, a removed checkout's)
            if time.time() - old.stat().st_mtime > CACHE_KEPT_S:
                old.unlink(missing_ok=True)
    except OSError:  # a read-only home: every command reads the inventory afresh
        pass
    return data


def load_fleet(source: Path | str, policy_overrides: dict[str, Any] | None = None) -> Fleet:
    """Read and check the inventory at `source`; raise InventoryError listing every problem."""
    source = Path(source)
    if not source.exists():
        raise InventoryError(source, ["does not exist (for the sandbox, run `rollout sandbox up` first)"])
    data = ansible_inventory_list(source)
    hostvars: dict[str, dict[str, Any]] = data.get("_meta", {}).get("hostvars", {})
    return check_fleet(source, data, hostvars, policy_overrides)
