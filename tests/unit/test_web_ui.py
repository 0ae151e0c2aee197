"""The web UI is served on the API's port, built on its first visit: a host is ready when
its model speaks, and importing Gradio is most of a CPU-bound host's start-up."""

from __future__ import annotations

import sys

from fastapi import FastAPI

from tests.unit.service_client import ready_client


def test_ready_before_the_ui_exists_and_the_first_visit_builds_it(model_dirs):
    with ready_client(model_dirs["v1.3.0"], with_ui=True) as (client, runtime):
        assert isinstance(client.app, FastAPI)
        ui = client.app.state.ui
        assert runtime.ready and ui.app is None
        assert client.get("/readyz").status_code == 200 and ui.app is None
        page = client.get("/ui/")
        assert page.status_code == 200 and "v1.3.0" in page.text, page.text[:300]
        assert ui.app is not None and "gradio" in sys.modules
        built = ui.app
        assert client.get("/ui/config").status_code == 200 and ui.app is built  # built once
        assert client.get("/").headers.get("location", "/ui/").endswith("/ui/")
        counted = client.get("/metrics").text
        assert 'route="ui"' in counted, "UI requests are counted like every other"
