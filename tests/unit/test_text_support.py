"""What text an engine can speak, decided before synthesis (service.text_support)."""

from __future__ import annotations

import pytest

from service.engines.demo import TEXT_SUPPORT as DEMO
from service.engines.voxcpm import TEXT_SUPPORT as VOXCPM
from service.text_support import refusal, script, speakable_chunks, unspeakable

# Text the demo engine used to answer with a 500 (silent audio failing the checks).
FOREIGN = [
    ("Привет, как дела?", "Cyrillic"),
    ("Γειά σου κόσμε", "Greek"),
    ("مرحبا بالعالم", "Arabic"),
    ("שלום עולם", "Hebrew"),
    ("नमस्ते दुनिया", "Devanagari"),
    ("สวัสดีชาวโลก", "Thai"),
]
NOTHING_TO_SAY = ["...", "ñ", "—", "?!", "— — —", "😀", "ñ ñ é ß"]


@pytest.mark.parametrize("text, name", FOREIGN)
def test_text_in_a_script_the_demo_does_not_speak_is_named(text, name):
    assert unspeakable(text, DEMO) == \
        f"is {name} text; this model speaks Latin-script text (English), Chinese and digits"


@pytest.mark.parametrize("text, name", FOREIGN)
def test_voxcpm_says_it_speaks_chinese_and_english(text, name):
    assert unspeakable(text, VOXCPM) == f"is {name} text; this model speaks Chinese and English (and digits)"


@pytest.mark.parametrize("text", NOTHING_TO_SAY)
def test_text_with_no_letter_or_digit_the_engine_can_say_has_nothing_to_speak(text):
    reason = unspeakable(text, DEMO)
    assert reason is not None and reason.startswith("has nothing to speak")


@pytest.mark.parametrize("text", [
    "Hello — world 😀",  # an occasional symbol is skipped
    "Hello мир, how are you?",  # mainly English: the Cyrillic word is skipped
    "Call 555 0199.",
    "12345",
    "café crème",
    "你好，世界。",
    "Hi 你好",
    "１２３",  # fullwidth digits are digits
])
def test_mixed_and_mainly_supported_text_is_spoken(text):
    assert unspeakable(text, DEMO) is None


def test_the_main_script_decides_and_ties_are_spoken():
    assert unspeakable("Привет world", DEMO) == unspeakable("Привет", DEMO)
    assert unspeakable("ab мы", DEMO) is None


def test_voxcpm_reads_latin_letters_the_demo_has_no_sound_for():
    assert unspeakable("ñ", VOXCPM) is None
    assert unspeakable("...", VOXCPM) is not None


def test_script_is_the_first_word_of_the_unicode_name_after_nfkc():
    assert [script(ch) for ch in "añЖ你1１²"] == ["LATIN", "LATIN", "CYRILLIC", "CJK", "DIGIT", "DIGIT", "DIGIT"]
    assert script("\ue000") == ""  # a private-use character has no name


def test_chunks_the_engine_cannot_speak_are_skipped():
    english, russian = "The canary is healthy. ", "Канарейка здорова и поёт. "
    text = english + russian + english
    assert unspeakable(text, DEMO) is None  # more Latin letters than Cyrillic ones
    chunks = speakable_chunks(text, DEMO, 40)
    assert chunks and all(unspeakable(chunk, DEMO) is None for chunk in chunks)
    assert not any("Канарейка" in chunk for chunk in chunks)
    assert refusal(text, DEMO, 40) is None


def test_text_with_no_speakable_chunk_is_refused_though_the_whole_looks_speakable():
    text = "ñ ñ ñ ñ ñ ñ ñ ñ ñ ñ. Жж a."  # Latin letters mostly, but only one the demo can say
    assert unspeakable(text, DEMO) is None
    assert speakable_chunks(text, DEMO, 20) == []
    reason = refusal(text, DEMO, 20)
    assert reason is not None and reason.startswith("has nothing to speak")
    assert refusal(text, DEMO, 300) is None  # in one chunk the 'a' is spoken


def test_the_runtime_speaks_the_chunks_it_can_and_skips_the_rest(model_dirs):
    from service.config import Settings
    from service.runtime import ModelRuntime

    runtime = ModelRuntime(Settings(model_dir=model_dirs["v1.3.0"], workers=1, chunk_chars=40))
    try:
        for future in runtime.start():
            future.result(timeout=120)
        english, russian = "The canary is healthy. ", "Канарейка здорова и поёт. "
        mixed = runtime.synthesize(english + russian + english, "alloy", 1.0)  # a silent chunk failed the checks
        plain = runtime.synthesize(english + english, "alloy", 1.0)
        assert mixed.report.passed and mixed.audio.size == plain.audio.size
    finally:
        runtime.stop()
