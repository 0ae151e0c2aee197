"""The TTS inference service: engines, HTTP API, Gradio UI, metrics (see README)."""
