"""The ansible-runner seam's configuration and event handling, without spawning Ansible."""

from __future__ import annotations

from pathlib import Path

from canary.adapters.ansible import (
    REDACTED,
    HostResult,
    PlaybookResult,
    PlaybookRun,
    ProgressEvent,
    _Collector,
    runner_kwargs,
)


def test_runner_kwargs_isolate_each_run_and_keep_secrets_off_the_command_line(tmp_path):
    run = PlaybookRun("playbooks/deploy.yml", Path("inventory/sandbox"), extravars={"tts_version": "v1.3.0"},
                      limit="node1", timeout_s=60, secrets={"registry_password": "hunter2"})
    kwargs = runner_kwargs(run, tmp_path)
    assert kwargs["private_data_dir"] == str(tmp_path)
    assert kwargs["suppress_env_files"] is True and kwargs["quiet"] is True
    assert kwargs["timeout"] == 60 and kwargs["limit"] == "node1"
    assert kwargs["extravars"] == {"tts_version": "v1.3.0"}
    assert "hunter2" not in repr(kwargs["extravars"])
    assert kwargs["envvars"]["VOXFLEET_SECRET_REGISTRY_PASSWORD"] == "hunter2"
    assert kwargs["inventory"] == str(Path("inventory/sandbox").resolve())
    assert kwargs["envvars"]["ANSIBLE_CONFIG"].endswith("ansible.cfg")
    assert "hunter2" not in repr(run)


def event(kind: str, host: str, task: str, res: dict) -> dict:
    return {"event": kind, "event_data": {"host": host, "task": task, "res": res}}


def test_collector_keeps_facts_and_failure_messages_with_secrets_redacted():
    progress: list[ProgressEvent] = []
    collect = _Collector(("hunter2",), progress.append)
    assert collect(event("runner_on_ok", "node1", "Report tts_node state",
                         {"ansible_facts": {"tts_node_report": {"version": "v1.3.0"}}}))
    assert collect(event("runner_on_failed", "node2", "Log in to the registry",
                         {"msg": "login with password hunter2 refused"}))
    assert collect(event("runner_on_unreachable", "node3", "Pull", {"msg": "ssh: connect refused"}))
    assert collect.facts == {"node1": {"tts_node_report": {"version": "v1.3.0"}}}
    assert collect.messages["node2"] == f"Log in to the registry: login with password {REDACTED} refused"
    assert collect.messages["node3"] == "Pull: ssh: connect refused"
    assert [p.outcome for p in progress] == ["ok", "failed", "unreachable"]


def test_result_names_the_problem_hosts():
    result = PlaybookResult("playbooks/deploy.yml", "failed", 2, {
        "node1": HostResult("node1", ok=5),
        "node2": HostResult("node2", failed=True, message="Probe: audio 0.0 s < 0.5 s"),
        "node3": HostResult("node3", unreachable=True, message="Pull: ssh: connect refused"),
    }, 1.0)
    assert not result.ok
    assert result.failed_hosts() == ["node2"] and result.unreachable_hosts() == ["node3"]
    assert result.describe() == ("node2: failed: Probe: audio 0.0 s < 0.5 s\n"
                                 "node3: unreachable: Pull: ssh: connect refused")
