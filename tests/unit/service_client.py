"""The real service in-process for unit tests: a TestClient on a runtime whose model is
loaded and warmed up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from service.api import create_app
from service.config import Settings
from service.runtime import ModelRuntime


@contextmanager
def ready_client(model_dir: Path, with_ui: bool = False, **client_options: Any
                 ) -> Iterator[tuple[TestClient, ModelRuntime]]:
    runtime = ModelRuntime(Settings(model_dir=model_dir, workers=1))
    with TestClient(create_app(runtime, with_ui=with_ui), **client_options) as client:
        deadline = time.monotonic() + 120
        while not runtime.ready and time.monotonic() < deadline:  # the lifespan loads and warms up
            time.sleep(0.05)
        assert runtime.ready, runtime.readiness()
        yield client, runtime
