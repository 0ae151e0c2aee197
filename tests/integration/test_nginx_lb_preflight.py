"""roles/nginx_lb refuses a version that is not semantic before it writes any config, even
when run directly (not through the controller, which refuses it too): its preflight
asserts against localhost, which touch nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLAY = """
- name: The nginx_lb role's preflight only
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Preflight
      ansible.builtin.include_role:
        name: nginx_lb
        tasks_from: preflight.yml
"""


def preflight(tmp_path: Path, version: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "play.yml").write_text(PLAY)
    servers = [{"address": "10.0.0.1:6006", "role": "canary", "version": version, "weight": 1, "state": "up"},
               {"address": "10.0.0.2:6006", "role": "stable", "version": "v1.2.0", "weight": 9, "state": "up"}]
    (tmp_path / "vars.json").write_text(json.dumps({"nginx_lb_servers": servers, "nginx_lb_canary_percent": 10}))
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
           "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false"}
    return subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,",
                           str(tmp_path / "play.yml"), "-e", f"@{tmp_path / 'vars.json'}",
                           "-e", f"ansible_python_interpreter={sys.executable}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("version", ["v1.3.0\n    server 6.6.6.6:80 weight=100;", "v1.3.0\n", "v1.3.0;", "new"])
def test_a_version_that_is_not_semantic_fails_the_role_naming_it(tmp_path, version):
    result = preflight(tmp_path, version)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "not a semantic version" in out and "10.0.0.1:6006" in out and json.dumps(version) in out, out[-3000:]


def test_a_semantic_version_passes(tmp_path):
    result = preflight(tmp_path, "v1.3.0-rc.1")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
