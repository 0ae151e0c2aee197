"""The sandbox fleet: a registry, N GPU-host stand-ins and M nginx LB hosts on local Docker.

Each GPU-host stand-in is a container with sshd and its own Docker engine; each LB host
runs sshd and nginx (two by default, as a production HA pair: every weight change must
reach both, and the judge must read both logs). The controller reaches them only over SSH, with the same
playbooks as production, through `inventory/sandbox/` which `up` writes. Host keys are
checked as in production: each container makes its own at first start, and `up` reads
them through the Docker engine (not over the network) into the sandbox's known_hosts.

`up` is idempotent: containers that exist with the expected configuration are left
alone (their config hash is a label). `down` removes exactly what `up` created:
the containers, volumes and network carrying the sandbox label, the SSH key and the
generated inventory. The sandbox images stay as a build cache (`down --images`
removes them too).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

import yaml

from canary import REPO_ROOT
from canary.adapters import images
from canary.adapters.private_files import create_private_file
from canary.devtools import sandbox_prometheus

LABEL = "io.voxfleet.sandbox"
CONFIG_LABEL = "io.voxfleet.sandbox.config"
DOCKER_DIR = REPO_ROOT / "docker" / "sandbox"
# Flags that let a container run its own Docker engine on this kind of machine
# (--privileged is refused here: one capability is missing from the bounding set).
DIND_FLAGS = [
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined", "--device-cgroup-rule", "a *:* rwm",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--cgroupns", "host",
]


class SandboxError(RuntimeError):
    """A sandbox step failed; the message names the container or file."""


@dataclass(frozen=True)
class SandboxSpec:
    hosts: int = 3
    lbs: int = 2
    prefix: str = "voxfleet"
    # Each host's capacity (tts_capacity); its service container gets cpus_per_unit CPUs and
    # one inference worker held to cpus_per_unit (tts_worker_cpus) per unit, so hosts have
    # fixed capacities of their own and one speed per request, the way GPUs do, instead of
    # all competing for this machine's cores. Empty: 1 each.
    capacities: tuple[int, ...] = ()
    cpus_per_unit: float = 0.4
    registry_port: int = 15000  # published on 127.0.0.1 for `rollout publish`
    http_port: int = 18080  # LB j's port 80 is published on 127.0.0.1 at http_port + j - 1
    ssh_base_port: int = 22200  # LB 1 on base, node i on base + i, LB j > 1 on base + 50 + j
    prometheus_port: int = 19090  # the sandbox Prometheus' API, published on 127.0.0.1
    controller_metrics_port: int = 19100  # where it scrapes `rollout metrics --serve` on this machine

    def capacity(self, i: int) -> int:
        """Node i's (1-based) capacity."""
        return self.capacities[i - 1] if self.capacities else 1

    @property
    def network(self) -> str:
        return f"{self.prefix}-sandbox"

    @property
    def registry(self) -> str:
        return f"{self.prefix}-registry"

    def lb(self, j: int) -> str:
        """LB j's (1-based) container."""
        return f"{self.prefix}-lb{j}"

    @property
    def lb_numbers(self) -> range:
        return range(1, self.lbs + 1)

    def lb_http_port(self, j: int) -> int:
        return self.http_port + j - 1

    def lb_ssh_port(self, j: int) -> int:
        return self.ssh_base_port if j == 1 else self.ssh_base_port + 50 + j

    def ssh_ports(self) -> dict[str, int]:
        """Every SSH container -> the port its sshd is published on."""
        ports = {self.lb(j): self.lb_ssh_port(j) for j in self.lb_numbers}
        return ports | {self.node(i): self.ssh_base_port + i for i in range(1, self.hosts + 1)}

    def node(self, i: int) -> str:
        return f"{self.prefix}-node{i}"

    @property
    def hosts_cgroup(self) -> str:
        """The CPU group every host's service container runs in, weighted above this
        machine's other processes (docker/sandbox/node-entrypoint.sh)."""
        return f"/{self.prefix}-hosts"

    @property
    def prometheus(self) -> str:
        return f"{self.prefix}-prometheus"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def nodes(self) -> list[str]:
        return [self.node(i) for i in range(1, self.hosts + 1)]


