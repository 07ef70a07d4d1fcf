"""What is not English prose, removed paragraph by paragraph, the same way for every source.

A paragraph stays when it reads as English running text: enough words, most of them letters, enough of
English's function words (which code, tables, command output, word lists and other languages lack), not a
licence or a navigation line. The rules are deliberately simple, so that what they remove can be counted and
checked on fixtures (``tests/test_corpus_build.py``).
"""

from __future__ import annotations

import re
import unicodedata

# The commonest English function words: running English text has about a third of its words among them; code,
# tables, lists of names and other languages have far fewer.
FUNCTION_WORDS = frozenset(
    "the of and to a in is it that for was on as with be by at this are or from his he not but an have which "
    "you they we her she has had were their been one all there would if can will so its more when what who "
    "no my our do into than them only then these also any may such some most other about out up".split()
)
MIN_WORDS = 6  # a paragraph shorter than this is a heading, a label or a list item
MIN_FUNCTION_SHARE = 0.18
MAX_SYMBOL_SHARE = 0.06  # characters of code and markup: {}[]<>=|\\$#@_*~^

_LICENCE = re.compile(
    r"GNU (General|Lesser|Free Documentation) (Public )?Licen[cs]e|Permission is (hereby )?granted|"
    r"THIS SOFTWARE IS PROVIDED|WITHOUT (ANY )?WARRANT|Copyright \(c\)|Copyright ©|All rights reserved|"
    r"Creative Commons|SPDX-License|under the terms of the",
    re.IGNORECASE,
)
_NAVIGATION = re.compile(r"^(next|previous|prev|up|home|contents|index|top|back|table of contents)\b", re.I)
_SYMBOLS = set("{}[]<>=|\\$#@_*~^")


def normalise(text: str) -> str:
    """NFC, typographic quotes and dashes kept, control characters out, whitespace runs to one space inside a
    paragraph; paragraphs separated by one blank line."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c)[0] != "C")
    paragraphs = (" ".join(p.split()) for p in re.split(r"\n\s*\n", text))
    return "\n\n".join(p for p in paragraphs if p)


def why_not_prose(paragraph: str) -> str | None:
    """The first rule a paragraph fails (``"short"``, ``"symbols"``, ``"not English"``, ``"licence"``,
    ``"navigation"``), or ``None`` for prose."""
    words = paragraph.split()
    if len(words) < MIN_WORDS:
        return "short"
    if _NAVIGATION.match(paragraph) and len(words) < 12:
        return "navigation"
    if sum(c in _SYMBOLS for c in paragraph) > MAX_SYMBOL_SHARE * len(paragraph):
        return "symbols"
    lowered = [w.strip(".,;:!?\"'()").lower() for w in words]
    if sum(w in FUNCTION_WORDS for w in lowered) < MIN_FUNCTION_SHARE * len(words):
        return "not English"
    letters = sum(c.isalpha() for c in paragraph)
    if letters < 0.6 * len(paragraph.replace(" ", "")):
        return "symbols"
    if _LICENCE.search(paragraph):
        return "licence"
    return None


def clean(text: str, dropped: dict[str, int] | None = None) -> str:
    """The prose paragraphs of ``text`` (normalised); ``dropped`` counts the words removed per rule."""
    kept = []
    for paragraph in normalise(text).split("\n\n"):
        reason = why_not_prose(paragraph)
        if reason is None:
            kept.append(paragraph)
        elif dropped is not None:
            dropped[reason] = dropped.get(reason, 0) + len(paragraph.split())
    return "\n\n".join(kept)


__all__ = ["FUNCTION_WORDS", "clean", "normalise", "why_not_prose"]
