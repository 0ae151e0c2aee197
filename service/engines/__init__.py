"""Speech engines behind one interface (`base.Engine`), chosen by the manifest's `engine`."""

from __future__ import annotations

from service.engines.base import Engine, EngineError, EngineInfo
from service.model_dir import ModelManifest

ENGINE_NAMES = ("demo", "voxcpm")


def create_engine(manifest: ModelManifest, device: str | None = None) -> Engine:
    """Instantiate (without loading) the engine the manifest names, for `device` (cuda:N,
    cpu; None: the engine's choice)."""
    if manifest.engine == "demo":
        from service.engines.demo import DemoEngine

        return DemoEngine(manifest)  # the CPU only
    if manifest.engine == "voxcpm":
        from service.engines.voxcpm import VoxCPMEngine

        return VoxCPMEngine(manifest, device)
    raise EngineError(
        f"{manifest.path('manifest.json')}: unknown engine {manifest.engine!r} "
        f"(known: {', '.join(ENGINE_NAMES)})"
    )


__all__ = ["Engine", "EngineError", "EngineInfo", "ENGINE_NAMES", "create_engine"]
