"""Weights reach every LB of the sandbox's HA pair, or none: the traffic port the
controller uses, against both real nginx LBs over SSH."""

from __future__ import annotations

import subprocess

import pytest

from canary.adapters import fleet as fleet_ops
from canary.adapters.connection import HostConnection
from canary.adapters.lb_traffic import TrafficChangeError, role_settings
from canary.adapters.rollout_ports import LbTrafficPort
from canary.decisions.inventory import Fleet
from canary.decisions.traffic import upstream_servers

pytestmark = pytest.mark.sandbox
MIME_TYPES = "/etc/nginx/mime.types"


def served_split(fleet: Fleet, lb: str) -> str:
    """The id of the split the LB's nginx serves now (its /lb-health header)."""
    port = role_settings(fleet.hostvars[lb])["nginx_lb_listen_port"]
    command = f"curl -s -o /dev/null -D - http://127.0.0.1:{port}/lb-health | sed -n 's/^X-LB-Traffic: //Ip'"
    return HostConnection.from_inventory(fleet, lb).run(command).decode().strip()


def test_a_weight_change_one_lb_refuses_is_put_back_on_the_others_and_names_that_lb(sandbox: Fleet):
    assert len(sandbox.lbs) == 2, "the sandbox runs an HA pair of LBs"
    fleet_ops.deploy(sandbox, "v1.2.0")
    nodes = [n.upstream for n in sandbox.nodes]
    even = upstream_servers({}, dict.fromkeys(nodes, "v1.2.0"), None)
    canary = upstream_servers({nodes[0]: "v1.3.0"}, dict.fromkeys(nodes[1:], "v1.2.0"), 10)
    port = LbTrafficPort(sandbox)
    port.prepare(even, 0)
    before = {lb: served_split(sandbox, lb) for lb in sandbox.lbs}
    assert len(set(before.values())) == 1 and "" not in before.values()

    second = sandbox.hostvars[sandbox.lbs[1]]["sandbox_container"]
    subprocess.run(["docker", "exec", second, "cp", "-p", MIME_TYPES, f"{MIME_TYPES}.good"], check=True)
    subprocess.run(["docker", "exec", second, "sh", "-c", f"echo 'not nginx' >> {MIME_TYPES}"], check=True)
    try:
        with pytest.raises(TrafficChangeError) as refused:
            port.apply(canary, 10)
        message = str(refused.value)
        assert message.startswith(f"LB {sandbox.lbs[1]}: traffic change to 10% refused") and "nginx -t" in message
        assert f"the other LBs are back on the previous split ({sandbox.lbs[0]})" in message
        assert {lb: served_split(sandbox, lb) for lb in sandbox.lbs} == before  # none moved
    finally:
        subprocess.run(["docker", "exec", second, "mv", f"{MIME_TYPES}.good", MIME_TYPES], check=True)
    port.apply(canary, 10)
    after = {lb: served_split(sandbox, lb) for lb in sandbox.lbs}
    assert len(set(after.values())) == 1 and after != before  # both serve the new split
    port.apply(even, 0)
