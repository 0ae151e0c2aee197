"""A page rendered by a real browser: Debian's Chromium, headless."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

# Screenshots and the like that tests keep for people to look at (ignored by git).
ARTIFACTS = Path(__file__).resolve().parents[1] / "build" / "test-artifacts"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("chromium is not installed (Debian: apt-get install chromium); .ci/run installs it")
    return found


def render(page: Path, screenshot: Path, width: int = 1000, height: int = 1600) -> str:
    """The page's DOM after Chromium loaded and laid it out; a screenshot of it at `screenshot`."""
    common = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              f"--window-size={width},{height}"]
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    shot = subprocess.run([*common, f"--screenshot={screenshot}", page.resolve().as_uri()], capture_output=True,
                          text=True, timeout=120)
    assert shot.returncode == 0 and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]
    dom = subprocess.run([*common, "--dump-dom", page.resolve().as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout
