"""A hostile client: a steady stream of input the service must refuse with a 4xx.

Each body once made the server answer 500, crash its parser, or queue minutes of audio
(issue 11). Sent through the LB while the fleet serves real users and a rollout judges a
canary: no answer may be a 5xx, and the LB must never take a server out for them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx

from canary.devtools.loadgen import closed_unanswered

_SPEECH = '{{"model": "tts-1", "voice": "alloy", "input": {text}{extra}}}'


def _speech(text: str, extra: str = "") -> bytes:
    return _SPEECH.format(text=text, extra=extra).encode()


# (what it is, body, content type)
CORPUS: list[tuple[str, bytes, str]] = [
    ("punctuation only", _speech('"..."'), "application/json"),
    ("a lone letter the voice lacks", _speech('"\\u00f1"'), "application/json"),
    ("Cyrillic", _speech('"\\u041f\\u0440\\u0438\\u0432\\u0435\\u0442"'), "application/json"),
    ("Thai", _speech('"\\u0e2a\\u0e27\\u0e31\\u0e2a\\u0e14\\u0e35"'), "application/json"),
    ("emoji only", _speech('"\\ud83d\\ude00\\ud83d\\ude00"'), "application/json"),
    ("control characters", _speech('"\\u0000\\u0007\\u001b"'), "application/json"),
    ("a speed past float range", _speech('"hello"', ', "speed": 1' + "0" * 400), "application/json"),
    ("an integer of 5,000 digits", _speech('"hello"', ', "speed": ' + "9" * 5000), "application/json"),
    ("JSON nested 5,000 deep", b"[" * 5000 + b"]" * 5000, "application/json"),
    ("50 minutes of audio", _speech('"' + "word " * 800 + '"', ', "speed": 0.25'), "application/json"),
    ("an unknown voice", b'{"model": "tts-1", "voice": "nobody", "input": "hello"}', "application/json"),
    ("not JSON", b"input=hello", "application/json"),
    ("the wrong content type", _speech('"hello"'), "text/plain"),
    ("an empty body", b"", "application/json"),
]


class HostileClient:
    """Sends the corpus round and round at `rps` to `base_url`/v1/audio/speech, in a thread."""

    def __init__(self, base_url: str, rps: float = 20.0) -> None:
        self.url, self.interval = base_url.rstrip("/") + "/v1/audio/speech", 1.0 / rps
        self.statuses: Counter[int] = Counter()
        self.server_errors: list[str] = []  # "what: status body" for every 5xx or transport error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hostile-client", daemon=True)

    def __enter__(self) -> HostileClient:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            i, next_at = 0, time.monotonic()
            while not self._stop.is_set():
                what, body, content_type = CORPUS[i % len(CORPUS)]
                i += 1
                self._send(client, what, body, content_type)
                next_at += self.interval
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _send(self, client: httpx.Client, what: str, body: bytes, content_type: str) -> None:
        for attempt in (1, 2):
            try:
                if attempt == 1:
                    answer = client.post(self.url, content=body, headers={"Content-Type": content_type})
                else:  # on a new connection (see LoadGenerator._one)
                    with httpx.Client(timeout=30) as fresh:
                        answer = fresh.post(self.url, content=body, headers={"Content-Type": content_type})
            except httpx.HTTPError as exc:
                if attempt == 1 and closed_unanswered(exc):  # sent again once, as client libraries do
                    continue
                self.server_errors.append(f"{what}: {type(exc).__name__}: {exc}")
            else:
                self.statuses[answer.status_code] += 1
                if answer.status_code >= 500:
                    self.server_errors.append(f"{what}: {answer.status_code} {answer.text[:200]}")
            return

    def summary(self) -> str:
        return f"hostile client: {sum(self.statuses.values())} requests, statuses {dict(self.statuses)}"
