"""WordPiece tokenizer: trained on the corpus with the ``tokenizers`` library, or an existing one loaded."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, BertTokenizerFast, PreTrainedTokenizerBase

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_wordpiece(
    texts: Iterable[str], vocab_size: int = 8192, min_frequency: int = 2, lowercase: bool = True
) -> BertTokenizerFast:
    """A BERT-style WordPiece tokenizer (BERT normaliser and pre-tokeniser, ``##`` continuations) trained on
    texts; the same texts give the same tokenizer file in every process."""
    if vocab_size < len(SPECIAL_TOKENS) + 1:
        raise ValueError(
            f"tokenizer.vocab_size={vocab_size} is too small; it must exceed {len(SPECIAL_TOKENS)}"
        )
    texts = texts if isinstance(texts, Sequence) else list(texts)  # read twice below
    trained = _bert_pipeline(Tokenizer(models.WordPiece(unk_token="[UNK]")), lowercase)
    # tokenizers numbers the "##c" continuation tokens in hash-map order, which changes from process to
    # process, and those numbers break ties between merges of equal count, so the learned vocabulary itself
    # changed between runs (huggingface/tokenizers#1794). Declaring every "##c" up front as a special token
    # gives them fixed numbers; they are ordinary vocabulary entries of the saved tokenizer.
    continuations = _continuation_tokens(trained.normalizer, texts)
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS + continuations,
        show_progress=False,
    )
    trained.train_from_iterator(texts, trainer=trainer)
    vocab = _canonical_ids(trained.get_vocab())
    tokenizer = _bert_pipeline(Tokenizer(models.WordPiece(vocab, unk_token="[UNK]")), lowercase)
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return BertTokenizerFast(
        tokenizer_object=tokenizer,
        do_lower_case=lowercase,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
    )


def _bert_pipeline(tokenizer: Tokenizer, lowercase: bool) -> Tokenizer:
    """BERT's normaliser, pre-tokeniser and decoder on a tokenizer."""
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, lowercase=lowercase, strip_accents=lowercase
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer


def _continuation_tokens(normalizer, texts: Sequence[str]) -> list[str]:
    """``##c`` for every character of the normalised texts, sorted (a superset of what the trainer makes)."""
    characters: set[str] = set()
    for text in texts:
        characters.update(normalizer.normalize_str(text))
    return [f"##{c}" for c in sorted(characters) if not c.isspace()]


def _canonical_ids(vocab: dict[str, int]) -> dict[str, int]:
    """Renumbers a trained vocabulary in a canonical order: special tokens, the alphabet, merged tokens
    (WordPiece encoding depends only on the set of tokens: greedy longest match)."""

    def is_alphabet(token: str) -> bool:
        return len(token.removeprefix("##")) == 1

    special = [t for t in SPECIAL_TOKENS if t in vocab]
    alphabet = sorted(t for t in vocab if t not in special and is_alphabet(t))
    merged = sorted(t for t in vocab if t not in special and not is_alphabet(t))
    return {token: index for index, token in enumerate(special + alphabet + merged)}


def check_tokenizer_location(path: str | os.PathLike) -> None:
    """Refuses, before any work, a tokenizer location written as a local path that does not exist (a bare name
    such as ``bert-base-uncased`` is left to the Hub)."""
    name = str(path)
    # A Hub id is ``name`` or ``owner/name``; anything else that does not exist was meant as a local path.
    written_as_path = (
        name.startswith(("/", ".", "~")) or name.endswith("/") or name.count("/") > 1 or "\\" in name
    )
    if written_as_path and not Path(name).expanduser().exists():
        raise ValueError(f"cannot load a tokenizer from {name!r}: not found (no such file or directory)")


def load_tokenizer(path: str | os.PathLike, *, require_mlm_tokens: bool = True) -> PreTrainedTokenizerBase:
    """An existing tokenizer (a saved tokenizer folder, a checkpoint or a Hub name).

    ``require_mlm_tokens`` (pretraining) also requires the mask, pad, CLS and SEP tokens masked LM training
    uses; fine-tuning and evaluation load a checkpoint's tokenizer with ``require_mlm_tokens=False``.
    """
    check_tokenizer_location(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"cannot load a tokenizer from {str(path)!r}: {error}") from error
    if not require_mlm_tokens:
        return tokenizer
    missing = [
        name
        for name in ("mask_token", "pad_token", "cls_token", "sep_token")
        if getattr(tokenizer, name) is None
    ]
    if missing:
        raise ValueError(
            f"the tokenizer at {str(path)!r} lacks {', '.join(missing)}, which masked LM training needs"
        )
    return tokenizer


def prepare_tokenizer(
    output_dir: str | os.PathLike,
    texts: Iterable[str],
    path: str | os.PathLike | None = None,
    vocab_size: int = 8192,
    min_frequency: int = 2,
    lowercase: bool = True,
) -> PreTrainedTokenizerBase:
    """The run's tokenizer, cached in ``output_dir/tokenizer``: a resumed or repeated run reuses it
    unchanged."""
    cache = Path(output_dir) / "tokenizer"
    if (cache / "tokenizer.json").exists() or (cache / "tokenizer_config.json").exists():
        return load_tokenizer(cache)
    tokenizer = load_tokenizer(path) if path else train_wordpiece(texts, vocab_size, min_frequency, lowercase)
    # Written beside the cache and renamed into place, so an interrupted run never leaves half a tokenizer.
    staging = cache.with_name(f".tokenizer-{os.getpid()}")
    tokenizer.save_pretrained(str(staging))
    os.replace(staging, cache)
    # As a resumed run will see it: loading restores some settings in another spelling (strip_accents None for
    # "as lowercase"), and everything keyed by the tokenizer (the data cache) must match across a resume.
    return load_tokenizer(cache, require_mlm_tokens=False)
