"""Repeated text out: the same paragraph twice (exactly, up to case, spacing and punctuation), the same page
shipped twice with small differences (MinHash over word 5-grams, ``datasketch``), and any paragraph that
shares a 13-word sequence with text held out for evaluation (the downstream tasks), as language-model
contamination checks do."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

NEAR_DUPLICATE_JACCARD = 0.8
SHINGLE_WORDS = 5
HELD_OUT_NGRAM = 13
_PERMUTATIONS = 128


def _key(paragraph: str) -> str:
    return hashlib.sha1(" ".join(re.findall(r"[a-z0-9]+", paragraph.lower())).encode()).hexdigest()


class ParagraphFilter:
    """Keeps the first occurrence of every paragraph over all documents it is shown, in the order shown."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, text: str) -> tuple[str, int]:
        """The text without paragraphs seen before, and how many words were dropped."""
        kept, dropped = [], 0
        for paragraph in text.split("\n\n"):
            key = _key(paragraph)
            if key in self._seen:
                dropped += len(paragraph.split())
            else:
                self._seen.add(key)
                kept.append(paragraph)
        return "\n\n".join(kept), dropped


def _ngrams(words: list[str], n: int) -> Iterable[str]:
    return (" ".join(words[i : i + n]) for i in range(len(words) - n + 1))


class HeldOut:
    """Paragraphs that share a ``HELD_OUT_NGRAM``-word sequence with any held-out text are dropped."""

    def __init__(self, texts: Iterable[str]) -> None:
        self._grams = {hash(gram) for text in texts for gram in _ngrams(_words(text), HELD_OUT_NGRAM)}

    def __call__(self, text: str) -> tuple[str, int]:
        kept, dropped = [], 0
        for paragraph in text.split("\n\n"):
            if any(hash(g) in self._grams for g in _ngrams(_words(paragraph), HELD_OUT_NGRAM)):
                dropped += len(paragraph.split())
            else:
                kept.append(paragraph)
        return "\n\n".join(kept), dropped


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


class NearDuplicates:
    """Documents whose word 5-gram sets are ``NEAR_DUPLICATE_JACCARD``-similar to one kept before are near
    duplicates (MinHash with locality-sensitive hashing: the same page shipped twice, another edition)."""

    def __init__(self) -> None:
        from datasketch import MinHash, MinHashLSH

        self._minhash = MinHash
        self._index = MinHashLSH(threshold=NEAR_DUPLICATE_JACCARD, num_perm=_PERMUTATIONS)
        self._count = 0

    def is_duplicate(self, text: str) -> bool:
        """Whether ``text`` nearly repeats a document kept before; if not, it is kept (indexed)."""
        shingles = {g.encode() for g in _ngrams(_words(text), SHINGLE_WORDS)}
        if not shingles:
            return False
        signature = self._minhash(num_perm=_PERMUTATIONS, seed=1)
        signature.update_batch(sorted(shingles))
        if self._index.query(signature):
            return True
        self._index.insert(str(self._count), signature)
        self._count += 1
        return False


__all__ = ["HELD_OUT_NGRAM", "NEAR_DUPLICATE_JACCARD", "HeldOut", "NearDuplicates", "ParagraphFilter"]
