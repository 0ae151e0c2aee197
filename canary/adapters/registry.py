"""Read-only client of a Docker registry (HTTP API v2): which versions exist, and their digests."""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Collection
from dataclasses import dataclass
from email.message import Message

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
])
_SEMVER = re.compile(r"^v(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?$")


class RegistryError(RuntimeError):
    """The registry could not be reached or answered an error; names the registry."""


@dataclass(frozen=True)
class ImageVersion:
    version: str
    digest: str


def version_key(version: str) -> tuple:
    """Sort key for v1.2.3 / v1.2.3-rc.1 tags; a pre-release sorts before its release."""
    match = _SEMVER.match(version)
    if not match:
        return (1, version)
    major, minor, patch, pre = match.groups()
    return (0, int(major), int(minor), int(patch), pre is None, pre or "")


def registry_url(registry: str, insecure: Collection[str] = (), credentials: bool = False) -> str:
    """The registry's base URL: HTTPS, unless the inventory marks it insecure by name
    (`tts_registry_insecure`, as docker's --insecure-registry); pure.

    `http://host:port` spelled out on an unmarked registry is allowed only without
    credentials: a password never goes over plain HTTP to a registry nobody marked."""
    scheme, sep, rest = registry.partition("://")
    name = (rest if sep else registry).rstrip("/")
    if sep and scheme == "https":
        return f"https://{name}"
    if sep and scheme != "http":
        raise RegistryError(f"registry {registry}: scheme {scheme!r} is neither https nor http")
    if name in insecure:
        return f"http://{name}"
    if sep and credentials:
        raise RegistryError(f"registry {name} is not marked insecure (tts_registry_insecure): refusing to send "
                            "its password over plain HTTP; use https://, or list it in tts_registry_insecure")
    return f"{'http' if sep else 'https'}://{name}"


def _base(registry: str, insecure: Collection[str]) -> str:
    return registry_url(registry, insecure, credentials=bool(os.environ.get("VOXFLEET_REGISTRY_USERNAME")))


def _headers() -> dict[str, str]:
    """Basic auth from the controller's environment (a CI secret), for a registry behind htpasswd."""
    headers = {"Accept": MANIFEST_TYPES}
    user = os.environ.get("VOXFLEET_REGISTRY_USERNAME", "")
    if user:
        token = f"{user}:{os.environ.get('VOXFLEET_REGISTRY_PASSWORD', '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
    return headers


class _NoCredentialsElsewhere(urllib.request.HTTPRedirectHandler):
    """Follow redirects (registries send blobs to object storage), but never carry the
    registry's credentials to another host, nor from HTTPS down to plain HTTP."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 (urllib's signature)
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        there, here = urllib.parse.urlsplit(newurl), urllib.parse.urlsplit(req.full_url)
        if new is not None and (there.netloc != here.netloc or (here.scheme, there.scheme) == ("https", "http")):
            new.remove_header("Authorization")
        return new


_opener = urllib.request.build_opener(_NoCredentialsElsewhere)


def _request(url: str, method: str = "GET") -> tuple[int, Message, bytes]:
    """(status, headers, body); headers look up names case-insensitively."""
    request = urllib.request.Request(url, method=method, headers=_headers())
    try:
        with _opener.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise RegistryError(f"registry {url.split('/v2/')[0]} is unreachable: {exc}") from exc


def tag_digest(registry: str, repository: str, tag: str, insecure: Collection[str] = ()) -> str | None:
    """The manifest digest of repository:tag, or None when the tag does not exist."""
    status, headers, _ = _request(f"{_base(registry, insecure)}/v2/{repository}/manifests/{tag}", "HEAD")
    if status == 404:
        return None
    if status != 200:
        raise RegistryError(f"registry {registry}: HEAD {repository}:{tag} answered {status}")
    return headers.get("Docker-Content-Digest")


def list_versions(registry: str, repository: str, insecure: Collection[str] = ()) -> list[ImageVersion]:
    status, _, body = _request(f"{_base(registry, insecure)}/v2/{repository}/tags/list")
    if status == 404:
        return []
    if status != 200:
        raise RegistryError(f"registry {registry}: listing {repository} answered {status}")
    tags = json.loads(body).get("tags") or []
    return [ImageVersion(tag, tag_digest(registry, repository, tag, insecure) or "")
            for tag in sorted(tags, key=version_key)]


@dataclass(frozen=True)
class ImageConfig:
    digest: str  # the config blob's digest: the image ID `docker image inspect` shows
    labels: dict[str, str]
    manifest_digest: str = ""  # what the registry calls repository@digest


def image_config(registry: str, repository: str, tag: str, insecure: Collection[str] = ()) -> ImageConfig | None:
    """repository:tag's image config (single-platform images), or None when the tag
    does not exist."""
    base = f"{_base(registry, insecure)}/v2/{repository}"
    status, headers, body = _request(f"{base}/manifests/{tag}")
    if status == 404:
        return None
    if status != 200:
        raise RegistryError(f"registry {registry}: GET {repository}:{tag} answered {status}")
    manifest_digest = headers.get("Docker-Content-Digest", "")
    manifest = json.loads(body)
    config = (manifest.get("config") or {}).get("digest")
    if not config:
        raise RegistryError(f"registry {registry}: {repository}:{tag} is a multi-platform index; "
                            "voxfleet publishes single-platform images")
    status, _, blob = _request(f"{base}/blobs/{config}")
    if status != 200:
        raise RegistryError(f"registry {registry}: config blob {config} of {repository}:{tag} answered {status}")
    return ImageConfig(config, dict((json.loads(blob).get("config") or {}).get("Labels") or {}), manifest_digest)
