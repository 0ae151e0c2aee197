"""Linters as tests: the roles and playbooks pass ansible-lint's production profile, the
Python passes ruff and mypy, the workflows pass actionlint (with shellcheck on their `run:`
scripts) and the Dockerfile passes hadolint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lint


def tool(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def with_tools_on_path() -> dict[str, str]:
    """The environment with this interpreter's bin dir first on PATH (actionlint finds
    shellcheck there, and skips the `run:` scripts silently when it finds none)."""
    return {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}


def actionlint(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("actionlint"), "-color=false", *args], cwd=cwd, env=with_tools_on_path(),
                          capture_output=True, text=True, timeout=300)


def test_roles_and_playbooks_pass_ansible_lint_production_profile():
    result = subprocess.run([tool("ansible-lint"), "--profile", "production", "--nocolor", "roles", "playbooks"],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_python_passes_ruff():
    result = subprocess.run([tool("ruff"), "check", "service", "canary", "models", "bench", "tests"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:]


def test_python_passes_the_type_checker():
    # What it checks and how strictly: [tool.mypy] in pyproject.toml.
    result = subprocess.run([tool("mypy")], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_workflows_pass_actionlint():
    workflows = sorted(str(p.relative_to(REPO)) for p in (REPO / ".github" / "workflows").glob("*.y*ml"))
    assert workflows, "no workflows in .github/workflows"
    result = actionlint(REPO, *workflows)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]


def test_actionlint_checks_run_scripts_with_shellcheck(tmp_path: Path):
    """The test above only means something if shellcheck really runs on `run:` scripts
    (and script injection is caught): a workflow with both mistakes must fail."""
    (tmp_path / ".git").mkdir()
    workflow = tmp_path / ".github" / "workflows" / "bad.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text("on: push\njobs:\n  bad:\n    runs-on: ubuntu-latest\n    steps:\n"
                        "      - run: echo $UNQUOTED \"${{ github.head_ref }}\"\n")
    result = actionlint(tmp_path, "-oneline", ".github/workflows/bad.yml")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "SC2086" in result.stdout, result.stdout
    assert "potentially untrusted" in result.stdout, result.stdout


def test_dockerfile_passes_hadolint():
    # Rules deliberately ignored, if any, are in .hadolint.yaml (hadolint reads it from
    # the working directory) or inline (`# hadolint ignore=...`) with the reason.
    result = subprocess.run([tool("hadolint"), "--no-color", "Dockerfile"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
