"""Text preparation: normalisation and splitting long input at sentence boundaries."""

from __future__ import annotations

import re
import unicodedata

_SENTENCE_END = re.compile(r"(?<=[.!?。！？…])(?![.!?。！？…])\s*|\n+")  # after "...", not inside it
_CLAUSE_END = re.compile(r"(?<=[,;:，；：、])\s*")


def normalize(text: str) -> str:
    """NFC, control characters dropped, runs of spaces collapsed."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return re.sub(r"[ \t]+", " ", text).strip()


def split_sentences(text: str, max_chars: int = 300) -> list[str]:
    """Split into chunks of at most `max_chars`, preferring sentence, then clause,
    then word boundaries; a single overlong word is cut hard."""
    chunks: list[str] = []
    for sentence in (s.strip() for s in _SENTENCE_END.split(text)):
        if sentence:
            chunks.extend(_fit(sentence, max_chars))
    return _merge_short(chunks, max_chars)


def split_first_sentence(chunk: str) -> list[str]:
    """`chunk` as its first sentence and the rest (one item when it is one sentence): a
    streamed answer's first audio waits for one sentence, not a whole chunk."""
    return [part.strip() for part in _SENTENCE_END.split(chunk, maxsplit=1) if part.strip()]


def _fit(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    pieces = [p.strip() for p in _CLAUSE_END.split(sentence) if p.strip()]
    if len(pieces) == 1:
        pieces = sentence.split(" ")
    out: list[str] = []
    current = ""
    for piece in pieces:
        while len(piece) > max_chars:  # one word longer than a chunk
            if current:
                out.append(current)
                current = ""
            out.append(piece[:max_chars])
            piece = piece[max_chars:]
        candidate = f"{current} {piece}".strip()
        if len(candidate) <= max_chars:
            current = candidate
        else:
            out.append(current)
            current = piece
    if current:
        out.append(current)
    return out


def _merge_short(chunks: list[str], max_chars: int) -> list[str]:
    merged: list[str] = []
    for chunk in chunks:
        if merged and len(merged[-1]) + 1 + len(chunk) <= max_chars:
            merged[-1] = f"{merged[-1]} {chunk}"
        else:
            merged.append(chunk)
    return merged
