"""Which registries hear plain HTTP: only those the inventory marks insecure by name;
a password never goes over plain HTTP to any other."""

from __future__ import annotations

import pytest

from canary.adapters import registry
from canary.adapters.registry import RegistryError, registry_url
from canary.decisions.inventory import check_fleet
from canary.devtools.sandbox import SandboxSpec, inventory_document
from tests.unit.test_inventory_check import SOURCE, listing, problems

MARKED = ("voxfleet-registry:5000", "127.0.0.1:15000")


@pytest.mark.parametrize(("registry", "credentials", "url"), [
    ("registry.example.com", True, "https://registry.example.com"),
    ("voxfleet-registry:5000", True, "https://voxfleet-registry:5000"),  # a name ending -registry: not a mark
    ("other-registry:5000", False, "https://other-registry:5000"),
    ("localhost:5000", True, "https://localhost:5000"),
    ("127.0.0.1:5000", False, "https://127.0.0.1:5000"),
    ("https://registry.example.com/", True, "https://registry.example.com"),
    ("http://mirror.example:5000", False, "http://mirror.example:5000"),  # spelled out, and no password
])
def test_an_unmarked_registry_is_spoken_to_over_https(registry, credentials, url):
    assert registry_url(registry, (), credentials) == url


@pytest.mark.parametrize("registry", ["voxfleet-registry:5000", "127.0.0.1:15000", "http://127.0.0.1:15000"])
def test_a_registry_marked_insecure_by_name_is_spoken_to_over_http(registry):
    assert registry_url(registry, MARKED, credentials=True) == "http://" + registry.removeprefix("http://")


def test_a_password_over_plain_http_to_an_unmarked_registry_is_refused_naming_it():
    with pytest.raises(RegistryError) as refused:
        registry_url("http://registry.example.com:5000", MARKED, credentials=True)
    assert "registry registry.example.com:5000 is not marked insecure" in str(refused.value)
    assert "tts_registry_insecure" in str(refused.value)
    with pytest.raises(RegistryError, match="neither https nor http"):
        registry_url("ftp://registry.example.com", ())


def test_the_client_refuses_before_it_sends_anything(monkeypatch):
    monkeypatch.setenv("VOXFLEET_REGISTRY_USERNAME", "robot")
    monkeypatch.setenv("VOXFLEET_REGISTRY_PASSWORD", "hunter2")
    monkeypatch.setattr(registry, "_request", lambda *a, **k: pytest.fail("a request was sent"))
    with pytest.raises(RegistryError, match="not marked insecure"):
        registry.tag_digest("http://registry.example.com:5000", "tts", "v1.3.0")


def test_the_inventory_names_its_insecure_registries():
    data, hostvars = listing()
    for host in hostvars.values():
        host["tts_registry_insecure"] = [" voxfleet-registry:5000 ", "127.0.0.1:15000/"]
    assert check_fleet(SOURCE, data, hostvars).registry_insecure == MARKED
    assert check_fleet(SOURCE, *listing()).registry_insecure == ()
    for host in hostvars.values():
        host["tts_registry_insecure"] = "voxfleet-registry:5000"
    assert any("tts_registry_insecure must be a list" in p for p in problems(data, hostvars))


def test_the_sandbox_inventory_marks_its_registry_insecure_explicitly():
    spec = SandboxSpec()
    common = inventory_document(spec)["all"]["vars"]
    assert set(common["tts_registry_insecure"]) == {common["tts_registry"], common["tts_registry_push"]}
