"""How a streamed speech answer is framed on the wire.

`stream_format: "audio"` sends the audio itself as it is made: raw 16-bit PCM, or WAV
behind a header whose lengths say "unknown" (0xFFFFFFFF, as streaming WAV writers do;
players read to the end of the stream). `stream_format: "sse"` sends OpenAI's events:
`speech.audio.delta` with base64 audio (the same bytes as the raw stream, so a WAV's header
rides in the first delta), then `speech.audio.done` with the usage, or `error` when the
synthesis fails after its first audio left.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass

import numpy as np

from service.encoding import pcm16

SSE_MEDIA_TYPE = "text/event-stream"
UNKNOWN_LENGTH = 0xFFFFFFFF
_MEDIA_TYPES = {"pcm": "audio/pcm", "wav": "audio/wav"}


def wav_stream_header(sample_rate: int) -> bytes:
    """A 44-byte PCM WAV header (mono, 16-bit) whose RIFF and data lengths are unknown."""
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", UNKNOWN_LENGTH, b"WAVE", b"fmt ", 16, 1, 1,
                       sample_rate, sample_rate * 2, 2, 16, b"data", UNKNOWN_LENGTH)


def _event(payload: dict[str, object]) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


@dataclass
class StreamFraming:
    """The bytes of one streamed answer: `opening(first)`, `piece(audio)` for each later
    piece, then `closing(...)` or `failure(...)`."""

    response_format: str  # "pcm" or "wav" (speech_request.STREAMED_FORMATS)
    stream_format: str  # "audio" or "sse"
    sample_rate: int
    pieces: int = 0

    @property
    def media_type(self) -> str:
        return SSE_MEDIA_TYPE if self.stream_format == "sse" else _MEDIA_TYPES[self.response_format]

    def _framed(self, audio: bytes) -> bytes:
        self.pieces += 1
        if self.stream_format == "sse":
            return _event({"type": "speech.audio.delta", "audio": base64.b64encode(audio).decode("ascii")})
        return audio

    def opening(self, first: np.ndarray) -> bytes:
        header = wav_stream_header(self.sample_rate) if self.response_format == "wav" else b""
        return self._framed(header + pcm16(first))

    def piece(self, audio: np.ndarray) -> bytes:
        return self._framed(pcm16(audio))

    def closing(self, input_chars: int) -> bytes:
        """The end of a stream that was whole. Usage counts the input's characters in and
        the audio pieces out (this server has no tokens to count)."""
        if self.stream_format != "sse":
            return b""
        usage = {"input_tokens": input_chars, "output_tokens": self.pieces,
                 "total_tokens": input_chars + self.pieces}
        return _event({"type": "speech.audio.done", "usage": usage})

    def failure(self, message: str, code: str) -> bytes | None:
        """What tells the client the stream is cut short: an `error` event; None for raw
        audio, whose only way to say it is to end the response without its last chunk."""
        if self.stream_format != "sse":
            return None
        return _event({"type": "error", "error": {"message": message, "type": "server_error", "code": code}})
