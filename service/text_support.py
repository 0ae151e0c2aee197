"""What text an engine can speak, decided before synthesis.

Each engine declares a `TextSupport`: the scripts its letters may be in (the first word
of a character's Unicode name: LATIN, CJK, DIGIT for 0-9) and which characters make a
sound. `unspeakable` is a pure function of the text: it refuses text with nothing the
engine can say (only punctuation or symbols, or only letters it has no sound for) and
text mainly in a script the engine does not speak, naming that script. Mixed text with
an occasional foreign word or symbol is spoken; the engine skips what it cannot say.

Long text is synthesized chunk by chunk (`split_sentences`); the runtime skips the chunks
that are unspeakable on their own (a paragraph of Cyrillic in an English text), and the
request rules refuse text of which no chunk is left (`refusal`), so a request that was
accepted always has something to say.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from service.text import split_sentences

# Scripts named better than their Unicode name's first word.
_SCRIPT_LABELS = {"CJK": "Chinese (CJK)", "LATIN": "Latin-script"}


def _any_character(_: str) -> bool:
    return True


@dataclass(frozen=True)
class TextSupport:
    scripts: frozenset[str]  # first words of Unicode names: LATIN, CJK, DIGIT (0-9)
    description: str  # said to a client whose text is refused: "Chinese and English"
    sounds: Callable[[str], bool] = _any_character  # does this letter or digit make a sound

    def speaks(self, ch: str) -> bool:
        """A letter or digit of a supported script that this engine has a sound for."""
        return _is_letter_or_digit(ch) and script(ch) in self.scripts and self.sounds(ch)


def _is_letter_or_digit(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LN"


def _is_letter(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "L"


def script(ch: str) -> str:
    """The script of a character as the first word of its Unicode name, after NFKC
    (a fullwidth or superscript digit is a DIGIT, a ligature is LATIN); '' when unnamed."""
    base = unicodedata.normalize("NFKC", ch)[:1] or ch
    return unicodedata.name(base, "").split(" ")[0]


def script_label(name: str) -> str:
    """'CYRILLIC' -> 'Cyrillic', 'CJK' -> 'Chinese (CJK)'."""
    return _SCRIPT_LABELS.get(name, name.title() or "unnamed")


def _main_foreign_script(text: str, support: TextSupport) -> str | None:
    """The most common unsupported script when unsupported letters outnumber supported ones."""
    letters = Counter(script(ch) for ch in text if _is_letter(ch))
    foreign = Counter({name: n for name, n in letters.items() if name not in support.scripts})
    if foreign.total() > letters.total() - foreign.total():
        return foreign.most_common(1)[0][0]
    return None


def unspeakable(text: str, support: TextSupport) -> str | None:
    """Why `text` cannot be spoken ("is Cyrillic text; ..."), or None when it can."""
    foreign = _main_foreign_script(text, support)
    if foreign is not None:
        return f"is {script_label(foreign)} text; this model speaks {support.description}"
    if not any(support.speaks(ch) for ch in text):
        return f"has nothing to speak (no letter or digit this model can say); it speaks {support.description}"
    return None


def speakable_chunks(text: str, support: TextSupport, max_chars: int) -> list[str]:
    """The chunks of `text` to synthesize: those the engine can speak on their own."""
    return [chunk for chunk in split_sentences(text, max_chars) if unspeakable(chunk, support) is None]


def refusal(text: str, support: TextSupport, max_chars: int) -> str | None:
    """Why no part of `text` can be spoken, or None when some chunk of it can."""
    reason = unspeakable(text, support)
    if reason is not None or speakable_chunks(text, support, max_chars):
        return reason
    return unspeakable(split_sentences(text, max_chars)[0], support)  # text with a speakable letter has a chunk