@dataclass(frozen=True)
class ContainerPlan:
    name: str
    image: str
    args: tuple[str, ...]

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps([self.image, self.args]).encode()).hexdigest()[:16]


def _docker(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise SandboxError(f"docker {' '.join(args[:3])}…: {result.stderr.strip()}")
    return result


def sandbox_image(kind: str) -> str:
    """voxfleet/sandbox-<kind>:<hash of its Dockerfile and entrypoint>, built when missing."""
    files = sorted(DOCKER_DIR.glob(f"{kind}*"))
    digest = hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in files)).hexdigest()[:12]
    tag = f"voxfleet/sandbox-{kind}:{digest}"
    if _docker("image", "inspect", tag).returncode != 0:
        print(f"building {tag}", flush=True)
        result = subprocess.run(
            ["docker", "build", "-q", "-f", str(DOCKER_DIR / f"{kind}.Dockerfile"), "-t", tag,
             "--label", f"{LABEL}=image", str(DOCKER_DIR)],
            capture_output=True, text=True, env=dict(os.environ, DOCKER_BUILDKIT="0"))
        if result.returncode != 0:
            raise SandboxError(f"building {tag} failed:\n{result.stderr[-2000:]}")
    return tag


def _private(inventory_dir: Path) -> Path:
    """Where the SSH key and the sandbox state live: a hidden folder Ansible does not parse."""
    return inventory_dir / ".sandbox"


def _ensure_key(inventory_dir: Path) -> str:
    key = _private(inventory_dir) / "id_ed25519"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "voxfleet-sandbox", "-f", str(key)],
                       check=True)
    return key.with_suffix(".pub").read_text().strip()


CANARY_TOKEN_FILE = "canary_token"


def canary_token(inventory_dir: Path) -> str:
    """The sandbox's X-Voxfleet-Canary token (made once, kept private beside the SSH key)."""
    path = _private(inventory_dir) / CANARY_TOKEN_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        create_private_file(path)  # 0600 before the secret goes in
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


def plan_containers(spec: SandboxSpec, public_key: str, prometheus_config: Path) -> list[ContainerPlan]:
    common = ("--network", spec.network, "--label", f"{LABEL}={spec.prefix}", "--restart", "unless-stopped")
    registry_env = ("-e", f"SANDBOX_REGISTRY={spec.registry}:5000", "-e", f"SANDBOX_AUTHORIZED_KEY={public_key}")
    plans = [ContainerPlan(spec.registry, sandbox_image("registry"), common + (
        "-v", f"{spec.registry}-data:/var/lib/docker-registry",
        "-p", f"127.0.0.1:{spec.registry_port}:5000"))]
    for j in spec.lb_numbers:
        plans.append(ContainerPlan(spec.lb(j), sandbox_image("lb"), common + registry_env + (
            "--hostname", f"lb{j}", "-p", f"127.0.0.1:{spec.lb_ssh_port(j)}:22",
            "-p", f"127.0.0.1:{spec.lb_http_port(j)}:80")))
    node_image = sandbox_image("node")
    for i, name in enumerate(spec.nodes, start=1):
        plans.append(ContainerPlan(name, node_image, common + registry_env + tuple(DIND_FLAGS) + (
            "--hostname", f"node{i}", "-v", f"{name}-docker:/var/lib/docker",
            "-e", f"SANDBOX_CGROUP_PARENT={spec.hosts_cgroup}",
            "-p", f"127.0.0.1:{spec.ssh_base_port + i}:22")))
    plans.append(ContainerPlan(spec.prometheus, sandbox_image("prometheus"), common + sandbox_prometheus.container_args(
        prometheus_config, spec.prometheus_port)))
    return plans


def _labels(name: str) -> dict[str, str] | None:
    result = _docker("inspect", "--format", "{{json .Config.Labels}}|{{.State.Running}}", name)
    if result.returncode != 0:
        return None
    labels, running = result.stdout.strip().rsplit("|", 1)
    out = json.loads(labels) or {}
    out["__running"] = running
    return out


