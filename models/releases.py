"""The demo model's releases and its test-only broken variants.

A release is a seed plus the voice character of that version. Two builds of the same
release are bit-identical. Variants derive from a release and are marked
`shipped: false` in their manifest so release tooling refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class RecipeError(ValueError):
    """Unknown release or variant."""

VOICE_TABLE = {  # voice: (pitch scale, formant scale); the OpenAI voice names
    "alloy": (1.0, 1.0), "echo": (0.8, 0.95), "fable": (1.1, 1.02),
    "onyx": (0.7, 0.9), "nova": (1.3, 1.1), "shimmer": (1.45, 1.12),
}


@dataclass(frozen=True)
class Release:
    version: str
    seed: int
    config: dict[str, Any] = field(default_factory=dict)


RELEASES: dict[str, Release] = {
    "v1.2.0": Release("v1.2.0", seed=1200, config={
        "base_f0": 118.0, "formant_scale": 1.0, "chars_per_second": 13.0,
        "breathiness": 0.04, "target_rms_db": -21.0,
    }),
    "v1.3.0": Release("v1.3.0", seed=1300, config={
        "base_f0": 142.0, "formant_scale": 1.06, "chars_per_second": 11.5,
        "breathiness": 0.06, "target_rms_db": -19.0,
    }),
    # The release pipeline's end-to-end test ships this one (a tag nothing else publishes).
    "v1.4.0": Release("v1.4.0", seed=1400, config={
        "base_f0": 131.0, "formant_scale": 1.03, "chars_per_second": 12.2,
        "breathiness": 0.05, "target_rms_db": -20.0,
    }),
}

# name -> (config overrides, output gain, poison a weight with NaN)
VARIANTS: dict[str, tuple[dict[str, Any], float, bool]] = {
    "silent": ({}, 0.0, False),
    "nan": ({}, 1.0, True),
    "slow": ({"refine_passes": 40}, 1.0, False),
    # renders every answer twice: half the throughput, twice the latency, nothing else wrong
    "halfspeed": ({"refine_passes": 1}, 1.0, False),
    "flaky": ({"fail_share": 0.3, "fail_after": 9}, 1.0, False),
    # speaks through its warm-up, then every answer is silence (the hard checks' 500)
    "mute": ({"fail_share": 1.0, "fail_after": 1, "fail_mode": "silence"}, 1.0, False),
}
