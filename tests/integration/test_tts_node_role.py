"""The tts_node role (playbooks/deploy.yml) against the sandbox fleet, over SSH.

Runs on the shared sandbox fleet (the `sandbox` fixture brings it up with tts:v1.2.0
and tts:v1.3.0 published), or on another fleet named with VOXFLEET_SANDBOX_INVENTORY.
The fleet is left with v1.2.0 on every node.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.sandbox_fleet import start_node, stop_node

REPO = Path(__file__).resolve().parents[2]
OTHER_INVENTORY = os.environ.get("VOXFLEET_SANDBOX_INVENTORY")
INVENTORY = Path(OTHER_INVENTORY or REPO / "inventory" / "sandbox" / "hosts.yml")
STABLE, CANARY = "v1.2.0", "v1.3.0"

pytestmark = [pytest.mark.sandbox, pytest.mark.docker]

RECAP_RE = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)\s+ignored=(?P<ignored>\d+)",
    re.MULTILINE,
)


def _ansible_bin(name: str) -> str:
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found next to {sys.executable} nor on PATH")
    return found


def _ansible_env(**extra: str) -> dict[str, str]:
    return dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                ANSIBLE_FORCE_COLOR="0", **extra)


@dataclass
class PlaybookRun:
    rc: int
    output: str
    recap: dict[str, dict[str, int]]

    def explain(self) -> str:
        return f"ansible-playbook exited {self.rc}; last output:\n{self.output[-6000:]}"


def run_playbook(playbook: str, **extravars: object) -> PlaybookRun:
    cmd = [_ansible_bin("ansible-playbook"), "-i", str(INVENTORY), str(REPO / "playbooks" / playbook),
           "-e", json.dumps(extravars)]
    proc = subprocess.run(cmd, check=False, cwd=REPO, env=_ansible_env(), capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    recap_text = output.split("PLAY RECAP", 1)[-1] if "PLAY RECAP" in output else ""
    recap = {m["host"]: {k: int(v) for k, v in m.groupdict().items() if k != "host"}
             for m in RECAP_RE.finditer(recap_text)}
    return PlaybookRun(proc.returncode, output, recap)


def fleet_reports() -> dict[str, dict]:
    """host -> tts_node_report from playbooks/facts.yml (read through the json callback)."""
    cmd = [_ansible_bin("ansible-playbook"), "-i", str(INVENTORY), str(REPO / "playbooks" / "facts.yml")]
    proc = subprocess.run(cmd, check=False, cwd=REPO, env=_ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"facts.yml exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    doc = json.loads(proc.stdout)
    reports = {}
    for play in doc["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].split(" : ")[-1] == "Report tts_node state":
                for host, result in task["hosts"].items():
                    reports[host] = result["ansible_facts"]["tts_node_report"]
    return reports


@dataclass(frozen=True)
class Node:
    name: str  # inventory hostname
    container: str  # the sandbox container standing in for the host
    ssh_port: int


@dataclass(frozen=True)
class Fleet:
    nodes: list[Node]
    registry: str  # as the hosts see it
    repository: str

    def image(self, version: str) -> str:
        return f"{self.registry}/{self.repository}:{version}"


def _docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], check=False, capture_output=True, text=True, timeout=timeout)


def served_version(node: Node) -> dict:
    result = _docker("exec", node.container, "curl", "-sf", "--max-time", "10", "localhost:6006/version")
    assert result.returncode == 0, f"{node.name}: GET /version failed: {result.stdout}{result.stderr}"
    return json.loads(result.stdout)


def container_started_at(node: Node) -> str:
    result = _docker("exec", node.container, "docker", "inspect", "-f", "{{.State.StartedAt}}", "tts")
    assert result.returncode == 0, f"{node.name}: no tts container: {result.stderr}"
    return result.stdout.strip()


def image_present(node: Node, image: str) -> bool:
    return _docker("exec", node.container, "docker", "image", "inspect", image).returncode == 0


def untagged_image(node: Node) -> str:
    """An image left without a tag on the node (as a tag pushed again leaves its old image); its id."""
    build = ["exec", "-e", "DOCKER_BUILDKIT=0", "-i", node.container, "docker", "build", "-q", "-t", "voxfleet/retagged:1", "-"]
    ids = [subprocess.run(["docker", *build], input=f"FROM scratch\nLABEL voxfleet.test={n}\n", capture_output=True,
                          text=True, check=True).stdout.strip() for n in (1, 2)]
    _docker("exec", node.container, "docker", "rmi", "voxfleet/retagged:1")
    assert image_present(node, ids[0]), f"no untagged image on {node.name}"
    return ids[0]


def _registry_tags(push_address: str, repository: str, user: str | None, password: str | None) -> list[str]:
    request = urllib.request.Request(f"http://{push_address}/v2/{repository}/tags/list")
    if user:
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response).get("tags") or []
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise


@pytest.fixture(scope="module")
def fleet(request: pytest.FixtureRequest) -> Fleet:
    if not OTHER_INVENTORY:
        request.getfixturevalue("sandbox")
    proc = subprocess.run([_ansible_bin("ansible-inventory"), "-i", str(INVENTORY), "--list"], check=False,
                          cwd=REPO, env=_ansible_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"ansible-inventory failed on {INVENTORY}: {proc.stderr}"
    inv = json.loads(proc.stdout)
    hostvars = inv["_meta"]["hostvars"]
    names = sorted(inv.get("tts_nodes", {}).get("hosts", []))
    assert len(names) >= 2, f"{INVENTORY}: group tts_nodes has {len(names)} host(s); these tests need at least 2"
    nodes = [Node(h, hostvars[h].get("sandbox_container", f"voxfleet-{h}"), int(hostvars[h]["ansible_port"]))
             for h in names]
    some = hostvars[names[0]]
    fleet = Fleet(nodes, some["tts_registry"], some.get("tts_image_repository", "tts"))
    push = some.get("tts_registry_push")
    if push:
        tags = _registry_tags(push, fleet.repository, some.get("tts_registry_username"),
                              some.get("tts_registry_password"))
        missing = [v for v in (STABLE, CANARY) if v not in tags]
        assert not missing, f"registry {push} lacks {fleet.repository}:{missing} (has {tags}); run `rollout publish`"
    return fleet


def deploy_stable_everywhere(fleet: Fleet) -> PlaybookRun:
    run = run_playbook("deploy.yml", tts_version=STABLE)
    assert run.rc == 0, run.explain()
    return run


def test_bad_version_fails_naming_host_and_value(fleet: Fleet) -> None:
    node = fleet.nodes[0]
    run = run_playbook("deploy.yml", tts_version="1.3", deploy_hosts=node.name)
    assert run.rc != 0
    assert f'{node.name}: tts_node_version "1.3" is not a semantic version tag' in run.output, run.explain()
    assert run.recap[node.name]["failed"] == 1 and run.recap[node.name]["changed"] == 0


def test_deploy_stable_to_all_then_rerun_changes_nothing(fleet: Fleet) -> None:
    deploy_stable_everywhere(fleet)
    for node in fleet.nodes:
        served = served_version(node)
        assert served["model_version"] == STABLE, f"{node.name} serves {served}"
        assert served["image_tag"] == fleet.image(STABLE)
        # published on the address the LB uses and on loopback, never on every interface
        own_ip = _docker("exec", node.container, "getent", "ahostsv4", node.container).stdout.split()[0]
        ports = _docker("exec", node.container, "docker", "port", "tts", "6006").stdout.split()
        assert sorted(ports) == sorted([f"{own_ip}:6006", "127.0.0.1:6006"]), f"{node.name}: {ports}"

    again = run_playbook("deploy.yml", tts_version=STABLE)
    assert again.rc == 0, again.explain()
    assert set(again.recap) == {n.name for n in fleet.nodes}, again.explain()
    for host, counts in again.recap.items():
        assert counts["changed"] == 0, f"{host} reported changes on a re-run: {counts}\n{again.explain()}"
        assert counts["failed"] == 0 and counts["unreachable"] == 0


def test_canary_on_one_host_keeps_previous_image(fleet: Fleet) -> None:
    deploy_stable_everywhere(fleet)
    canary, others = fleet.nodes[0], fleet.nodes[1:]
    before = {n.name: container_started_at(n) for n in others}
    # an older version's image left on the host, and an image of another repository
    older, unrelated = fleet.image("v1.1.0"), "localhost/not-ours:keep"
    for tag in (older, unrelated):
        _docker("exec", canary.container, "docker", "tag", fleet.image(STABLE), tag)
    untagged = untagged_image(canary)

    run = run_playbook("deploy.yml", tts_version=CANARY, deploy_hosts=canary.name)
    assert run.rc == 0, run.explain()
    assert set(run.recap) == {canary.name}, run.explain()
    assert run.recap[canary.name]["changed"] >= 1

    assert served_version(canary)["model_version"] == CANARY
    for node in others:
        assert served_version(node)["model_version"] == STABLE, f"{node.name} changed version"
        assert container_started_at(node) == before[node.name], f"{node.name}'s container was restarted"
    assert image_present(canary, fleet.image(STABLE)), f"{canary.name} lost the previous image {fleet.image(STABLE)}"
    assert image_present(canary, fleet.image(CANARY))
    assert not image_present(canary, older), f"{canary.name} kept {older}, older than the previous version"
    assert image_present(canary, unrelated), f"{canary.name} removed {unrelated}, not the fleet's repository"
    assert not image_present(canary, untagged), f"{canary.name} kept the untagged image {untagged}"
    _docker("exec", canary.container, "docker", "rmi", unrelated)

    reports = fleet_reports()
    assert reports[canary.name]["version"] == CANARY
    assert reports[canary.name]["previous_image"] == fleet.image(STABLE)
    assert reports[canary.name]["health"] == "healthy"
    assert reports[canary.name]["image_digest"], reports[canary.name]
    for node in others:
        assert reports[node.name]["version"] == STABLE


@pytest.fixture
def stopped_node(fleet: Fleet):
    """The second node's container stopped; started again (sshd and service awaited) afterwards."""
    node = fleet.nodes[1]
    stop_node(node.container)
    try:
        yield node
    finally:
        start_node(node.container, node.ssh_port)


