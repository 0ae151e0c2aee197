"""Traffic changes on the LB(s) in well under two seconds: the nginx_lb role's own traffic
template, rendered here, handed to the role's `voxfleet-lb-apply` over the host connection.

The role (through Ansible) installs nginx and the whole config, and is run at every
rollout's preflight. Between, each weight change renders `traffic.conf.j2` (plain Jinja:
the same template the role renders) with the role's defaults and the LB's `nginx_lb_*`
inventory variables, and pipes it to `voxfleet-lb-apply apply`: nginx -t on the whole
config with it, then a graceful reload, then a wait until /lb-health serves its id. The
servers it names are addresses from the LB's address book (canary.adapters.lb_addresses),
never names nginx would have to resolve.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import asdict
from typing import Any

import jinja2
import yaml

from canary import REPO_ROOT
from canary.adapters.connection import HostConnection, RemoteCommandError
from canary.adapters.lb_addresses import address_book
from canary.decisions.inventory import Fleet
from canary.decisions.traffic import UpstreamServer, by_address_book, host_of

ROLE = REPO_ROOT / "roles" / "nginx_lb"


class TrafficChangeError(RuntimeError):
    """A traffic split could not be made live; the message names the LB and nginx's reason."""


def role_settings(hostvars: dict[str, Any]) -> dict[str, Any]:
    """The role's defaults and vars, overridden by the LB's literal nginx_lb_* variables."""
    settings: dict[str, Any] = {}
    for part in ("defaults", "vars"):
        settings.update(yaml.safe_load((ROLE / part / "main.yml").read_text()) or {})
    settings.update({k: v for k, v in hostvars.items() if k.startswith("nginx_lb_") and "{{" not in str(v)})
    return settings


def traffic_id(settings: dict[str, Any], servers: list[UpstreamServer], canary_percent: int) -> str:
    """The split's name, as the role's `__nginx_lb_traffic_id` computes it (vars/main.yml)."""
    named = {"servers": [asdict(s) for s in servers], "canary_percent": int(canary_percent),
             "port": int(settings["nginx_lb_listen_port"])}
    return hashlib.sha1(json.dumps(named, sort_keys=True).encode()).hexdigest()


def render_traffic(settings: dict[str, Any], servers: list[UpstreamServer], canary_percent: int) -> str:
    """The traffic split's file exactly as the role's template writes it."""
    template = jinja2.Environment(loader=jinja2.FileSystemLoader(ROLE / "templates"), keep_trailing_newline=True, trim_blocks=True,
                                  undefined=jinja2.StrictUndefined).get_template("traffic.conf.j2")
    values = dict(settings, nginx_lb_servers=[asdict(s) for s in servers], nginx_lb_canary_percent=canary_percent)
    return template.render(values, __nginx_lb_traffic_id=traffic_id(settings, servers, canary_percent))


class LbTraffic:
    """Makes a traffic split live on an LB through voxfleet-lb-apply."""

    def __init__(self, fleet: Fleet, lb: str) -> None:
        self.lb = lb
        self.settings = role_settings(fleet.hostvars.get(lb, {}))
        self.connection = HostConnection.from_inventory(fleet, lb)

    def resolved(self, servers: list[UpstreamServer]) -> list[UpstreamServer]:
        """`servers` as this LB's config names them: by address (TrafficChangeError if one
        cannot be named)."""
        try:
            book = address_book(self.lb, self.connection.run, [host_of(s.address) for s in servers])
            return by_address_book(servers, book, self.lb)
        except RemoteCommandError as exc:  # names the host already
            raise TrafficChangeError(f"LB {self.lb} unreachable while resolving upstream names: {exc}") from exc
        except (OSError, ValueError) as exc:  # the address book's and by_address_book's name the LB
            raise TrafficChangeError(str(exc)) from exc

    def apply(self, servers: list[UpstreamServer], canary_percent: int) -> str:
        """Live on this LB when it returns; the live split's sha256."""
        fragment = render_traffic(self.settings, self.resolved(servers), canary_percent)
        command = f"{shlex.quote(str(self.settings['nginx_lb_apply_path']))} apply --if-needed"
        try:
            out = self.connection.run(command, stdin=fragment.encode()).decode().split()
        except RemoteCommandError as exc:
            raise TrafficChangeError(f"LB {self.lb}: traffic change to {canary_percent}% refused: {exc}") from exc
        return out[-1] if out else ""

    def restore(self) -> str:
        """Put back the split that was live before the last apply."""
        command = f"{shlex.quote(str(self.settings['nginx_lb_apply_path']))} restore"
        try:
            out = self.connection.run(command).decode().split()
        except RemoteCommandError as exc:
            raise TrafficChangeError(f"LB {self.lb}: putting the previous traffic split back failed: {exc}") from exc
        return out[-1] if out else ""
