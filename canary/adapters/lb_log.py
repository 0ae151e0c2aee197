"""The LB's JSON access log, read since a cursor over the inventory's SSH settings."""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import replace
from typing import Any

from canary.decisions.access_log import LogCursor, Request, parse_lines, split_complete
from canary.decisions.inventory import Fleet

ACCESS_LOG = "/var/log/nginx/tts_access.json"
MAX_READ_BYTES = 32 * 1024 * 1024


class SshAccessLog:
    """Reads the LB's JSON access log since a cursor, over the inventory's SSH settings."""

    def __init__(self, fleet: Fleet, path: str = ACCESS_LOG) -> None:
        self.fleet, self.path = fleet, path
        host = fleet.lbs[0]
        hv = fleet.hostvars.get(host, {})
        key = str(hv.get("ansible_ssh_private_key_file", "")).replace("{{ inventory_dir }}", str(
            fleet.source if fleet.source.is_dir() else fleet.source.parent))
        self.ssh = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
                    "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
                    "-p", str(hv.get("ansible_port", 22))]
        if key:
            self.ssh += ["-i", key]
        self.ssh.append(f"{hv.get('ansible_user', 'root')}@{hv.get('ansible_host', host)}")
        self.host = host
        self._addresses: dict[str, str] | None = None

    def _remote(self, command: str) -> bytes:
        # stdin from /dev/null: ssh would otherwise make the stdin it shares with us non-blocking
        result = subprocess.run([*self.ssh, command], capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise OSError(f"LB {self.host}: reading {self.path} failed: {result.stderr.decode(errors='replace').strip()}")
        return result.stdout

    def _stat(self) -> tuple[str, int]:
        out = self._remote(f"stat -c '%i %s' {shlex.quote(self.path)} 2>/dev/null || echo '0 0'").split()
        return out[0].decode(), int(out[1])

    def cursor(self) -> dict[str, Any]:
        generation, size = self._stat()
        return {"generation": generation, "offset": size}

    def _address_map(self) -> dict[str, str]:
        """Logged `ip:port` → inventory `name:port`. nginx logs the address it resolved, so
        names are resolved on the LB itself, the way nginx resolved them."""
        if self._addresses is None:
            names = sorted({n.upstream.rsplit(":", 1)[0] for n in self.fleet.nodes})
            out = self._remote("getent hosts " + " ".join(shlex.quote(n) for n in names) + " || true").decode()
            resolved: dict[str, str] = {}
            for line in out.splitlines():
                ip, *aliases = line.split()
                for alias in aliases:
                    resolved.setdefault(alias, ip)
            self._addresses = {}
            for node in self.fleet.nodes:
                host, port = node.upstream.rsplit(":", 1)
                self._addresses[f"{resolved.get(host, host)}:{port}"] = node.upstream
        return self._addresses

    def read(self, cursor: dict[str, Any]) -> tuple[list[Request], dict[str, Any]]:
        generation, size = self._stat()
        start = LogCursor(**cursor) if cursor else LogCursor(generation=generation, offset=0)
        offset = start.offset if start.generation == generation and start.offset <= size else 0  # rotated
        requests: list[Request] = []
        names = self._address_map()
        while offset < size:  # in bounded chunks, to the end of what is logged now
            chunk = self._remote(f"tail -c +{offset + 1} {shlex.quote(self.path)} | head -c {MAX_READ_BYTES}")
            lines, consumed = split_complete(chunk)
            if consumed == 0:
                break  # only a partial line so far
            parsed, _malformed = parse_lines(lines)
            requests += [replace(r, attempts=tuple(replace(a, address=names.get(a.address, a.address))
                                                   for a in r.attempts)) for r in parsed]
            offset += consumed
        return requests, {"generation": generation, "offset": offset}
