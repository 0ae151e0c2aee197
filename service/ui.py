"""The Gradio web UI, served by the FastAPI app on the same port.

It validates with the same rules as the API and synthesizes through the same
runtime (and so the same inference thread and queue). Gradio's own queue is
bounded too, so a crowd in the browser cannot grow memory without limit.

It is built on its first visit (see UiOnFirstVisit), not at start: importing Gradio
and building the page is most of a CPU-bound host's start-up (6 of 10 s at 0.4 CPU),
and a host is ready when its model speaks, not when its web page is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from service.runtime import BadAudioError, ModelRuntime, NotReadyError
from service.speech_request import MAX_SPEED, MIN_SPEED, RequestError, RequestRules, parse_speech_request
from service.worker import QueueFullError, QueueTimeoutError

if TYPE_CHECKING:
    import gradio as gr

log = logging.getLogger("service.ui")
UPLOAD_LIMIT_BYTES = 1
STREAM_PLAYER = Path(__file__).with_name("static") / "stream_player.js"


def build_ui(runtime: ModelRuntime) -> gr.Blocks:
    import gradio as gr

    manifest, settings = runtime.manifest, runtime.settings
    rules = RequestRules((manifest.name,), manifest.voices, settings.max_input_chars, settings.max_body_bytes,
                         runtime.engine.text_support(), settings.chunk_chars,
                         runtime.engine.estimate_audio_s, settings.max_audio_s)

    def synthesize(text: str, voice: str, speed: float) -> tuple[int, np.ndarray]:
        body = json.dumps({"model": manifest.name, "input": text, "voice": voice,
                           "speed": speed, "response_format": "wav"}).encode()
        try:
            request = parse_speech_request(body, "application/json", rules)
            result = runtime.synthesize(request.input, request.voice, request.speed)
        except RequestError as exc:
            raise gr.Error(f"{exc.param}: {exc.message}", print_exception=False) from None
        except (NotReadyError, QueueFullError, QueueTimeoutError, BadAudioError) as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        pcm = (np.clip(result.audio, -1.0, 1.0) * 32767).astype(np.int16)
        return result.sample_rate, pcm

    # Each answer is written to Gradio's cache (/tmp, a small tmpfs in the container): files
    # older than ui_cache_max_age_s go, checked as often.
    cache = (settings.ui_cache_max_age_s, settings.ui_cache_max_age_s)
    with gr.Blocks(title=f"voxfleet TTS {manifest.version}", delete_cache=cache) as ui:
        gr.Markdown(f"## voxfleet text to speech\nModel **{manifest.name} {manifest.version}** "
                    f"(`{manifest.sha256[:12]}`), engine {manifest.engine}")
        text = gr.Textbox(label="Text", lines=4, max_length=settings.max_input_chars,
                          placeholder="Type something to say…")
        with gr.Row():
            voice = gr.Dropdown(choices=list(manifest.voices), value=manifest.voices[0], label="Voice")
            speed = gr.Slider(MIN_SPEED, MAX_SPEED, value=1.0, step=0.05, label="Speed")
        with gr.Row():
            button = gr.Button("Speak", variant="primary")
            # Played in the browser as it arrives (service/static/stream_player.js), from the
            # speech API: the first sentence is heard while the rest is still being made.
            streamed = gr.Button("Speak as it is made")
        audio = gr.Audio(label="Speech", type="numpy", format="wav", interactive=False)
        stream_status = gr.Markdown(elem_id="voxfleet-stream-status")
        button.click(synthesize, inputs=[text, voice, speed], outputs=audio, api_name="synthesize")
        streamed.click(None, inputs=[text, voice, speed], outputs=stream_status,
                       js=f"(text, voice, speed) => window.voxfleetSpeakStreamed({json.dumps(manifest.name)}, "
                          "text, voice, speed)")
    ui.queue(max_size=settings.ui_queue, default_concurrency_limit=1)
    return ui


def ui_app(runtime: ModelRuntime, path: str) -> FastAPI:
    """An app serving the UI at `path` (its full path: requests reach it unchanged)."""
    import gradio as gr

    # The UI's only input is text: Gradio's upload route takes nothing (413).
    return gr.mount_gradio_app(FastAPI(openapi_url=None, docs_url=None, redoc_url=None), build_ui(runtime),
                               path=path, footer_links=["api"], max_file_size=UPLOAD_LIMIT_BYTES,
                               head=f"<script>{STREAM_PLAYER.read_text()}</script>")


class UiOnFirstVisit:
    """The UI at `path`, built when its first request comes (the others wait for it).
    `close()` (at shutdown) ends the UI's own lifespan (Gradio's queue) if it was built."""

    def __init__(self, runtime: ModelRuntime, path: str) -> None:
        self.runtime, self.path = runtime, path
        self.app: ASGIApp | None = None
        self._lock = asyncio.Lock()
        self._lifespan = contextlib.AsyncExitStack()

    def serves(self, scope: Scope) -> bool:
        path = scope.get("path", "") if scope["type"] in ("http", "websocket") else ""
        return path == self.path or path.startswith(self.path + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = await self._built()
        if app is None:
            await _unavailable(scope, receive, send)
        else:
            await app(scope, receive, send)

    async def _built(self) -> ASGIApp | None:
        async with self._lock:
            if self.app is None:
                try:
                    app = await asyncio.to_thread(ui_app, self.runtime, self.path)
                    await self._lifespan.enter_async_context(app.router.lifespan_context(app))
                except Exception:  # our bug, not the visitor's: logged, a 503, tried again on the next visit
                    log.exception("the web UI could not be built")
                    return None
                self.app = app
                log.info("web UI built at %s", self.path)
        return self.app

    async def close(self) -> None:
        await self._lifespan.aclose()


class UiRoutes:
    """ASGI middleware: requests under the UI's path go to it, the rest to the wrapped app."""

    def __init__(self, app: ASGIApp, ui: UiOnFirstVisit) -> None:
        self.app, self.ui = app, ui

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await (self.ui if self.ui.serves(scope) else self.app)(scope, receive, send)


async def _unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        await send({"type": "websocket.close", "code": 1011})
        return
    response = PlainTextResponse("the web UI could not be built; the server log says why", status_code=503)
    await response(scope, receive, send)
