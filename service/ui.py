"""The Gradio web UI, mounted into the FastAPI app on the same port.

It validates with the same rules as the API and synthesizes through the same
runtime (and so the same inference thread and queue). Gradio's own queue is
bounded too, so a crowd in the browser cannot grow memory without limit.
"""

from __future__ import annotations

import json

import gradio as gr
import numpy as np
from fastapi import FastAPI

from service.runtime import BadAudioError, ModelRuntime, NotReadyError
from service.speech_request import MAX_SPEED, MIN_SPEED, RequestError, RequestRules, parse_speech_request
from service.worker import QueueFullError, QueueTimeoutError

UPLOAD_LIMIT_BYTES = 1


def build_ui(runtime: ModelRuntime) -> gr.Blocks:
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
        button = gr.Button("Speak", variant="primary")
        audio = gr.Audio(label="Speech", type="numpy", format="wav", interactive=False)
        button.click(synthesize, inputs=[text, voice, speed], outputs=audio, api_name="synthesize")
    ui.queue(max_size=settings.ui_queue, default_concurrency_limit=1)
    return ui


def mount_ui(app: FastAPI, runtime: ModelRuntime, path: str) -> FastAPI:
    # The UI's only input is text: Gradio's upload route takes nothing (413).
    return gr.mount_gradio_app(app, build_ui(runtime), path=path, footer_links=["api"], max_file_size=UPLOAD_LIMIT_BYTES)
