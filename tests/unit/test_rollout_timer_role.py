"""roles/rollout_timer: the world-readable unit holds no secret; the tick's secrets are in
an EnvironmentFile the role installs root-only (0600), rendered as systemd reads it."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
import yaml

ROLE = Path(__file__).resolve().parents[2] / "roles" / "rollout_timer"
SECRETS = {"rollout_timer_notify_url": "https://hooks.slack.com/services/T0/B0/s3cr3t",
           "rollout_timer_registry_username": "robot$voxfleet",
           "rollout_timer_registry_password": 'pa"ss\\word$HOME'}


def render(template: str, **values: str) -> str:
    """As Ansible's template module renders it (trim_blocks), over the role's defaults."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROLE / "templates"), trim_blocks=True,
                             undefined=jinja2.StrictUndefined)
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    return env.get_template(template).render({**defaults, "ansible_managed": "Ansible managed", **values})


def systemd_env_file(text: str) -> dict[str, str]:
    """What systemd reads from an EnvironmentFile of KEY="value" lines (\\ escapes inside quotes)."""
    found = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, raw = line.partition("=")
        assert raw.startswith('"') and raw.endswith('"'), line
        value, chars = "", iter(raw[1:-1])
        for char in chars:
            assert char != '"', f"an unescaped quote ends the value early: {line}"
            value += next(chars) if char == "\\" else char
        found[key] = value
    return found


def test_the_unit_reads_its_secrets_from_the_environment_file_and_holds_none():
    unit = render("voxfleet-tick.service.j2", **SECRETS)
    assert "EnvironmentFile=/etc/default/voxfleet-tick" in unit
    assert "Environment=VOXFLEET_STATE_DIR=/var/lib/voxfleet" in unit
    assert not any(secret in unit for secret in SECRETS.values())
    assert "VOXFLEET_NOTIFY_URL" not in unit and "PASSWORD" not in unit


def test_the_environment_file_carries_each_secret_exactly():
    env = systemd_env_file(render("voxfleet-tick.env.j2", **SECRETS))
    assert env == {"VOXFLEET_NOTIFY_URL": SECRETS["rollout_timer_notify_url"],
                   "VOXFLEET_REGISTRY_USERNAME": SECRETS["rollout_timer_registry_username"],
                   "VOXFLEET_REGISTRY_PASSWORD": SECRETS["rollout_timer_registry_password"]}
    assert systemd_env_file(render("voxfleet-tick.env.j2"))["VOXFLEET_NOTIFY_URL"] == ""


@pytest.fixture
def tasks() -> dict[str, dict]:
    return {task["name"]: task for task in yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())}


def test_the_environment_file_is_root_only_and_never_logged(tasks):
    task = next(t for t in tasks.values() if t.get("ansible.builtin.template", {}).get("src") == "voxfleet-tick.env.j2")
    template = task["ansible.builtin.template"]
    assert (template["dest"], template["owner"], template["mode"]) == ("{{ rollout_timer_env_file }}", "root", "0600")
    assert task["no_log"] is True


def test_the_state_directory_is_private(tasks):
    assert tasks["Create the state directory"]["ansible.builtin.file"]["mode"] == "0700"


def test_every_variable_is_in_the_argument_spec_and_secrets_are_no_log():
    spec = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert set(spec) == set(defaults)
    assert all(spec[name]["default"] == defaults[name] for name in spec)
    assert spec["rollout_timer_notify_url"]["no_log"] and spec["rollout_timer_registry_password"]["no_log"]
