"""Rollout notices to a webhook (Slack-compatible JSON: `{"text": ..., "attachments": ...}`).

Sending happens on a background thread with a short, bounded retry, so a slow or
dead webhook never delays the controller, least of all a roll back. Failures are
logged, not raised. The URL comes from policy (`notify_url`) or the environment
(`VOXFLEET_NOTIFY_URL`); no URL means no notices. The URL is a credential (its path
holds the webhook's token): only its redacted form is ever logged or raised.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from canary.decisions.redact import is_redacted, redact_url

log = logging.getLogger("voxfleet.notify")


@dataclass(frozen=True)
class Notice:
    kind: str  # started | step_passed | paused | inconclusive | rolled_back | succeeded | failed
    rollout_id: str
    version: str
    text: str
    fields: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "attachments": [{"fallback": self.text, "fields": [
                {"title": k, "value": str(v), "short": len(str(v)) < 40} for k, v in self.fields.items()]}],
            "voxfleet": {"kind": self.kind, "rollout_id": self.rollout_id, "version": self.version, **self.fields},
        }


class NullNotifier:
    def notify(self, notice: Notice) -> None:
        pass

    def flush(self, timeout_s: float = 0.0) -> None:
        pass


class WebhookNotifier:
    def __init__(self, url: str, timeout_s: float = 3.0, attempts: int = 3, backoff_s: float = 0.5) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"notify URL must be http(s), got {redact_url(url)!r}")
        self.url, self.timeout_s, self.attempts, self.backoff_s = url, timeout_s, attempts, backoff_s
        self._queue: queue.Queue[Notice] = queue.Queue(maxsize=1000)
        self.sent: list[Notice] = []
        self.failed: list[tuple[Notice, str]] = []
        threading.Thread(target=self._run, name="notify", daemon=True).start()
        # Any verb may queue a notice and return at once (start --detach, pause, abort):
        # the interpreter's exit waits, bounded, for the sender.
        atexit.register(self.flush)

    def notify(self, notice: Notice) -> None:
        try:
            self._queue.put_nowait(notice)
        except queue.Full:
            log.warning("notice dropped, queue full: %s", notice.text)

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait (bounded) for queued notices to be sent or given up on: at exit."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)

    def _run(self) -> None:
        while True:
            notice = self._queue.get()
            try:
                self._send(notice)
            finally:
                self._queue.task_done()

    def _send(self, notice: Notice) -> None:
        body = json.dumps(notice.payload()).encode()
        error = ""
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    if 200 <= response.status < 300:
                        self.sent.append(notice)
                        return
                    error = f"HTTP {response.status}"
            except (urllib.error.URLError, OSError) as exc:
                error = str(exc)
            time.sleep(self.backoff_s * attempt)
        self.failed.append((notice, error))
        log.warning("webhook %s failed after %d attempts (%s): %s", redact_url(self.url), self.attempts,
                    error.replace(self.url, redact_url(self.url)), notice.text)


def notifier_for(policy_url: str) -> WebhookNotifier | NullNotifier:
    """A redacted URL (what the state store keeps) is no address: the environment's, if any."""
    url = policy_url if policy_url and not is_redacted(policy_url) else os.environ.get("VOXFLEET_NOTIFY_URL", "")
    return WebhookNotifier(url) if url else NullNotifier()
