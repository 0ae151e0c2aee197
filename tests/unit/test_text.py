from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from service.text import normalize, split_sentences


def test_short_text_is_one_chunk():
    assert split_sentences("Hello there. How are you?", 300) == ["Hello there. How are you?"]


def test_long_text_splits_at_sentence_boundaries():
    text = "First sentence is here. " * 10 + "Last one!"
    chunks = split_sentences(text, 60)
    assert all(len(c) <= 60 for c in chunks)
    assert all(c.endswith((".", "!")) for c in chunks)


def test_chinese_sentence_marks_split():
    chunks = split_sentences("你好。" * 30, 20)
    assert all(len(c) <= 20 and c.endswith("。") for c in chunks)


def test_an_overlong_sentence_splits_at_clauses_then_words():
    text = "alpha beta, gamma delta, " * 20
    chunks = split_sentences(text, 40)
    assert all(len(c) <= 40 for c in chunks)
    assert " ".join(chunks).split() == text.split()


def test_normalize_drops_controls_and_collapses_space():
    assert normalize("a\u0007  b\t\tc \n d ") == "a b c \n d"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", " ", ".", ",", "!", "?", "。", "\n", "word", "longerword" * 5]),
                max_size=150).map("".join),
       st.integers(min_value=20, max_value=120))
def test_splitting_keeps_every_word_and_respects_the_limit(text, limit):
    chunks = split_sentences(text, limit)
    assert all(0 < len(c) <= limit for c in chunks)
    assert "".join("".join(chunks).split()) == "".join(text.split())


def test_a_run_of_sentence_marks_ends_one_sentence_and_is_not_split():
    assert split_sentences("Wow!!! Wait... what?!", 300) == ["Wow!!! Wait... what?!"]  # not "Wow! ! !"
    assert split_sentences("Wow!!! Wait... what?!", 10) == ["Wow!!!", "Wait...", "what?!"]
