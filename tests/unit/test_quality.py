"""Golden-prompt comparison (pure), shared by the warm-up gate and the release gate."""

from __future__ import annotations

from canary.decisions.quality import QualityTolerances, compare

RELEASE = QualityTolerances(max_latency_ratio=2.0, max_rtf=1.0)


def prompt(name: str, latency: float = 0.2, spc: float = 0.08, level: float = -20.0, passed: bool = True,
           rtf: float = 0.05) -> dict:
    return {"name": name, "passed": passed, "reason": "" if passed else "silence_share=1 (limit <= 0.85)",
            "seconds_per_char": spc, "rms_dbfs": level, "latency_s": latency, "rtf": rtf}


STABLE = [prompt("short", 0.02), prompt("english", 0.2), prompt("long", 0.6)]


def test_a_healthy_version_passes_even_with_one_noisy_short_prompt():
    new = [prompt("short", 0.05), prompt("english", 0.2), prompt("long", 0.6)]  # short: 2.5× alone
    assert compare(new, STABLE, RELEASE).passed


def test_slower_over_all_prompts_fails_the_release_gate_but_not_the_warmup_gate():
    slow = [prompt(p["name"], p["latency_s"] * 3) for p in STABLE]
    result = compare(slow, STABLE, RELEASE)
    assert not result.passed and "latency over the golden prompts 3.00× stable's" in result.summary()
    assert compare(slow, STABLE).passed  # the warm-up gate does not judge latency


def test_hard_checks_voice_and_speed_limits_are_each_named():
    assert "prompt 'short': silence_share" in compare([prompt("short", passed=False)], STABLE).summary()
    assert "duration per character 2.50×" in compare([prompt("short", 0.02, spc=0.2)], STABLE).summary()
    assert "level +12.0 dB" in compare([prompt("short", 0.02, level=-8.0)], STABLE).summary()
    assert "real-time factor 1.50 > 1.0" in compare([prompt("short", 0.02, rtf=1.5)], STABLE, RELEASE).summary()
    assert "no golden prompt reports" in compare([], STABLE).summary()


def test_a_first_release_has_hard_checks_only():
    assert compare([prompt("short", 9.0)], None, RELEASE).passed
    assert not compare([prompt("short", passed=False)], None, RELEASE).passed
