from __future__ import annotations

import re
from fractions import Fraction
from functools import reduce
from math import gcd

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.decisions.capacity import MAX_WEIGHT
from canary.decisions.traffic import (
    UpstreamServer,
    by_address_book,
    canary_percent_of,
    expected_share,
    upstream_servers,
)


def hosts(prefix: str, n: int, version: str) -> dict[str, str]:
    return {f"{prefix}{i}:6006": version for i in range(1, n + 1)}


def split_weights(canary: list[str], stable: list[str], percent: int) -> tuple[int, int]:
    """(weight of a canary server, weight of a stable server), equal capacities."""
    servers = upstream_servers({a: "v2.0.0" for a in canary}, {a: "v1.0.0" for a in stable}, percent)
    return next(s.weight for s in servers if s.role == "canary"), next(s.weight for s in servers if s.role == "stable")


def test_one_canary_two_stable_at_ten_percent():
    assert split_weights(["c1"], ["s1", "s2"], 10) == (2, 9)
    servers = upstream_servers({"c1:6006": "v1.3.0"}, {"s1:6006": "v1.2.0", "s2:6006": "v1.2.0"}, 10)
    assert servers == [
        UpstreamServer("c1:6006", "canary", "v1.3.0", 2, "up"),
        UpstreamServer("s1:6006", "stable", "v1.2.0", 9, "up"),
        UpstreamServer("s2:6006", "stable", "v1.2.0", 9, "up"),
    ]
    assert expected_share(servers) == pytest.approx({"v1.3.0": 2 / 20, "v1.2.0": 18 / 20})


@pytest.mark.parametrize(
    ("c", "s", "percent", "weights"),
    [(1, 1, 10, (1, 9)), (1, 1, 50, (1, 1)), (2, 3, 10, (1, 6)), (1, 9, 10, (1, 1)), (3, 1, 25, (1, 9))],
)
def test_known_splits(c: int, s: int, percent: int, weights: tuple[int, int]):
    assert split_weights([f"c{i}" for i in range(c)], [f"s{i}" for i in range(s)], percent) == weights


def test_zero_percent_marks_canaries_down():
    servers = upstream_servers(hosts("c", 2, "v2.0.0"), hosts("s", 3, "v1.0.0"), 0)
    assert [(s.role, s.state, s.weight) for s in servers] == [("canary", "down", 1)] * 2 + [("stable", "up", 1)] * 3
    assert expected_share(servers) == {"v1.0.0": 1.0}


def test_hundred_percent_keeps_stable_as_backup_for_retries():
    servers = upstream_servers(hosts("c", 2, "v2.0.0"), hosts("s", 3, "v1.0.0"), 100)
    assert [(s.role, s.state, s.weight) for s in servers] == [("canary", "up", 1)] * 2 + [("stable", "backup", 1)] * 3
    assert expected_share(servers) == {"v2.0.0": 1.0}


def test_stable_only_at_zero_and_canary_only_at_hundred():
    assert [s.state for s in upstream_servers({}, hosts("s", 2, "v1.0.0"), 0)] == ["up", "up"]
    assert [(s.state, s.weight) for s in upstream_servers(hosts("c", 2, "v2.0.0"), {}, 100)] == [("up", 1)] * 2


def test_canary_is_listed_first_whatever_the_order_of_the_maps():
    servers = upstream_servers({"z:1": "v2.0.0"}, {"a:1": "v1.0.0", "b:1": "v1.0.0"}, 50)
    assert [s.role for s in servers] == ["canary", "stable", "stable"]


@pytest.mark.parametrize(
    ("canary", "stable", "percent", "message"),
    [
        (["c"], ["s"], -1, "within 0..100"),
        (["c"], ["s"], 101, "within 0..100"),
        (["c"], ["s"], 10.0, "must be an int"),
        (["c"], ["s"], True, "must be an int"),
        (["c"], [], 99, "no stable servers to carry 1%"),
        ([], ["s"], 1, "no canary servers to carry 1%"),
        ([], [], 0, "no stable servers"),
        (["a", "b"], ["a"], 10, "a listed as both canary and stable"),
        ([""], ["s"], 10, "empty or non-string address"),
    ],
)
def test_bad_inputs_are_refused_with_the_reason(canary, stable, percent, message):
    with pytest.raises(ValueError, match=message):
        upstream_servers({a: "v2.0.0" for a in canary}, {a: "v1.0.0" for a in stable}, percent)


def test_upstream_servers_refuses_an_address_in_both_maps():
    with pytest.raises(ValueError, match="h:6006 listed as both"):
        upstream_servers({"h:6006": "v2.0.0"}, {"h:6006": "v1.0.0"}, 10)


def test_expected_share_ignores_down_and_backup_servers():
    servers = [
        UpstreamServer("a", "canary", "v2.0.0", 5, "down"),
        UpstreamServer("b", "stable", "v1.0.0", 1, "up"),
        UpstreamServer("c", "stable", "v0.9.0", 3, "backup"),
    ]
    assert expected_share(servers) == {"v1.0.0": 1.0}
    assert expected_share([]) == {}


