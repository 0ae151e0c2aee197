from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.server_process import ServerProcess


@pytest.fixture(scope="session")
def start_server(model_dirs: dict[str, Path]) -> Iterator:
    """Factory: start_server(model_key, **env) -> a listening ServerProcess; all stopped at the end."""
    started: list[ServerProcess] = []

    def start(model: str, wait: str = "ready", **env: str) -> ServerProcess:
        server = ServerProcess(model_dirs[model], env=env).start()
        started.append(server)
        server.wait_ready() if wait == "ready" else server.wait_listening()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server(start_server) -> ServerProcess:
    """v1.3.0 with the Gradio UI, the way the image runs it."""
    return start_server("v1.3.0", IMAGE_TAG="registry.local/tts:v1.3.0", GIT_REVISION="abc1234")
