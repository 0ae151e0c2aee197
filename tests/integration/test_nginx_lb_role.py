"""playbooks/traffic.yml (the nginx_lb role) against the sandbox LB host: real nginx over SSH.

Runs on the shared sandbox fleet (the `sandbox` fixture brings it up), or on another
fleet named with VOXFLEET_SANDBOX_INVENTORY. The tests put the LB's previous
nginx.conf and traffic split back when they finish.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from canary.adapters.lb_traffic import render_traffic, role_settings
from canary.decisions.traffic import upstream_servers
from canary.devtools.sandbox import canary_token

REPO = Path(__file__).resolve().parents[2]
OTHER_INVENTORY = os.environ.get("VOXFLEET_SANDBOX_INVENTORY")
INVENTORY = Path(OTHER_INVENTORY or REPO / "inventory" / "sandbox" / "hosts.yml")
BIN = Path(sys.executable).parent
CONF = "/etc/nginx/nginx.conf"
TRAFFIC = "/etc/nginx/voxfleet-traffic.conf"  # the split: weights, states, UI buckets
SAVED = "/tmp/nginx_lb_test.saved"
ACCESS_LOG = "/var/log/nginx/tts_access.json"

pytestmark = pytest.mark.sandbox


@dataclasses.dataclass
class Run:
    rc: int
    result: dict[str, Any]
    stderr: str

    def task(self, name: str, host: str) -> dict[str, Any]:
        for play in self.result["plays"]:
            for task in play["tasks"]:
                if task["task"]["name"].endswith(name) and host in task["hosts"]:
                    return task["hosts"][host]
        raise AssertionError(f"no result for task {name!r} on {host}")

    def failures(self, host: str) -> list[str]:
        return [
            str(task["hosts"][host].get("msg", ""))
            for play in self.result["plays"]
            for task in play["tasks"]
            if host in task["hosts"] and task["hosts"][host].get("failed") and not task["hosts"][host].get("ignored")
        ]


def _ansible_env() -> dict[str, str]:
    return {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}


def _json_output(proc: subprocess.CompletedProcess) -> dict[str, Any]:
    start = proc.stdout.find("{")  # ansible may print warnings before the document
    assert start >= 0, f"no JSON from ansible (rc {proc.returncode}): {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return json.loads(proc.stdout[start:])


class LB:
    def __init__(self, host: str, http_port: int, node_addresses: list[str], tmp: Path, hostvars: dict[str, Any]):
        self.host, self.http_port, self.nodes, self.tmp = host, http_port, node_addresses, tmp
        self.hostvars = hostvars

    def servers(self, canary_percent: int, canary: int = 1) -> list:
        """`canary` nodes on v2.0.0 and the rest on v1.0.0."""
        return upstream_servers({a: "v2.0.0" for a in self.nodes[:canary]},
                                {a: "v1.0.0" for a in self.nodes[canary:]}, canary_percent)

    def play(self, canary_percent: int, canary: int = 1, servers: list | None = None, **extra: Any) -> Run:
        """Runs playbooks/traffic.yml with `servers`, by default `canary` nodes on v2.0.0 and the rest on v1.0.0."""
        servers = servers or self.servers(canary_percent, canary)
        extravars = {"traffic_servers_by_lb": {self.host: [dataclasses.asdict(s) for s in servers]},
                     "traffic_canary_percent": canary_percent, **extra}
        path = self.tmp / "extravars.json"
        path.write_text(json.dumps(extravars))
        proc = subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", str(INVENTORY), str(REPO / "playbooks" / "traffic.yml"),
             "--limit", self.host, "-e", f"@{path}"],
            check=False, cwd=REPO, env=_ansible_env(), capture_output=True, text=True, timeout=300,
        )
        return Run(proc.returncode, _json_output(proc), proc.stderr)

    def module(self, module: str, args: str) -> dict[str, Any]:
        proc = subprocess.run([str(BIN / "ansible"), self.host, "-i", str(INVENTORY), "-m", module, "-a", args],
                              check=False, cwd=REPO, env=_ansible_env(), capture_output=True, text=True, timeout=120)
        result = _json_output(proc)["plays"][0]["tasks"][0]["hosts"][self.host]
        assert proc.returncode == 0, f"{module} {args} failed on {self.host}: {result.get('msg')}"
        return result

    def live_config(self) -> bytes:
        return base64.b64decode(self.module("ansible.builtin.slurp", f"src={CONF}")["content"])

    def live_traffic(self) -> bytes:
        return base64.b64decode(self.module("ansible.builtin.slurp", f"src={TRAFFIC}")["content"])

    def access_log(self) -> str:
        return base64.b64decode(self.module("ansible.builtin.slurp", f"src={ACCESS_LOG}")["content"]).decode()

    def get(self, path: str) -> tuple[int, dict[str, str], str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read().decode()


@pytest.fixture(scope="module")
def lb(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    if not OTHER_INVENTORY:
        request.getfixturevalue("sandbox")
    listed = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(INVENTORY), "--list"],
                            cwd=REPO, env=_ansible_env(), capture_output=True, text=True, check=True)
    inventory = json.loads(listed.stdout)
    hostvars = inventory["_meta"]["hostvars"]
    lb_hosts = inventory.get("lb", {}).get("hosts", [])
    nodes = inventory.get("tts_nodes", {}).get("hosts", [])
    assert lb_hosts and len(nodes) >= 3, f"{INVENTORY} needs an lb host and 3 tts_nodes (rollout sandbox up --hosts 3)"
    host = lb_hosts[0]
    lb = LB(host, int(hostvars[host]["sandbox_http_port"]),
            [hostvars[n]["tts_upstream_address"] for n in sorted(nodes)[:3]], tmp_path_factory.mktemp("nginx_lb"),
            hostvars[host])
    try:  # nginx's own answer: "/" would reach a TTS host (whose web UI is built on its first visit)
        urllib.request.urlopen(f"http://127.0.0.1:{lb.http_port}/lb-health", timeout=5)
    except urllib.error.HTTPError:
        pass  # nginx answered
    except OSError as err:  # a broken LB is what these tests exist to catch: a failure, never a skip
        pytest.fail(f"the sandbox LB does not answer on 127.0.0.1:{lb.http_port} ({err})")
    if lb.module("ansible.builtin.stat", f"path={TRAFFIC}")["stat"]["exists"] is False:
        assert lb.play(0).rc == 0  # an LB the role never configured: give it a split to put back
    lb.module("ansible.builtin.command", f"cp -p {CONF} {SAVED}.conf")
    lb.module("ansible.builtin.command", f"cp -p {TRAFFIC} {SAVED}.traffic")
    yield lb
    lb.module("ansible.builtin.command", f"cp -p {SAVED}.conf {CONF}")
    lb.module("ansible.builtin.command", f"cp -p {SAVED}.traffic {TRAFFIC}")
    lb.module("ansible.builtin.command", f"nginx -c {CONF} -s reload")
    lb.module("ansible.builtin.command", f"rm -f {SAVED}.conf {SAVED}.traffic")


def test_one_canary_and_two_stable_at_ten_percent_render_weights_2_9_9(lb: LB):
    run = lb.play(10)
    assert run.rc == 0, run.failures(lb.host)
    config = lb.live_traffic().decode()
    assert f"include {TRAFFIC};" in lb.live_config().decode()
    canary, stable1, stable2 = lb.nodes
    assert f"server {canary} weight=2 max_fails=3 fail_timeout=5s;" in config
    assert f"server {stable1} weight=9 max_fails=3 fail_timeout=5s;" in config
    assert f"server {stable2} weight=9 max_fails=3 fail_timeout=5s;" in config
    assert config.index(canary) < config.index(stable1) < config.index(stable2)
    assert "10% tts_ui_canary;\n    * tts_ui_stable;" in config
    status, headers, body = lb.get("/lb-health")
    assert (status, body) == (200, "ok\n")
    assert headers["X-LB-Traffic"] == run.task("Report nginx_lb_report", lb.host)["ansible_facts"][
        "nginx_lb_report"]["traffic_id"]


def test_rerunning_the_same_weights_changes_nothing(lb: LB):
    assert lb.play(50).rc == 0
    again = lb.play(50)
    assert again.rc == 0, again.failures(lb.host)
    assert again.result["stats"][lb.host]["changed"] == 0


def test_the_report_carries_the_sha256_of_the_live_config(lb: LB):
    run = lb.play(10)
    assert run.rc == 0, run.failures(lb.host)
    report = run.task("Report nginx_lb_report", lb.host)["ansible_facts"]["nginx_lb_report"]
    assert report["config_sha256"] == hashlib.sha256(lb.live_config()).hexdigest()
    assert report["traffic_sha256"] == hashlib.sha256(lb.live_traffic()).hexdigest()
    assert (report["config_path"], report["traffic_path"]) == (CONF, TRAFFIC)
    assert report["canary_percent"] == 10
    assert [(s["address"], s["weight"], s["state"]) for s in report["servers"]] == [
        (lb.nodes[0], 2, "up"), (lb.nodes[1], 9, "up"), (lb.nodes[2], 9, "up")]
    assert set(report["logged_as"]) == set(lb.nodes)
    assert all(re.fullmatch(r"[0-9.]+:[0-9]+|\[[0-9a-f:]+\]:[0-9]+", peer) for peers in report["logged_as"].values()
               for peer in peers) and all(report["logged_as"].values())

    # The access log names upstreams by IP; the report's logged_as translates them back.
    _, headers, _ = lb.get("/healthz")  # answered by a node or, with none listening, a 502
    logged = [json.loads(line) for line in lb.access_log().splitlines()]
    (entry,) = [e for e in logged if e["request_id"] == headers["X-Request-Id"]]
    peers = {peer for peers in report["logged_as"].values() for peer in peers}
    assert entry["upstream_addr"] and set(entry["upstream_addr"].split(", ")) <= peers

    # Servers named by address, as the controller names them, are logged as themselves.
    by_address = [dataclasses.replace(s, address=report["logged_as"][s.address][0]) for s in lb.servers(10)]
    run = lb.play(10, servers=by_address)
    assert run.rc == 0, run.failures(lb.host)
    logged_as = run.task("Report nginx_lb_report", lb.host)["ansible_facts"]["nginx_lb_report"]["logged_as"]
    assert logged_as == {s.address: [s.address] for s in by_address}, logged_as


def test_a_config_nginx_refuses_fails_the_run_and_the_previous_config_keeps_serving(lb: LB):
    assert lb.play(10).rc == 0
    before = hashlib.sha256(lb.live_config() + lb.live_traffic()).hexdigest()
    _, healthy_headers, _ = lb.get("/lb-health")

    run = lb.play(50, nginx_lb_client_max_body_size="64 kb;;")

    assert run.rc != 0
    messages = " ".join(run.failures(lb.host))
    assert "nginx -t refused the rendered config" in messages
    assert "client_max_body_size" in messages
    assert hashlib.sha256(lb.live_config() + lb.live_traffic()).hexdigest() == before
    status, headers, body = lb.get("/lb-health")
    assert (status, body) == (200, "ok\n")
    assert headers["X-LB-Traffic"] == healthy_headers["X-LB-Traffic"]


def test_zero_and_hundred_percent_use_down_and_backup_and_a_single_ui_bucket(lb: LB):
    canary, stable1, stable2 = lb.nodes
    assert lb.play(0).rc == 0
    config = lb.live_traffic().decode()
    assert f"server {canary} weight=1 max_fails=3 fail_timeout=5s down;" in config
    assert f"server {stable1} weight=1 max_fails=3 fail_timeout=5s;" in config
    assert "upstream tts_ui_canary" not in config and "* tts_ui_stable;" in config and "% tts_ui" not in config

    assert lb.play(100).rc == 0
    config = lb.live_traffic().decode()
    assert f"server {canary} weight=1 max_fails=3 fail_timeout=5s;" in config
    assert f"server {stable2} weight=1 max_fails=3 fail_timeout=5s backup;" in config
    assert "upstream tts_ui_stable" not in config and "* tts_ui_canary;" in config and "% tts_ui" not in config


def test_inputs_that_disagree_with_the_share_are_refused_before_nginx_is_touched(lb: LB):
    assert lb.play(10).rc == 0
    before = lb.live_traffic()
    run = lb.play(10, traffic_canary_percent=0)  # canary servers up, but a 0% share
    assert run.rc != 0
    assert f"servers up are {lb.nodes[0]}" in " ".join(run.failures(lb.host))
    assert lb.live_traffic() == before


def test_the_controller_renders_the_split_byte_for_byte_as_the_role_does(lb: LB):
    """The fast path (canary.adapters.lb_traffic) and the role write the same file, id included."""
    for percent, canary in ((10, 1), (50, 2), (0, 1), (100, 1)):
        run = lb.play(percent, canary)
        assert run.rc == 0, run.failures(lb.host)
        ours = render_traffic(role_settings(lb.hostvars), lb.servers(percent, canary), percent)
        assert ours == lb.live_traffic().decode(), percent
        _, headers, _ = lb.get("/lb-health")
        assert f'default "{headers["X-LB-Traffic"]}";' in ours


# An upstream that answers every request with one status and version, for 120 s. It runs
# inside a node container, so the LB reaches it as the fleet's servers are reached.
STUB_UPSTREAM = """
import http.server, os, sys, threading
status, version, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
class Answer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"stub": true}'
        self.send_response(status)
        self.send_header("X-Model-Version", version)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST
    def log_message(self, *args):
        pass
