"""Container HEALTHCHECK: exit 0 only when /readyz answers 200 (the model speaks)."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    url = f"http://127.0.0.1:{os.environ.get('PORT', '6006')}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as exc:  # 503: the reason is in the body; docker keeps it
        print(f"not ready: {exc.read().decode(errors='replace')[:500]}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"not ready: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
