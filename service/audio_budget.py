"""How much audio a request asks for, known before synthesis, and the cap on it.

The predicted length is the engine's estimate for each chunk the runtime will
synthesize, plus the silence between chunks. A request over the cap
(`TTS_MAX_AUDIO_S`) is refused with a 400 naming `speed` when the text would fit at
normal speed, else `input`. Chunks are shorter at low speed (`chunk_chars_at`), so each
engine call renders about as much audio as a full chunk at speed 1: the memory one
synthesis call needs does not grow as the speed falls.
"""

from __future__ import annotations

from collections.abc import Callable

from service.text import split_sentences

CHUNK_GAP_S = 0.12  # silence between independently synthesized chunks
MIN_CHUNK_CHARS = 20
Estimate = Callable[[str, float], float]  # (text, speed) -> seconds of audio, as the engine predicts


def chunk_chars_at(chunk_chars: int, speed: float) -> int:
    """Characters per chunk at `speed`: fewer below speed 1, so a chunk's audio stays as long."""
    return max(MIN_CHUNK_CHARS, int(chunk_chars * min(speed, 1.0)))


def predicted_audio_s(text: str, speed: float, estimate: Estimate, chunk_chars: int) -> float:
    """Seconds of audio `text` at `speed` will make: each chunk's estimate and the gaps between."""
    chunks = split_sentences(text, chunk_chars_at(chunk_chars, speed))
    return sum(estimate(chunk, speed) for chunk in chunks) + CHUNK_GAP_S * max(len(chunks) - 1, 0)


def over_budget(text: str, speed: float, estimate: Estimate, chunk_chars: int,
                max_audio_s: float) -> tuple[str, str] | None:
    """(param, message) when `text` at `speed` would make more than `max_audio_s` of audio, else None."""
    predicted = predicted_audio_s(text, speed, estimate, chunk_chars)
    if predicted <= max_audio_s:
        return None
    at_normal_speed = predicted_audio_s(text, max(speed, 1.0), estimate, chunk_chars)
    param = "speed" if at_normal_speed <= max_audio_s else "input"
    return param, (f"'input' at speed {speed:g} would be about {predicted:.0f} s of audio; the limit is "
                   f"{max_audio_s:g} s" + (" (raise 'speed' or shorten 'input')" if param == "speed"
                                          else " (shorten 'input' or split it into several requests)"))
