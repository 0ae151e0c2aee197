"""The inventory check on data shaped like `ansible-inventory --list` output."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from canary.decisions.inventory import InventoryError, check_fleet

SOURCE = Path("inventory/example")


def listing(**overrides) -> tuple[dict, dict]:
    common = {"tts_registry": "registry.example:5000", "tts_image_repository": "tts",
              "rollout_policy": {"steps": [10, 50, 100]}}
    hostvars = {
        f"gpu{i}": dict(common, ansible_host=f"10.0.0.{i}", tts_upstream_address=f"10.0.0.{i}:6006",
                        tts_gpu_count=1, tts_gpu_type="L4", tts_canary_eligible=i == 1)
        for i in (1, 2, 3)
    }
    hostvars["lb1"] = dict(common, ansible_host="10.0.0.10")
    data = {"all": {"children": ["tts_nodes", "lb", "ungrouped"]},
            "tts_nodes": {"hosts": ["gpu1", "gpu2", "gpu3"]}, "lb": {"hosts": ["lb1"]}}
    for host, changes in overrides.items():
        hostvars[host].update(changes)
    return data, hostvars


def problems(data, hostvars, **kwargs) -> list[str]:
    with pytest.raises(InventoryError) as info:
        check_fleet(SOURCE, data, hostvars, **kwargs)
    return info.value.problems


def test_a_good_inventory_becomes_a_fleet():
    fleet = check_fleet(SOURCE, *listing())
    assert [n.name for n in fleet.nodes] == ["gpu1", "gpu2", "gpu3"]
    assert fleet.node("gpu1").canary_eligible and fleet.node("gpu2").gpu_count == 1
    assert fleet.lbs == ("lb1",) and fleet.image("v1.3.0") == "registry.example:5000/tts:v1.3.0"
    assert fleet.registry_push == fleet.registry


def test_a_typo_in_a_host_key_is_named_with_a_suggestion():
    found = problems(*listing(gpu2={"tts_gpu_cuont": 2}))
    assert found == ["host gpu2: unknown key tts_gpu_cuont (did you mean tts_gpu_count?)"]


def test_duplicate_addresses_are_named():
    found = problems(*listing(gpu3={"tts_upstream_address": "10.0.0.2:6006", "ansible_host": "10.0.0.2"}))
    assert "host gpu3: duplicate upstream address 10.0.0.2:6006 (also host gpu2)" in found
    assert "host gpu3: duplicate SSH address 10.0.0.2:22 (also host gpu2)" in found


def test_no_lb_and_no_canary_eligible_host_are_named():
    data, hostvars = listing(gpu1={"tts_canary_eligible": False})
    data = copy.deepcopy(data)
    data["lb"] = {"hosts": []}
    found = problems(data, hostvars)
    assert any("no hosts in group 'lb'" in p for p in found)
    assert any("no canary-eligible host" in p for p in found)


def test_bad_policy_values_and_bad_canary_hosts_are_named():
    data, hostvars = listing()
    for hv in hostvars.values():
        hv["rollout_policy"] = {"steps": [10, 50], "canary_hosts": ["gpu2", "gpu9"]}
    found = problems(data, hostvars)
    assert any(p.startswith("rollout_policy.steps") for p in found)
    assert "rollout_policy.canary_hosts: gpu9 is not a host of group 'tts_nodes'" in found
    assert "rollout_policy.canary_hosts: gpu2 is not canary-eligible" in found


def test_command_line_overrides_are_checked_too():
    data, hostvars = listing()
    fleet = check_fleet(SOURCE, data, hostvars, policy_overrides={"dwell_s": 5, "min_requests": 20})
    assert (fleet.policy.dwell_s, fleet.policy.min_requests) == (5, 20)
    assert problems(data, hostvars, policy_overrides={"dwell": 5}) == [
        "rollout_policy.dwell: unknown key (did you mean dwell_s?)"]


def test_missing_registry_and_wrong_types_are_named():
    data, hostvars = listing()
    for hv in hostvars.values():
        hv.pop("tts_registry")
    hostvars["gpu2"]["tts_gpu_count"] = "two"
    found = problems(data, hostvars)
    assert "host gpu2: tts_gpu_count must be a non-negative integer, got 'two'" in found
    assert any("tts_registry is not set" in p for p in found)


def test_a_fleet_of_one_has_no_stable_capacity():
    data, hostvars = listing()
    data["tts_nodes"] = {"hosts": ["gpu1"]}
    assert any("need at least one stable host" in p for p in problems(data, hostvars))


def test_capacity_defaults_to_the_gpu_count_and_one_for_a_cpu_host():
    data, hostvars = listing(gpu2={"tts_gpu_count": 2}, gpu3={"tts_gpu_count": 0, "tts_capacity": 1.5})
    fleet = check_fleet(SOURCE, data, hostvars)
    assert [float(n.capacity) for n in fleet.nodes] == [1.0, 2.0, 1.5]
    data, hostvars = listing(gpu1={"tts_gpu_count": 0})
    assert check_fleet(SOURCE, data, hostvars).node("gpu1").capacity == 1


@pytest.mark.parametrize("bad", [0, -1, "two", True, 0.001])
def test_a_capacity_that_is_not_a_positive_number_is_named(bad):
    found = problems(*listing(gpu2={"tts_capacity": bad}))
    assert any(p.startswith("host gpu2: tts_capacity must be a positive number") and repr(bad) in p for p in found)


@pytest.mark.parametrize("var, bad", [("tts_workers", 0), ("tts_workers", "2"), ("tts_workers", True),
                                      ("tts_worker_cpus", "fast"), ("tts_worker_cpus", 0), ("tts_worker_cpus", -1),
                                      ("tts_worker_cpus", "inf"), ("tts_worker_cpus", 2000)])
def test_workers_and_their_speed_that_are_not_positive_are_named(var, bad):
    found = problems(*listing(gpu2={var: bad}))
    assert any(p.startswith(f"host gpu2: {var} must be a positive") and repr(bad) in p for p in found), found


def test_a_host_may_run_several_workers_held_to_one_speed():
    fleet = check_fleet(SOURCE, *listing(gpu2={"tts_workers": 2, "tts_worker_cpus": "0.4"}))
    assert fleet.node("gpu2").name == "gpu2"
