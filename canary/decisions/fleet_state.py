"""What runs on each host, as the hosts report it, and where a host contradicts itself;
what an image says of itself in the registry (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ImageLabels:
    model_version: str = ""  # the model version baked in (io.voxfleet.model.version)
    revision: str = ""  # the source revision it was built from (org.opencontainers.image.revision)


@dataclass(frozen=True)
class NodeState:
    host: str
    version: str | None
    image: str | None
    image_digest: str | None
    model_sha256: str | None
    git_revision: str | None
    container_state: str | None
    health: str | None
    started_at: str | None
    gpus: int
    previous_image: str | None
    served: dict[str, Any] | None = None  # the service's own /version answer (None: not asked)

    @classmethod
    def from_report(cls, host: str, report: dict[str, Any], served: dict[str, Any] | None = None) -> NodeState:
        def text(key: str) -> str | None:
            value = report.get(key)
            return str(value) if value not in (None, "") else None

        gpus = report.get("gpus") or 0
        return cls(host, text("version"), text("image"), text("image_digest"), text("model_sha256"),
                   text("git_revision"), text("container_state"), text("health"), text("started_at"),
                   int(gpus) if str(gpus).isdigit() else 0, text("previous_image"), served)

    def disagreements(self) -> list[str]:
        """Where the service's /version contradicts the image labels (a mixed-up deploy)."""
        if not self.served or "error" in self.served:
            return []
        pairs = [("version", self.version, self.served.get("model_version")),
                 ("git revision", self.git_revision, self.served.get("git_revision"))]
        if self.served.get("model_source") != "uri":  # a fetched model is not the one the label names
            pairs.append(("model sha256", self.model_sha256, self.served.get("model_sha256")))
        return [f"{what}: labels say {label}, /version says {said}" for what, label, said in pairs
                if label and said and label != said]



def fleet_rows(states: dict[str, NodeState], hosts: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for host in hosts:
        state = states.get(host)
        if state is None:
            out.append({"host": host, "problem": "unreachable or unreadable"})
            continue
        served = state.served or {}
        problems = state.disagreements()
        if state.container_state == "running" and "error" in served:
            problems.append(f"/version did not answer: {served['error']}")
        out.append({"host": host, "version": state.version, "image_digest": state.image_digest,
                    "git_revision": state.git_revision,
                    "model_sha256": served.get("model_sha256") or state.model_sha256,
                    "model_source": served.get("model_source"),
                    "started_at": state.started_at, "container": state.container_state, "health": state.health,
                    "served_version": served.get("model_version"), "problem": "; ".join(problems) or None})
    return out
