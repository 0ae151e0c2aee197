"""Peak memory and time of the largest request the service accepts (the audio cap's worst case).

For each speed, builds the longest English text whose predicted audio is still under
TTS_MAX_AUDIO_S (the request rules' own prediction), then synthesizes it in a fresh
process through ModelRuntime (chunking, checks, concatenation, as the API does) and
reports audio seconds, synthesis seconds and the process's peak RSS (ru_maxrss), next to
the RSS after warm-up. It asserts nothing.

    .venv/bin/python bench/request_cost.py --model-dir build/models/v1.3.0
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

# bench/service.py would shadow the `service` package: import it from the repository root.
sys.path[:] = [p for p in sys.path if Path(p).resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SENTENCE = "Every host gets the new voice only after the canary has proven itself. "


def longest_accepted(model_dir: Path, speed: float, max_audio_s: float, chunk_chars: int) -> str:
    from service.audio_budget import predicted_audio_s
    from service.engines import create_engine
    from service.model_dir import verify_model_dir

    engine = create_engine(verify_model_dir(model_dir), "cpu")
    text = ""
    while len(text) + len(SENTENCE) <= 4096:
        longer = (text + SENTENCE).strip()
        if predicted_audio_s(longer, speed, engine.estimate_audio_s, chunk_chars) > max_audio_s:
            break
        text += SENTENCE
    return text.strip()


def measure(model_dir: Path, speed: float) -> dict[str, float]:
    from service.config import Settings
    from service.runtime import ModelRuntime

    runtime = ModelRuntime(Settings(model_dir=model_dir, workers=1))
    for future in runtime.start():
        future.result(timeout=300)
    text = longest_accepted(model_dir, speed, runtime.settings.max_audio_s, runtime.settings.chunk_chars)
    warm_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    result = runtime.submit(text, "alloy", speed).result(timeout=900)
    elapsed = time.perf_counter() - started
    runtime.stop()
    return {"speed": speed, "chars": len(text), "audio_s": round(result.duration_s, 1), "synth_s": round(elapsed, 1),
            "rss_after_warmup_mb": round(warm_mb), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("build/models/v1.3.0"))
    parser.add_argument("--speeds", default="1.0,0.25")
    parser.add_argument("--one", type=float, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.model_dir, args.one)))
        return
    for speed in args.speeds.split(","):
        out = subprocess.run([sys.executable, __file__, "--model-dir", str(args.model_dir), "--one", speed],
                             capture_output=True, text=True, check=True)
        print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
