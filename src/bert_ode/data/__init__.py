"""Pretraining data: corpora (built-in, local files, HuggingFace datasets), WordPiece tokenizers, MLM
batches."""

from .corpus import (
    BUILTIN_CORPORA,
    Corpus,
    load_builtin,
    load_corpus,
    load_files,
    load_hf_dataset,
    split_documents,
)
from .mlm import MlmMasker, pack_sequences, unigram_entropy
from .tokenizer import SPECIAL_TOKENS, load_tokenizer, prepare_tokenizer, train_wordpiece

__all__ = [
    "BUILTIN_CORPORA",
    "Corpus",
    "MlmMasker",
    "SPECIAL_TOKENS",
    "load_builtin",
    "load_corpus",
    "load_files",
    "load_hf_dataset",
    "load_tokenizer",
    "pack_sequences",
    "prepare_tokenizer",
    "split_documents",
    "train_wordpiece",
    "unigram_entropy",
]
