"""Golden prompts: a fixed set of texts a version must speak well before users hear it.

`python -m service.golden [--url http://127.0.0.1:6006]` synthesizes each prompt
through the server's own API and prints one JSON report per prompt (audio checks,
latency, real-time factor). The rollout's warm-up gate runs it inside the canary's
and a stable host's containers and compares the two; the release gate reuses it.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import soundfile as sf

from service.audio_checks import check_audio

GOLDEN_PROMPTS: tuple[tuple[str, str], ...] = (
    ("short", "Hello."),
    ("english", "The new voice is ready. Please listen carefully and tell us what you think."),
    ("numbers", "Order 4521 ships on March 3rd, 2026, and costs 19 dollars and 99 cents."),
    ("chinese", "今天天气很好，我们一起去公园散步吧。"),
    ("long", " ".join([
        "A release should be as dull as a web deploy.",
        "First one host speaks the new voice, then a tenth of the traffic hears it,",
        "and only when the numbers agree does the rest of the fleet follow.",
        "If anything sounds wrong, the old voice comes back on its own,",
        "before most listeners ever notice that something changed at all.",
    ])),
)


def probe(url: str, text: str, voice: str, timeout_s: float) -> dict[str, Any]:
    body = json.dumps({"model": "tts-1", "input": text, "voice": voice, "response_format": "wav"}).encode()
    request = urllib.request.Request(f"{url}/v1/audio/speech", data=body,
                                     headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            content, version = response.read(), response.headers.get("X-Model-Version", "")
    except urllib.error.HTTPError as exc:
        return {"passed": False, "status": exc.code, "reason": exc.read().decode(errors="replace")[:300]}
    except (urllib.error.URLError, OSError) as exc:
        return {"passed": False, "status": 0, "reason": f"no response: {exc}"}
    latency = time.perf_counter() - started
    audio, rate = sf.read(io.BytesIO(content), dtype="float32")
    report = check_audio(audio, rate, text)
    duration = report.duration_s
    return {
        "passed": report.passed, "status": 200, "version": version, "reason": report.reason(),
        "duration_s": round(duration, 4), "latency_s": round(latency, 4),
        "rtf": round(latency / duration, 4) if duration else None,
        "seconds_per_char": round(report.value("seconds_per_char"), 5) if report.passed else None,
        "rms_dbfs": round(report.value("rms_dbfs"), 3) if report.passed else None,
        "silence_share": round(report.value("silence_share"), 4) if report.passed else None,
    }


def model_voice(url: str, timeout_s: float = 30.0) -> str:
    """The voice the model at `url` names first (its GET /version): probes speak with the
    model's own voices, never a name assumed for every model."""
    try:
        with urllib.request.urlopen(f"{url}/version", timeout=timeout_s) as response:
            voices = json.load(response).get("voices") or []
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise RuntimeError(f"{url}/version did not say the model's voices: {exc}") from exc
    if not voices:
        raise RuntimeError(f"{url}/version lists no voices")
    return str(voices[0])


def run_golden(url: str, voice: str | None = None, timeout_s: float = 120.0) -> list[dict[str, Any]]:
    """Every golden prompt in `voice` (default: the model's first voice)."""
    voice = voice or model_voice(url)
    return [dict(name=name, chars=len(text), **probe(url, text, voice, timeout_s)) for name, text in GOLDEN_PROMPTS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.golden")
    parser.add_argument("--url", default="http://127.0.0.1:6006")
    parser.add_argument("--voice", help="default: the model's first voice (GET /version)")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    reports = run_golden(args.url.rstrip("/"), args.voice, args.timeout)
    json.dump(reports, sys.stdout)
    sys.stdout.write("\n")
    return 0 if all(r["passed"] for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