threading.Timer(120, os._exit, [0]).start()
http.server.ThreadingHTTPServer(("", port), Answer).serve_forever()
"""


def _start_stub(address: str, status: int, version: str) -> str:
    """Serves `status` on `address`'s host at a new port; returns that upstream address."""
    host = address.rsplit(":", 1)[0]
    port = {500: 6099, 200: 6098}[status]
    subprocess.run(["docker", "exec", "-d", host, "python3", "-c", STUB_UPSTREAM, str(status), version, str(port)],
                   check=True, capture_output=True, timeout=30)
    return f"{host}:{port}"


def _wait_answering(lb: LB, attempts: int = 50) -> None:
    for _ in range(attempts):
        if lb.get("/healthz")[0] == 200:
            return
        time.sleep(0.2)
    raise AssertionError("the stub upstreams never answered through the LB")


def _post_speech(lb: LB, session: str = "") -> tuple[int, str]:
    headers = {"Content-Type": "application/json"} | ({"X-Session-Id": session} if session else {})
    request = urllib.request.Request(f"http://127.0.0.1:{lb.http_port}/v1/audio/speech", data=b'{"input": "hi"}',
                                     headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["X-Request-Id"]
    except urllib.error.HTTPError as err:
        return err.code, err.headers["X-Request-Id"]


def _error_log_lines(lb: LB) -> int:
    return int(lb.module("ansible.builtin.command", "wc -l /var/log/nginx/error.log")["stdout"].split()[0])


def _error_log_since(lb: LB, line: int) -> str:
    return lb.module("ansible.builtin.command", f"tail -n +{line + 1} /var/log/nginx/error.log")["stdout"]


def test_answers_never_take_a_server_out_and_a_failing_version_is_retried_once_on_the_other(lb: LB):
    canary = _start_stub(lb.nodes[0], 500, "v2.0.0")
    stable = [_start_stub(address, 200, "v1.0.0") for address in lb.nodes[1:]]
    servers = upstream_servers({canary: "v2.0.0"}, {a: "v1.0.0" for a in stable}, 50)
    run = lb.play(50, servers=servers)
    assert run.rc == 0, run.failures(lb.host)
    logged_as = run.task("Report nginx_lb_report", lb.host)["ansible_facts"]["nginx_lb_report"]["logged_as"]
    canary_peers, stable_peers = set(logged_as[canary]), {p for a in stable for p in logged_as[a]}
    _wait_answering(lb)
    errors_before = _error_log_lines(lb)

    answers = [_post_speech(lb) for _ in range(40)]  # well within fail_timeout: 3 counted fails would take it out

    assert [status for status, _ in answers] == [200] * 40
    by_id = {e["request_id"]: e for e in map(json.loads, lb.access_log().splitlines())}
    attempts = [(by_id[rid]["upstream_addr"], by_id[rid]["upstream_status"]) for _, rid in answers]
    on_canary = [(addr, status) for addr, status in attempts if addr.split(" : ")[0] in canary_peers]
    assert len(on_canary) >= 10, attempts  # it kept its share: never marked down
    for addr, status in on_canary:  # each failure retried once, on the other version
        first, second = addr.split(" : ")
        assert status == "500 : 200" and second in stable_peers, (addr, status)
    assert all(status == "200" for addr, status in attempts if (addr, status) not in on_canary)
    assert "temporarily disabled" not in _error_log_since(lb, errors_before)


def test_an_unreachable_server_is_still_taken_out_and_its_requests_served_elsewhere(lb: LB):
    stable = [_start_stub(address, 200, "v1.0.0") for address in lb.nodes[1:]]
    dead = f"{lb.nodes[0].rsplit(':', 1)[0]}:6097"  # nothing listens there: connection refused
    run = lb.play(50, servers=upstream_servers({dead: "v2.0.0"}, {a: "v1.0.0" for a in stable}, 50))
    assert run.rc == 0, run.failures(lb.host)
    _wait_answering(lb)
    errors_before = _error_log_lines(lb)
    assert [_post_speech(lb)[0] for _ in range(20)] == [200] * 20
    assert "upstream server temporarily disabled" in _error_log_since(lb, errors_before)
    # clients with session keys: the keys that fall on the dead host's version are answered too
    answers = [_post_speech(lb, session=f"k{i}") for i in range(40)]
    assert [status for status, _ in answers] == [200] * 40
    by_id = {e["request_id"]: e for e in map(json.loads, lb.access_log().splitlines())}
    assert any(" : " in by_id[rid]["upstream_addr"] for _, rid in answers)  # some went to the dead one first


def _speech_version(lb: LB, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{lb.http_port}/v1/audio/speech", data=b'{"input": "hi"}',
                                     headers={"Content-Type": "application/json", **headers}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("X-Model-Version", "")
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("X-Model-Version", "")


def test_a_listener_with_the_token_reaches_the_canary_at_zero_percent_and_only_the_canary(lb: LB):
    token = "listen-first-0123456789"
    canary = _start_stub(lb.nodes[0], 200, "v2.0.0")
    stable = [_start_stub(address, 200, "v1.0.0") for address in lb.nodes[1:]]
    run = lb.play(0, servers=upstream_servers({canary: "v2.0.0"}, {a: "v1.0.0" for a in stable}, 0),
                  nginx_lb_canary_token=token)
    assert run.rc == 0, run.failures(lb.host)
    _wait_answering(lb)
    listen = {"X-Voxfleet-Canary": token}
    assert {_speech_version(lb, listen) for _ in range(10)} == {(200, "v2.0.0")}  # drained, yet heard
    assert {_speech_version(lb, {}) for _ in range(10)} == {(200, "v1.0.0")}  # everyone else: stable
    assert _speech_version(lb, {"X-Voxfleet-Canary": token[:-1]}) == (403, "")
    assert _speech_version(lb, {"X-Voxfleet-Canary": token, "X-Session-Id": "k1"}) == (200, "v2.0.0")

    failing = _start_stub(lb.nodes[0], 500, "v2.0.0")  # a canary that fails: the listener hears no stable answer
    run = lb.play(0, servers=upstream_servers({failing: "v2.0.0"}, {a: "v1.0.0" for a in stable}, 0),
                  nginx_lb_canary_token=token)
    assert run.rc == 0, run.failures(lb.host)
    assert {_speech_version(lb, listen)[0] for _ in range(5)} == {502}

    refused = lb.play(0, servers=upstream_servers({canary: "v2.0.0"}, {a: "v1.0.0" for a in stable}, 0),
                      nginx_lb_canary_token="short")
    assert refused.rc != 0 and any("nginx_lb_canary_token must be" in f for f in refused.failures(lb.host))
    if not OTHER_INVENTORY:  # the sandbox inventory's own token, read by the role at play time
        assert lb.play(0, servers=upstream_servers({canary: "v2.0.0"}, {a: "v1.0.0" for a in stable}, 0)).rc == 0
        assert _speech_version(lb, {"X-Voxfleet-Canary": canary_token(INVENTORY.parent)}) == (200, "v2.0.0")
        assert _speech_version(lb, listen) == (403, "")


def test_operations_routes_and_uploads_are_closed_to_other_addresses(lb: LB):
    stable = [_start_stub(address, 200, "v1.0.0") for address in lb.nodes]
    assert lb.play(0, servers=upstream_servers({}, {a: "v1.0.0" for a in stable}, 0)).rc == 0
    _wait_answering(lb)
    outsider = lb.nodes[0].rsplit(":", 1)[0]  # a container on the network: not in nginx_lb_operations_allow
    lb_name = lb.hostvars["sandbox_container"]

    def from_outsider(path: str, *curl: str) -> str:
        shown = subprocess.run(["docker", "exec", outsider, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                *curl, f"http://{lb_name}:80{path}"], capture_output=True, text=True, timeout=30)
        return shown.stdout

    for path in ("/version", "/metrics", "/docs", "/openapi.json"):
        assert from_outsider(path) == "403", path
        assert lb.get(path)[0] == 200, path  # this machine is the controller: allowed
    assert from_outsider("/readyz") == "200"
    assert from_outsider("/v1/audio/speech", "-X", "POST", "-d", "{}") == "200"
    for path in ("/ui/gradio_api/upload", "/ui/upload"):
        assert from_outsider(path, "-X", "POST", "-F", "files=@/etc/hostname") == "403", path
    # the UI has a rate limit of its own (20/s, bursts of 80), apart from the API's
    with ThreadPoolExecutor(20) as pool:  # 300 at once: far over a burst of 80, however slow this machine
        burst = [answer[0] for answer in pool.map(lambda _: lb.get("/ui/"), range(300))]
    assert set(burst) == {200, 429} and burst.count(200) >= 80, burst
    assert _post_speech(lb)[0] == 200  # the API's limit is another


def test_idle_and_half_sent_connections_are_closed(lb: LB):
    assert lb.play(10, nginx_lb_client_timeout="2s").rc == 0
    idle = socket.create_connection(("127.0.0.1", lb.http_port), timeout=15)
    half = socket.create_connection(("127.0.0.1", lb.http_port), timeout=15)
    half.sendall(b"POST /v1/audio/speech HTTP/1.1\r\nHost: lb\r\nContent-Length: 100\r\n\r\n{\"in")
    started = time.monotonic()
    for conn in (idle, half):
        with conn:
            try:
                while conn.recv(4096):  # a 408 may come first; then the close
                    pass
            except ConnectionResetError:
                pass
    assert time.monotonic() - started < 10  # closed by the 2 s timeouts, not by the 15 s client timeout
