"""The inventory as the real `ansible-inventory` reads it (nothing patched), kept while no file it is read
from changes (canary.adapters.inventory): an edit is seen by the next command, what is
not plain data is read afresh every time, and the kept copy is the user's alone."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from canary.adapters import inventory

pytestmark = pytest.mark.integration


@pytest.fixture
def kept_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A cache of this test's own. Only a run of ansible-inventory writes its entry, each
    write a new file (replaced whole): an entry unchanged means no run."""
    monkeypatch.setenv(inventory.CACHE_DIR_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / "inventory"


def written(kept_dir: Path) -> tuple[int, int] | None:
    """(inode, mtime) of the one kept entry, or None when nothing is kept."""
    entries = list(kept_dir.iterdir()) if kept_dir.exists() else []
    assert len(entries) <= 1, entries
    return (entries[0].stat().st_ino, entries[0].stat().st_mtime_ns) if entries else None


def fleet_files(root: Path, port: int = 6006) -> Path:
    (root / "group_vars").mkdir(parents=True)
    (root / "hosts.yml").write_text("all:\n  children:\n    tts_nodes:\n      hosts:\n        gpu-a1:\n"
                                    "          ansible_host: 10.0.0.1\n")
    (root / "group_vars" / "all.yml").write_text(f"tts_node_port: {port}\n")
    return root


def port_of(data: dict) -> int:
    return data["_meta"]["hostvars"]["gpu-a1"]["tts_node_port"]


def test_a_second_read_is_kept_and_an_edit_is_seen_by_the_next(kept_dir, tmp_path):
    source = fleet_files(tmp_path / "inv")
    assert port_of(inventory.ansible_inventory_list(source)) == 6006
    first = written(kept_dir)
    assert port_of(inventory.ansible_inventory_list(source)) == 6006
    assert first is not None and written(kept_dir) == first  # kept: ansible-inventory did not run
    (source / "group_vars" / "all.yml").write_text("tts_node_port: 7007\n")  # same size, same second
    assert port_of(inventory.ansible_inventory_list(source)) == 7007
    (source / "host_vars").mkdir()
    (source / "host_vars" / "gpu-a1.yml").write_text("tts_node_port: 8008\n")  # a new file counts too
    assert port_of(inventory.ansible_inventory_list(source)) == 8008
    assert written(kept_dir) != first


def test_the_kept_copy_is_the_users_alone_and_a_broken_one_is_read_afresh(kept_dir, tmp_path):
    source = fleet_files(tmp_path / "inv")
    inventory.ansible_inventory_list(source)
    (kept,) = kept_dir.iterdir()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and stat.S_IMODE(kept_dir.stat().st_mode) == 0o700
    kept.write_text('{"key": ')
    assert port_of(inventory.ansible_inventory_list(source)) == 6006
    assert json.loads(kept.read_text())["inventory"]["_meta"]  # read afresh, and kept again


@pytest.mark.parametrize("extra", ["script", "plugin", "vault"])
def test_what_is_not_plain_data_is_read_afresh_every_time(kept_dir, tmp_path, extra):
    source = fleet_files(tmp_path / "inv")
    if extra == "script":  # an inventory script may answer otherwise with nothing on disk changed
        script = source / "more.sh"
        script.write_text('#!/bin/sh\necho \'{"_meta": {"hostvars": {}}}\'\n')
        script.chmod(0o755)
    elif extra == "plugin":
        (source / "constructed.yml").write_text("plugin: ansible.builtin.constructed\n")
    else:  # a vaulted value: a kept copy would hold it decrypted
        (source / "group_vars" / "all.yml").write_text("tts_node_port: 6006\nsecret: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  3031\n")
    for _ in range(2):
        try:
            inventory.ansible_inventory_list(source)
        except inventory.InventoryError:  # the vaulted value cannot be read without a password
            pass
    assert written(kept_dir) is None  # nothing kept: each read ran ansible-inventory