counts = st.integers(min_value=1, max_value=20)
shares = st.integers(min_value=1, max_value=99)


@given(c=counts, s=counts, percent=shares)
def test_the_canary_gets_exactly_its_share(c: int, s: int, percent: int):
    servers = upstream_servers(hosts("c", c, "v2.0.0"), hosts("s", s, "v1.0.0"), percent)
    share = expected_share(servers)
    assert abs(share["v2.0.0"] - percent / 100) <= 1e-9
    assert abs(share["v1.0.0"] - (100 - percent) / 100) <= 1e-9


@given(c=counts, s=counts, percent=shares)
def test_weights_are_positive_reduced_and_within_nginx_limits(c: int, s: int, percent: int):
    servers = upstream_servers(hosts("c", c, "v2.0.0"), hosts("s", s, "v1.0.0"), percent)
    weights = [server.weight for server in servers]
    assert all(isinstance(w, int) and w >= 1 for w in weights)
    assert all(server.state == "up" for server in servers)
    assert reduce(gcd, weights) == 1
    assert max(weights) <= 100 * max(c, s) <= MAX_WEIGHT


@given(c=st.integers(0, 20), s=st.integers(0, 20), percent=st.integers(0, 100))
def test_every_valid_input_gives_one_server_per_address_canary_first(c: int, s: int, percent: int):
    try:
        servers = upstream_servers(hosts("c", c, "v2.0.0"), hosts("s", s, "v1.0.0"), percent)
    except ValueError:
        assert (s == 0 and percent < 100) or (c == 0 and percent > 0)
        return
    assert [server.role for server in servers] == ["canary"] * c + ["stable"] * s
    assert all(server.weight >= 1 for server in servers)
    assert any(server.state == "up" for server in servers)
    assert expected_share(servers).get("v2.0.0", 0.0) == pytest.approx(percent / 100)


def test_weights_follow_capacity_within_each_side():
    capacity = {"c1": Fraction(1), "s1": Fraction(1), "s2": Fraction(2)}
    servers = upstream_servers({"c1": "v2.0.0"}, {"s1": "v1.0.0", "s2": "v1.0.0"}, 10, capacity)
    assert [(s.address, s.weight) for s in servers] == [("c1", 1), ("s1", 3), ("s2", 6)]
    by_capacity = upstream_servers({"c1": "v2.0.0"}, {"s1": "v1.0.0", "s2": "v1.0.0"}, None, capacity)
    assert [s.weight for s in by_capacity] == [1, 1, 2] and canary_percent_of(by_capacity) == 25


def test_a_drained_server_is_down_and_the_others_carry_its_load():
    servers = upstream_servers({"c1": "v2.0.0"}, {"s1": "v1.0.0", "s2": "v1.0.0"}, None, out=["s2"])
    assert [(s.address, s.weight, s.state) for s in servers] == [("c1", 1, "up"), ("s1", 1, "up"),
                                                                   ("s2", 1, "down")]
    assert canary_percent_of(servers) == 50


@given(c=counts, s=counts, percent=shares)
def test_the_share_the_role_is_told_matches_the_weights(c: int, s: int, percent: int):
    assert canary_percent_of(upstream_servers(hosts("c", c, "v2.0.0"), hosts("s", s, "v1.0.0"), percent)) == percent


# --- a version reaches the LB's config only as a semantic version --------------------------------------------


@pytest.mark.parametrize("version", ["v1.3.0\n    server 6.6.6.6:80 weight=100;", "v1.3.0;", "v1.3.0 #", "1.3",
                                     "v1.3.0\n", "new", "v١.2.3", "v1.3.0-rc.1}"])
def test_a_version_that_is_not_semantic_is_refused_naming_it(version):
    with pytest.raises(ValueError) as refused:
        upstream_servers({"c1:6006": version}, {"s1:6006": "v1.2.0"}, 10)
    assert repr(version) in str(refused.value) and "semantic version" in str(refused.value)
    with pytest.raises(ValueError, match="semantic version"):
        UpstreamServer("s1:6006", "stable", version, 1, "up")


@pytest.mark.parametrize("version", ["v1.3.0", "1.3.0", "v1.3.0-rc.1", "v10.20.30-beta-2.x", ""])
def test_semantic_versions_and_a_not_yet_known_one_pass(version):
    assert upstream_servers({"c1:6006": "v9.0.0"}, {"s1:6006": version}, 10)[1].version == version


def test_a_rollout_of_an_injected_version_is_refused_before_anything(world):
    from canary.rollout.controller import RolloutError

    sim, store, controller, clock = world
    with pytest.raises(RolloutError) as refused:
        controller().start("v1.3.0\n    server 6.6.6.6:80;")
    assert "'v1.3.0\\n    server 6.6.6.6:80;' is not a semantic version" in str(refused.value)
    assert store.all_active() == []


