"""The sandbox LB's access log rotated by the nginx_lb role's own logrotate rules while
clients send requests and the controller's reader reads: every request the clients sent
is read exactly once, across two rotations."""

from __future__ import annotations

import time

import pytest

from canary.adapters.connection import HostConnection
from canary.adapters.lb_log import ACCESS_LOG, lb_access_log
from canary.adapters.lb_traffic import role_settings
from canary.decisions.inventory import Fleet
from canary.devtools.loadgen import LoadGenerator

pytestmark = pytest.mark.sandbox


def test_a_rotation_mid_step_neither_loses_nor_repeats_a_request(stable_fleet: Fleet):
    lb = stable_fleet.lbs[0]
    reader = lb_access_log(stable_fleet).readers[0]
    assert reader.host == lb
    host = HostConnection.from_inventory(stable_fleet, lb)
    rules = role_settings(stable_fleet.hostvars[lb])["nginx_lb_logrotate_conf_path"]
    rotate = f"logrotate --force --state /var/lib/logrotate/voxfleet-lb.status {rules}"

    cursor = reader.cursor()
    began = time.time()
    load = LoadGenerator(stable_fleet.lb_public_urls[0], rps=8).start(duration_s=14)
    seen: list[str] = []
    try:
        for moment in (4, 7, 10):  # rotate, read, rotate; the last read after the load ends
            time.sleep(max(0.0, moment - (time.time() - began)))
            if moment == 7:
                requests, cursor = reader.read(cursor)
                seen += [r.request_id for r in requests]
            else:
                host.run(rotate)
    finally:
        traffic = load.stop()
    time.sleep(1)  # nginx writes a line when the answer has gone
    requests, cursor = reader.read(cursor)
    seen += [r.request_id for r in requests]
    print(f"clients sent {len(traffic.outcomes)}; the reader read {len(seen)}")
    assert len(traffic.outcomes) >= 80 and not traffic.failed, traffic.summary()
    assert len(seen) == len(set(seen)) == len(traffic.outcomes)
    files = host.run(f"ls {ACCESS_LOG}*").decode().split()
    assert {ACCESS_LOG, f"{ACCESS_LOG}.1", f"{ACCESS_LOG}.2.gz"} <= set(files), files
