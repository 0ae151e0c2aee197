"""The sandbox inventory's hosts: a unit of capacity is a CPU quota and one inference
worker held to that quota's speed, the way a GPU is one worker of one speed."""

from __future__ import annotations

from canary.devtools.sandbox import SandboxSpec, inventory_document


def test_a_host_of_n_units_runs_n_workers_each_held_to_one_units_speed():
    spec = SandboxSpec(capacities=(1, 1, 2))
    hosts = inventory_document(spec)["all"]["children"]["tts_nodes"]["hosts"]
    shown = {name: (hv["tts_capacity"], hv["tts_cpus"], hv["tts_workers"], hv["tts_worker_cpus"])
             for name, hv in hosts.items()}
    assert shown == {"node1": (1, "0.4", 1, "0.4"), "node2": (1, "0.4", 1, "0.4"), "node3": (2, "0.8", 2, "0.4")}