def _ensure_volume(name: str, prefix: str) -> None:
    if _docker("volume", "inspect", name).returncode != 0:
        _docker("volume", "create", "--label", f"{LABEL}={prefix}", name, check=True)


def _ensure_container(plan: ContainerPlan) -> str:
    labels = _labels(plan.name)
    if labels is not None and labels.get(CONFIG_LABEL) == plan.config_hash:
        if labels["__running"] != "true":
            _docker("start", plan.name, check=True)
            return "started"
        return "unchanged"
    if labels is not None:
        if LABEL not in labels:
            raise SandboxError(f"container {plan.name} exists but was not made by the sandbox; remove or rename it")
        _docker("rm", "-f", plan.name, check=True)
    _docker("run", "-d", "--name", plan.name, "--label", f"{CONFIG_LABEL}={plan.config_hash}",
            *plan.args, plan.image, check=True)
    return "created" if labels is None else "recreated"


def _wait_ssh(port: int, name: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SandboxError(f"{name}: sshd did not answer on 127.0.0.1:{port} within {timeout:.0f}s")


def _wait_node_engine(name: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _docker("exec", name, "docker", "info").returncode == 0:
            return
        time.sleep(1.0)
    log = _docker("exec", name, "tail", "-20", "/var/log/dockerd.log").stdout
    raise SandboxError(f"{name}: its Docker engine did not start within {timeout:.0f}s:\n{log}")


# bench/capacity.py on this 2-core machine (held workers, the demo model's harmonic sum by
# recurrence): 3 hosts of 0.4 CPU serve 36.4 req/s within 2x their unloaded p95 (0.088 s),
# one alone 14.5; past that the fleet's p95 doubles (45 req/s: 0.194 s). The three serve
# 2.5x one, not 3x: the cores, shared with nginx, the clients and the controller, bind too.
# A unit of capacity is taken from the whole fleet's figure, and the policy's stays a little
# under it. (Before the recurrence a request cost three times the CPU: 9.5 and 3.8.)
MEASURED_FLEET_RPS = 36.4
MEASURED_UNIT_RPS = MEASURED_FLEET_RPS / 3
SANDBOX_UNIT_RPS = 11.5


def inventory_document(spec: SandboxSpec, controller_address: str = "127.0.0.1") -> dict:
    nodes = {
        f"node{i}": {
            "ansible_host": "127.0.0.1", "ansible_port": spec.ssh_base_port + i,
            "tts_upstream_address": f"{spec.node(i)}:6006",
            "tts_gpu_count": 0, "tts_gpu_type": "none (sandbox)", "tts_canary_eligible": True,
            "tts_capacity": spec.capacity(i), "tts_cpus": f"{spec.capacity(i) * spec.cpus_per_unit:g}",
            # a unit is one inference worker of one unit's speed, as a GPU would be
            "tts_workers": spec.capacity(i), "tts_worker_cpus": f"{spec.cpus_per_unit:g}",
            "sandbox_container": spec.node(i),
        }
        for i in range(1, spec.hosts + 1)
    }
    lbs = {f"lb{j}": {"ansible_host": "127.0.0.1", "ansible_port": spec.lb_ssh_port(j),
                      "sandbox_container": spec.lb(j), "sandbox_http_port": spec.lb_http_port(j),
                      # this machine reaches the LB's published port from the network's
                      # gateway: it may read /version and /metrics; the other containers on
                      # the network may not
                      "nginx_lb_operations_allow": ["127.0.0.1", controller_address]}
           for j in spec.lb_numbers}
    return {"all": {
        "vars": {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": "{{ inventory_dir }}/.sandbox/id_ed25519",
            # host keys are checked (ansible.cfg): against the keys `up` read from each container
            "ansible_ssh_common_args": "-o UserKnownHostsFile={{ inventory_dir }}/.sandbox/known_hosts",
            "ansible_python_interpreter": "/usr/bin/python3",
            "tts_registry": f"{spec.registry}:5000",
            "tts_registry_push": f"127.0.0.1:{spec.registry_port}",
            # Plain HTTP, by name: the sandbox registry has no TLS (its engines run
            # dockerd --insecure-registry for it); any registry not listed is HTTPS only.
            "tts_registry_insecure": [f"{spec.registry}:5000", f"127.0.0.1:{spec.registry_port}"],
            "tts_image_repository": "tts",
            # Three service containers share this machine's cores: a deeper queue rides out
            # the CPU contention a GPU host would not have.
            "tts_service_env": {"TTS_MAX_QUEUE": "32"},
            "tts_pull_policy": "always",  # developers rebuild the same version tags here
            # listening to the canary (X-Voxfleet-Canary): a secret of this sandbox's, read at play time
            "voxfleet_canary_token": "{{ lookup('file', inventory_dir ~ '/.sandbox/" + CANARY_TOKEN_FILE + "') }}",
            # clients reach each LB at its own published port (no address in front of them)
            "lb_public_url": [f"http://127.0.0.1:{spec.lb_http_port(j)}" for j in spec.lb_numbers],
            # What one unit of sandbox capacity serves (MEASURED_UNIT_RPS), a little under, so
            # a drain the controller allows really fits.
            # The sandbox's Prometheus (scraping every node) answers here: policy `evidence:
            # prometheus` or `both` judges from it.
            "rollout_policy": {"capacity_unit_rps": SANDBOX_UNIT_RPS, "prometheus_url": spec.prometheus_url},
        },
        "children": {
            "tts_nodes": {"hosts": nodes},
            "lb": {"hosts": lbs},
        },
    }}


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return True


def write_inventory(spec: SandboxSpec, inventory_dir: Path, gateway: str) -> bool:
    header = "# Written by `rollout sandbox up`; regenerated on every run, ignored by git.\n"
    body = yaml.safe_dump(inventory_document(spec, gateway), sort_keys=False)
    changed = _write_if_changed(inventory_dir / "hosts.yml", header + body)
    state = json.dumps(asdict(spec), indent=2) + "\n"
    return _write_if_changed(_private(inventory_dir) / "state.json", state) or changed


def up(spec: SandboxSpec, inventory_dir: Path, repo_root: Path, log: TextIO | None = None) -> dict[str, str]:
    """Bring the sandbox to `spec`; returns container name -> what happened. A base image
    made on the way writes its output to `log` (default stderr)."""
    images.ensure_base_image(repo_root, log=log)
    public_key = _ensure_key(inventory_dir)
    canary_token(inventory_dir)
    if _docker("network", "inspect", spec.network).returncode != 0:
        _docker("network", "create", "--label", f"{LABEL}={spec.prefix}", spec.network, check=True)
    for volume in [f"{spec.registry}-data", *(f"{node}-docker" for node in spec.nodes)]:
        _ensure_volume(volume, spec.prefix)
    gateway = network_gateway(spec.network)
    prometheus_dir = _private(inventory_dir) / "prometheus"
    new_config = sandbox_prometheus.write_config(prometheus_dir, sandbox_prometheus.scrape_config(
        [f"{node}:6006" for node in spec.nodes], f"{gateway}:{spec.controller_metrics_port}"))
    plans = plan_containers(spec, public_key, prometheus_dir.resolve())
    outcome = {}
    for name in _sandbox_containers(spec.prefix):
        if name not in {plan.name for plan in plans}:
            _remove_container(name)  # fewer --hosts or --lbs than before (first: it may hold a port)
            outcome[name] = "removed"
    outcome |= {plan.name: _ensure_container(plan) for plan in plans}
    for name, port in spec.ssh_ports().items():
        _wait_ssh(port, name)
    for name in spec.nodes:
        _wait_node_engine(name)
    sandbox_prometheus.wait_ready(spec.prometheus_url)
    if new_config and outcome[spec.prometheus] in ("unchanged", "started"):
        sandbox_prometheus.reload(spec.prometheus_url)
    known = write_known_hosts(spec, inventory_dir)
    outcome["inventory"] = "written" if write_inventory(spec, inventory_dir, gateway) or known else "unchanged"
    return outcome


def known_hosts_lines(spec: SandboxSpec) -> list[str]:
    """`[127.0.0.1]:port <host key>` for every SSH container, the keys read from the
    containers through the Docker engine."""
    lines = []
    for name, port in spec.ssh_ports().items():
        keys = _docker("exec", name, "sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub", check=True).stdout
        for key in keys.splitlines():
            kind, blob = key.split()[:2]
            lines.append(f"[127.0.0.1]:{port} {kind} {blob}")
    return lines


def write_known_hosts(spec: SandboxSpec, inventory_dir: Path) -> bool:
    return _write_if_changed(_private(inventory_dir) / "known_hosts", "\n".join(known_hosts_lines(spec)) + "\n")


def network_gateway(network: str) -> str:
    """The address this machine has on the sandbox network (what the LB sees it as)."""
    shown = _docker("network", "inspect", "--format", "{{range .IPAM.Config}}{{.Gateway}} {{end}}", network,
                    check=True)
    gateways = shown.stdout.split()
    if not gateways:
        raise SandboxError(f"docker network {network} has no gateway address")
    return gateways[0]


def _sandbox_containers(prefix: str) -> list[str]:
    result = _docker("ps", "-a", "--filter", f"label={LABEL}={prefix}", "--format", "{{.Names}}", check=True)
    return sorted(result.stdout.split())


def _remove_container(name: str) -> None:
    _docker("rm", "-f", "-v", name, check=True)
    _docker("volume", "rm", f"{name}-docker")  # a node's engine; none for an LB


def down(inventory_dir: Path, prefix: str = "voxfleet", remove_images: bool = False) -> list[str]:
    removed = []
    for name in _sandbox_containers(prefix):
        _docker("rm", "-f", "-v", name, check=True)
        removed.append(name)
    for volume in _docker("volume", "ls", "-q", "--filter", f"label={LABEL}={prefix}").stdout.split():
        if _docker("volume", "rm", volume).returncode == 0:
            removed.append(f"volume {volume}")
    if _docker("network", "rm", f"{prefix}-sandbox").returncode == 0:
        removed.append(f"network {prefix}-sandbox")
    if (inventory_dir / "hosts.yml").exists():
        (inventory_dir / "hosts.yml").unlink()
        removed.append(str(inventory_dir / "hosts.yml"))
    if _private(inventory_dir).exists():
        shutil.rmtree(_private(inventory_dir))
        removed.append(f"{_private(inventory_dir)} (SSH key, state)")
    if remove_images:
        for image in _docker("images", "-q", "--filter", f"label={LABEL}=image").stdout.split():
            _docker("rmi", "-f", image)
            removed.append(f"image {image}")
    return removed


def load_spec(inventory_dir: Path) -> SandboxSpec | None:
    state = _private(inventory_dir) / "state.json"
    if not state.exists():
        return None
    fields = json.loads(state.read_text())
    fields["capacities"] = tuple(fields.get("capacities") or ())
    return SandboxSpec(**fields)


def status(spec: SandboxSpec) -> list[dict[str, str]]:
    """One row per sandbox container: name, role, state, and what a node runs."""
    rows = []
    lbs = {spec.lb(j): j for j in spec.lb_numbers}
    roles = {spec.registry: "registry", spec.prometheus: "prometheus"} | {lb: "lb" for lb in lbs}
    for name in [spec.registry, spec.prometheus, *lbs, *spec.nodes]:
        state = _docker("inspect", "--format", "{{.State.Status}}", name)
        row = {"name": name, "state": state.stdout.strip() if state.returncode == 0 else "missing",
               "role": roles.get(name, "gpu-host"), "runs": ""}
        if row["role"] == "gpu-host" and row["state"] == "running":
            inner = _docker("exec", name, "docker", "ps", "-a", "--format", "{{.Image}} ({{.Status}})")
            row["runs"] = ", ".join(inner.stdout.split("\n")).strip(", ") or "nothing"
        elif row["role"] == "lb":
            row["runs"] = f"nginx on http://127.0.0.1:{spec.lb_http_port(lbs[name])}"
        elif row["role"] == "registry":
            row["runs"] = f"registry on 127.0.0.1:{spec.registry_port}"
        elif row["role"] == "prometheus":
            row["runs"] = f"Prometheus on {spec.prometheus_url}"
        rows.append(row)
    return rows
