"""`python -m canary` is the `rollout` command."""

import sys

from canary.cli import main

sys.exit(main())
