"""Credentials never shown: a webhook URL carries its token in its path (a Slack hook
is https://hooks.slack.com/services/T…/B…/secret), so everything that stores, logs or
prints one uses its redacted form, scheme and host only (pure)."""

from __future__ import annotations

REDACTED = "***"


def redact_url(url: str) -> str:
    """`https://hooks.slack.com/services/T0/B0/x` → `https://hooks.slack.com/***`; user
    info, path, query and fragment dropped; "" stays "" (no URL)."""
    if not url:
        return ""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.isalpha():
        return REDACTED
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rpartition("@")[2]
    return f"{scheme}://{host}/{REDACTED}" if host else REDACTED


def is_redacted(url: str) -> bool:
    """A stored URL that is only the redacted form (it cannot be sent to)."""
    return url == REDACTED or url.endswith("/" + REDACTED)