def test_the_rendered_split_names_each_version_in_a_comment():
    from canary.adapters.lb_traffic import render_traffic, role_settings

    rendered = render_traffic(role_settings({}), upstream_servers({"c1:6006": "v1.3.0"}, {"s1:6006": "v1.2.0"}, 10), 10)
    assert "# canary v1.3.0" in rendered and "# stable v1.2.0" in rendered


def _retry_map(rendered: str) -> dict[str, str]:
    block = rendered.split("map $voxfleet_first_version $voxfleet_retry_pool {")[1].split("}")[0]
    pairs = [re.findall(r'"([^"]*)"|([^\s;]+)', line) for line in block.strip().splitlines()]
    return {key[0] or key[1]: value[0] or value[1] for key, value in pairs}


def test_a_failed_answer_is_retried_on_the_other_versions_pool():
    from canary.adapters.lb_traffic import render_traffic, role_settings

    servers = upstream_servers({"c1:6006": "v1.3.0"}, {"s1:6006": "v1.2.0", "s2:6006": "v1.2.0"}, 10)
    rendered = render_traffic(role_settings({}), servers, 10)
    assert _retry_map(rendered) == {"v1.3.0": "tts_api_retry_stable", "v1.2.0": "tts_api_retry_canary",
                                    "default": "tts_api", "": "$voxfleet_no_answer_pool"}  # no answer, no version: nginx.conf says
    stable_pool = rendered.split("upstream tts_api_retry_stable {")[1].split("}")[0]
    assert "server s1:6006 " in stable_pool and "server s2:6006 " in stable_pool and "c1:6006" not in stable_pool


def test_at_zero_percent_retries_go_anywhere_and_at_a_hundred_the_old_version_still_catches_them():
    from canary.adapters.lb_traffic import render_traffic, role_settings

    for percent in (0, 100):  # the canary down / the stable servers backup
        servers = upstream_servers({"c1:6006": "v1.3.0"}, {"s1:6006": "v1.2.0"}, percent)
        rendered = render_traffic(role_settings({}), servers, percent)
        expected = {"default": "tts_api", "": "$voxfleet_no_answer_pool"} if percent == 0 else {
            "v1.3.0": "tts_api_retry_stable", "v1.2.0": "tts_api_retry_canary", "default": "tts_api",
            "": "$voxfleet_no_answer_pool"}
        assert _retry_map(rendered) == expected, percent


def test_the_lb_config_names_servers_by_the_address_book_never_by_name():
    servers = upstream_servers({"node1:6006": "v1.3.0"}, {"node2:6006": "v1.2.0", "10.0.0.9:6006": "v1.2.0"}, 10)
    book = {"node1": "172.18.0.4", "node2": "172.18.0.5", "10.0.0.9": "10.0.0.9"}
    named = by_address_book(servers, book, "lb1")
    assert [s.address for s in named] == ["172.18.0.4:6006", "172.18.0.5:6006", "10.0.0.9:6006"]
    assert [(s.role, s.version, s.weight, s.state) for s in named] == [
        (s.role, s.version, s.weight, s.state) for s in servers]


def test_a_name_the_lb_never_resolved_is_left_out_when_drained_and_refused_otherwise():
    drained = upstream_servers({"gone:6006": "v1.3.0"}, {"node2:6006": "v1.2.0"}, 0, out=["gone:6006"])
    assert [s.address for s in by_address_book(drained, {"node2": "172.18.0.5"}, "lb1")] == ["172.18.0.5:6006"]
    serving = upstream_servers({"gone:6006": "v1.3.0"}, {"node2:6006": "v1.2.0"}, 10)
    with pytest.raises(ValueError, match=r"^LB lb1 cannot resolve gone \(gone:6006, canary v1.3.0\)"):
        by_address_book(serving, {"node2": "172.18.0.5"}, "lb1")


def _session_split(rendered: str) -> str:
    return rendered.split('split_clients "$http_x_session_id" $voxfleet_session_pool {')[1].split("}")[0].strip()


def test_a_session_key_picks_a_version_pool_by_the_steps_share_canary_range_first():
    from canary.adapters.lb_traffic import render_traffic, role_settings

    for percent in (10, 50):
        servers = upstream_servers({"c1:6006": "v1.3.0"}, {"s1:6006": "v1.2.0", "s2:6006": "v1.2.0"}, percent)
        rendered = render_traffic(role_settings({}), servers, percent)
        assert _session_split(rendered) == f"{percent}% tts_api_retry_canary;\n    * tts_api_retry_stable;"
        weights = {s.address: s.weight for s in servers}
        stable_pool = rendered.split("upstream tts_api_retry_stable {")[1].split("}")[0]
        assert f"server s1:6006 weight={weights['s1:6006']} " in stable_pool  # capacity within a version
    for percent in (0, 100):  # one version serving: every server by weight
        servers = upstream_servers({"c1:6006": "v1.3.0"}, {"s1:6006": "v1.2.0"}, percent)
        assert _session_split(render_traffic(role_settings({}), servers, percent)) == "* tts_api;"
