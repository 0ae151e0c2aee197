"""The folders of `canary/` are its layers (see canary/__init__.py); these tests hold
the imports to them, so the tree keeps telling the truth about the code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CANARY = Path(__file__).resolve().parents[2] / "canary"
# What each layer may import from the project (besides itself and the package root).
ALLOWED = {
    "decisions": set(),
    "adapters": {"decisions"},
    "rollout": {"decisions", "adapters"},
    "release": {"decisions", "adapters"},
    "cli": {"decisions", "adapters", "rollout", "release", "devtools"},
    "devtools": {"decisions", "adapters", "rollout", "release", "cli"},
}
# Modules that reach a host, a registry, a database or the network, or run programs.
WORLD = {"subprocess", "socket", "sqlite3", "urllib", "http", "httpx", "requests", "ansible_runner", "ssl",
         "shutil", "tempfile", "ftplib", "smtplib"}
WORLD_OK = {"adapters", "devtools"}


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == "canary":
                names |= {f"canary.{alias.name}" for alias in node.names}
    return names


def modules() -> list[tuple[str, Path]]:
    found = [(path.relative_to(CANARY).parts[0], path) for path in sorted(CANARY.rglob("*.py"))
             if len(path.relative_to(CANARY).parts) > 1]
    return found


def test_every_module_lives_in_a_layer():
    flat = sorted(p.name for p in CANARY.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert flat == [], f"modules outside the layers: {flat}"
    assert {layer for layer, _ in modules()} == set(ALLOWED)


@pytest.mark.parametrize(("layer", "path"), modules(), ids=lambda v: str(v.relative_to(CANARY)) if isinstance(v, Path)
                         else v)
def test_a_module_imports_only_the_layers_below_it(layer: str, path: Path):
    found = imports(path)
    project = {name.split(".")[1] for name in found if name.startswith("canary.") and name.count(".") >= 1}
    project -= {layer, "REPO_ROOT", "DEFAULT_INVENTORY"}
    assert project <= ALLOWED[layer], f"{path.relative_to(CANARY)} imports {sorted(project - ALLOWED[layer])}"
    if layer not in WORLD_OK:
        reaching = sorted(name for name in found if name.split(".")[0] in WORLD)
        assert not reaching, f"{path.relative_to(CANARY)} reaches the world directly: {reaching}"


def test_only_one_module_imports_ansible_runner():
    users = [str(path.relative_to(CANARY)) for _, path in modules() if "ansible_runner" in imports(path)]
    assert users == ["adapters/ansible.py"]