def test_stopped_host_is_reported_unreachable_others_untouched(fleet: Fleet, stopped_node: Node) -> None:
    # (stopped_node stops its container first; bring everyone else to the stable version.)
    others = [n for n in fleet.nodes if n != stopped_node]
    run = run_playbook("deploy.yml", tts_version=STABLE, deploy_hosts=",".join(n.name for n in others))
    assert run.rc == 0, run.explain()
    before = {n.name: container_started_at(n) for n in others}

    run = run_playbook("deploy.yml", tts_version=STABLE)
    assert run.rc != 0, run.explain()
    assert f"fatal: [{stopped_node.name}]: UNREACHABLE!" in run.output, run.explain()
    assert run.recap[stopped_node.name]["unreachable"] == 1, run.explain()
    for node in others:
        counts = run.recap[node.name]
        assert counts["failed"] == 0 and counts["unreachable"] == 0, f"{node.name}: {counts}\n{run.explain()}"
        assert counts["changed"] == 0, f"{node.name} was touched: {counts}"
        assert container_started_at(node) == before[node.name]
        assert served_version(node)["model_version"] == STABLE


def test_a_container_that_crashes_at_start_fails_the_deploy_at_once_with_its_log(fleet: Fleet) -> None:
    node = fleet.nodes[0]
    wrong = "0" * 64  # the model's checksum does not match: the service exits at start, Docker restarts it
    run = run_playbook("deploy.yml", tts_version=CANARY, deploy_hosts=node.name,
                       tts_node_model_uri="file:///etc/hostname", tts_node_model_sha256=wrong)
    try:
        assert run.rc != 0, run.explain()
        said = " ".join(run.output.split())
        waited = re.search(rf"{node.name}: \S+ is not running healthy \(gave up after (\d+) s of up to (\d+) s", said)
        assert waited and int(waited[1]) <= 30 < int(waited[2]), run.explain()
        assert re.search(r"the container restarted \d+ time\(s\) within \d+ s of starting", said), said
        assert f"sha256 mismatch: expected {wrong}" in said, run.explain()  # its last log lines
    finally:
        deploy_stable_everywhere(fleet)
