"""Linters as tests: the roles and playbooks pass ansible-lint's production profile."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lint


def tool(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def test_roles_and_playbooks_pass_ansible_lint_production_profile():
    result = subprocess.run([tool("ansible-lint"), "--profile", "production", "--nocolor", "roles", "playbooks"],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_python_passes_ruff():
    result = subprocess.run([tool("ruff"), "check", "service", "canary", "models", "bench", "tests"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:]
