"""A Prometheus server's HTTP query API (`/api/v1/query`), read for the judge's evidence.

The PromQL and what its answers mean are in `canary.decisions.prometheus_evidence`; this
module only asks and reads. Anything short of a clean answer (no server, a timeout, an
error status, a PromQL error) is a `PrometheusUnavailable` naming the server and why: the
judge turns it into "inconclusive", never a pass.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from canary.decisions.prometheus_evidence import (
    RESPONSE_HISTOGRAM,
    SERVICE_HISTOGRAM,
    PrometheusDataError,
    VersionTotals,
    first_audio_query,
    latency_query,
    status_query,
    totals_from,
)

TIMEOUT_S = 10.0


class PrometheusUnavailable(RuntimeError):
    """No usable answer from the Prometheus server; the message names it."""


class PrometheusSource:
    def __init__(self, url: str, timeout_s: float = TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def query(self, promql: str, at: float) -> list[dict[str, Any]]:
        """An instant query evaluated at `at` (unix seconds): its vector result."""
        body = urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"}).encode()
        request = urllib.request.Request(f"{self.url}/api/v1/query", data=body, method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:  # Prometheus says what was wrong in its JSON body
            answer = _json_or_none(exc.read())
            if not answer:
                raise PrometheusUnavailable(f"Prometheus at {self.url}: HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:  # refused, timed out, unreadable
            raise PrometheusUnavailable(f"Prometheus at {self.url} is not reachable: {exc}") from None
        if answer.get("status") != "success":
            raise PrometheusUnavailable(f"Prometheus at {self.url} refused the query: "
                                        f"{answer.get('errorType', '?')}: {answer.get('error', '?')}")
        data = answer.get("data") or {}
        if data.get("resultType") != "vector":
            raise PrometheusUnavailable(f"Prometheus at {self.url} answered a {data.get('resultType')!r}, "
                                        "not an instant vector")
        return list(data.get("result") or [])

    def totals(self, versions: Sequence[str], since: float, until: float,
               latency_since: float | None = None) -> dict[str, VersionTotals]:
        """Each version's speech requests from `since` to `until` (unix seconds), and its
        successful answers' latency from `latency_since` (default: `since`)."""
        latency_window = until - (since if latency_since is None else latency_since)

        def histogram(query: str) -> list[dict[str, Any]]:
            return self.query(query, until) if latency_window > 0 else []

        try:
            statuses = self.query(status_query(versions, until - since), until)
            response, service = (histogram(latency_query(versions, latency_window, name))
                                 for name in (RESPONSE_HISTOGRAM, SERVICE_HISTOGRAM))
            first_audio = histogram(first_audio_query(versions, latency_window))
            return totals_from(statuses, response, versions, service, first_audio)
        except PrometheusDataError as exc:
            raise PrometheusUnavailable(f"Prometheus at {self.url}: {exc}") from None


def _json_or_none(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
