"""The inventory as the real `ansible-inventory` reads it, kept while no file it is read
from changes (canary.adapters.inventory): an edit is seen by the next command, what is
not plain data is read afresh every time, and the kept copy is the user's alone."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from canary.adapters import inventory

pytestmark = pytest.mark.integration


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[list[str]]:
    """Every ansible-inventory run (the real one, counted), with a cache of this test's own."""
    monkeypatch.setenv(inventory.CACHE_DIR_ENV, str(tmp_path / "cache"))
    seen: list[list[str]] = []
    real = subprocess.run

    def counted(cmd, *args, **kwargs):
        seen.append(list(cmd))
        return real(cmd, *args, **kwargs)

    monkeypatch.setattr(inventory.subprocess, "run", counted)
    return seen


def fleet_files(root: Path, port: int = 6006) -> Path:
    (root / "group_vars").mkdir(parents=True)
    (root / "hosts.yml").write_text("all:\n  children:\n    tts_nodes:\n      hosts:\n        gpu-a1:\n"
                                    "          ansible_host: 10.0.0.1\n")
    (root / "group_vars" / "all.yml").write_text(f"tts_node_port: {port}\n")
    return root


def port_of(data: dict) -> int:
    return data["_meta"]["hostvars"]["gpu-a1"]["tts_node_port"]


def test_a_second_read_is_kept_and_an_edit_is_seen_by_the_next(runs, tmp_path):
    source = fleet_files(tmp_path / "inv")
    assert port_of(inventory.ansible_inventory_list(source)) == 6006
    assert port_of(inventory.ansible_inventory_list(source)) == 6006
    assert len(runs) == 1
    (source / "group_vars" / "all.yml").write_text("tts_node_port: 7007\n")  # same size, same second
    assert port_of(inventory.ansible_inventory_list(source)) == 7007
    (source / "host_vars").mkdir()
    (source / "host_vars" / "gpu-a1.yml").write_text("tts_node_port: 8008\n")  # a new file counts too
    assert port_of(inventory.ansible_inventory_list(source)) == 8008
    assert len(runs) == 3


def test_the_kept_copy_is_the_users_alone_and_a_broken_one_is_read_afresh(runs, tmp_path):
    source = fleet_files(tmp_path / "inv")
    inventory.ansible_inventory_list(source)
    (kept,) = (tmp_path / "cache" / "inventory").iterdir()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and stat.S_IMODE(kept.parent.stat().st_mode) == 0o700
    kept.write_text('{"key": ')
    assert port_of(inventory.ansible_inventory_list(source)) == 6006
    assert len(runs) == 2 and json.loads(kept.read_text())["inventory"]["_meta"]


@pytest.mark.parametrize("extra", ["script", "plugin", "vault"])
def test_what_is_not_plain_data_is_read_afresh_every_time(runs, tmp_path, extra):
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
        except inventory.InventoryError:  # the vaulted value cannot be read without a password: still a run
            pass
    assert len(runs) == 2
    assert not (tmp_path / "cache" / "inventory").exists()
