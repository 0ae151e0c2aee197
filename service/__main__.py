"""Run the TTS server: `python -m service` (settings from the environment, see config.py)."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no outbound calls from the UI


def main() -> int:
    import uvicorn

    from service.api import create_app
    from service.config import Settings, SettingsError
    from service.engines import EngineError
    from service.http_protocol import with_read_timeout
    from service.model_dir import ModelDirError
    from service.model_source import ModelSourceError, resolve_model
    from service.runtime import ModelRuntime

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
        if settings.torch_threads:  # a CPU quota: as many threads as it pays for (one for a held worker)
            import torch

            torch.set_num_threads(settings.torch_threads)
        manifest = resolve_model(settings)  # the baked MODEL_DIR, or MODEL_URI fetched into the cache
        settings = dataclasses.replace(settings, model_dir=manifest.directory)
        runtime = ModelRuntime(settings, manifest=manifest)
    except (SettingsError, ModelDirError, ModelSourceError, EngineError) as exc:
        print(f"error: cannot start: {exc}", file=sys.stderr)
        return 2
    ui = os.environ.get("TTS_UI", "1") not in ("0", "false", "no")
    app = create_app(runtime, with_ui=ui)
    logging.getLogger("service").info("serving %s %s (%s) on %s:%d", runtime.manifest.name,
                                      runtime.manifest.version, runtime.manifest.sha256[:12],
                                      settings.host, settings.port)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", timeout_graceful_shutdown=10,
                http=with_read_timeout(settings.read_timeout_s), timeout_keep_alive=settings.keep_alive_s)
    leave_without_teardown()
    return 0


def leave_without_teardown() -> None:
    """Exit once the server has drained: tearing the interpreter down (torch and the model
    with it) costs about a second of CPU for nothing, more than two at a sandbox host's
    0.4 CPU, and every deploy waits for it to stop the old container. Only a container's
    PID 1 gets here: elsewhere uvicorn ends the process by re-raising the stop signal."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
