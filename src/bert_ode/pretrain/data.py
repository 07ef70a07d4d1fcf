"""Pretraining data for a run: corpus -> tokenizer -> packed blocks (cached), and the deterministic block
stream.

Determinism: sample ``k`` of the endless training stream is block ``perm_e[k mod N]`` with ``perm_e`` a
permutation seeded by ``(seed, e = k // N)``; each micro-batch draws its masks from a generator seeded by
``(seed, step, micro-step, rank)`` (``seed_for``). A resumed run therefore sees exactly the batches and masks
the uninterrupted run would have seen, whatever the number of processes.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import Corpus, load_corpus, pack_sequences, prepare_tokenizer
from .config import DataConfig, PretrainConfig
from .streaming import StreamingBlocks, head_documents, open_stream


def seed_for(*parts) -> int:
    """A 63-bit seed that depends on every part (a stable hash, unlike Python's ``hash``)."""
    digest = hashlib.sha256(",".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


def load_training_corpus(data: DataConfig) -> Corpus:
    """The corpus ``data`` describes, split into train and validation."""
    # The source fields of DataConfig are named as load_corpus's parameters.
    return load_corpus(**{name: getattr(data, name) for name in inspect.signature(load_corpus).parameters})


def train_run_tokenizer(config: PretrainConfig, directory: str | os.PathLike, corpus: Corpus):
    """The run's tokenizer, cached in ``directory/tokenizer``: ``tokenizer.path`` (or the ``train.init_from``
    checkpoint's), or a WordPiece tokenizer trained on the corpus."""
    tok = config.tokenizer
    return prepare_tokenizer(
        directory,
        corpus.train,
        path=tok.path or config.train.init_from,
        vocab_size=tok.vocab_size,
        min_frequency=tok.min_frequency,
        lowercase=tok.lowercase,
    )


@dataclass
class PretrainData:
    description: str  # where the text came from, for messages and model cards
    tokenizer: object  # a transformers tokenizer
    # (blocks, seq_len) token ids: all training blocks; when streaming, those of the tokenizer documents (the
    # word-frequency reference and a sample for warm-up compilation).
    train_blocks: torch.Tensor
    validation_blocks: torch.Tensor
    streamed: StreamingBlocks | None = None  # the training blocks, read as training goes (data.streaming)

    def training_blocks(self, seed: int):
        """The source of training batches: ``take(first_sample, count)``."""
        return self.streamed if self.streamed is not None else BlockStream(self.train_blocks, seed)


def prepare_data(config: PretrainConfig, output_dir: Path, accelerator) -> PretrainData:
    """Corpus -> tokenizer -> packed blocks, built by the main process first and cached in ``output_dir``
    (or, with ``data.streaming`` and a dataset, a stream read as training goes)."""
    if config.data.streaming and config.data.dataset:
        return _prepare_streamed(config, output_dir, accelerator)
    with accelerator.main_process_first():
        corpus = load_training_corpus(config.data)
        tokenizer = train_run_tokenizer(config, output_dir, corpus)
        blocks = _cached_blocks(config, output_dir, corpus, tokenizer, accelerator.is_main_process)
    if len(blocks["train"]) == 0:
        raise ValueError(
            f"the corpus ({corpus.description}) is too small: not one training block of "
            f"data.seq_len={config.data.seq_len} tokens"
        )
    train, description = blocks["train"], corpus.description
    if config.data.max_train_tokens is not None:
        train = sample_blocks(train, config.data.max_train_tokens)
        description += f", a fixed sample of {len(train) * train.shape[1]:,} training tokens"
    return PretrainData(description, tokenizer, train, blocks["validation"])


def sample_blocks(blocks: torch.Tensor, max_tokens: int) -> torch.Tensor:
    """The blocks holding ``max_tokens`` tokens (rounded down to whole blocks), drawn at random from all of
    them by a fixed seed: every run, whatever its seed, trains on the same unique text."""
    count = max_tokens // blocks.shape[1]
    if not 1 <= count <= len(blocks):
        raise ValueError(
            f"data.max_train_tokens={max_tokens:,} must hold between one block ({blocks.shape[1]} tokens) "
            f"and the corpus's {len(blocks) * blocks.shape[1]:,} training tokens"
        )
    generator = torch.Generator().manual_seed(seed_for("max_train_tokens", count))
    return blocks[torch.randperm(len(blocks), generator=generator)[:count].sort().values]


def _prepare_streamed(config: PretrainConfig, output_dir: Path, accelerator) -> PretrainData:
    data = config.data
    stream = open_stream(data)
    validation = head_documents(stream, 0, data.validation_documents)
    reference = head_documents(stream, data.validation_documents, data.tokenizer_documents)
    if not validation or not reference:
        raise ValueError(
            f"dataset {data.dataset!r} holds {len(validation) + len(reference)} documents: too few for "
            f"data.validation_documents={data.validation_documents} and a training part"
        )
    with accelerator.main_process_first():
        tok = config.tokenizer
        tokenizer = prepare_tokenizer(
            output_dir,
            reference,
            path=tok.path or config.train.init_from,
            vocab_size=tok.vocab_size,
            min_frequency=tok.min_frequency,
            lowercase=tok.lowercase,
        )
    streamed = StreamingBlocks(
        stream,
        tokenizer,
        data.seq_len,
        rank=accelerator.process_index,
        world_size=accelerator.num_processes,
        skip=data.validation_documents,
    )
    description = f"dataset {data.dataset!r} (streamed; the first {len(validation)} documents for validation)"
    return PretrainData(
        description,
        tokenizer,
        pack_sequences(tokenizer, reference, data.seq_len),
        pack_sequences(tokenizer, validation, data.seq_len),
        streamed,
    )


def _cached_blocks(config: PretrainConfig, output_dir: Path, corpus: Corpus, tokenizer, writer: bool) -> dict:
    """Packed blocks, keyed by everything they depend on (data config, tokenizer, corpus size)."""
    key = hashlib.sha1(
        json.dumps(
            [
                # the sample is drawn from the packed blocks: it does not change them
                {k: v for k, v in config.to_dict()["data"].items() if k != "max_train_tokens"},
                tokenizer.backend_tokenizer.to_str(),
                len(corpus.train),
                corpus.num_chars,
            ]
        ).encode()
    ).hexdigest()[:16]
    cache = output_dir / "data-cache" / f"blocks-{key}.pt"
    if cache.is_file():
        try:
            return torch.load(cache, weights_only=True)  # tensors only: a cache file cannot run code
        except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as error:
            # A cache is derived data: a damaged one is rebuilt, never a reason to stop.
            print(f"pretrain: warning: rebuilding the damaged data cache {cache} ({error})", file=sys.stderr)
    seq_len = config.data.seq_len
    blocks = {
        "train": pack_sequences(tokenizer, corpus.train, seq_len),
        "validation": pack_sequences(tokenizer, corpus.validation, seq_len),
    }
    if writer:
        cache.parent.mkdir(parents=True, exist_ok=True)
        staging = cache.with_suffix(f".tmp{os.getpid()}")
        torch.save(blocks, staging)
        os.replace(staging, cache)
    return blocks


class BlockStream:
    """The endless, epoch-shuffled training stream over packed blocks; indexable by global sample number."""

    def __init__(self, blocks: torch.Tensor, seed: int):
        self.blocks, self.seed, self._perms = blocks, seed, {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            generator = torch.Generator().manual_seed(seed_for(self.seed, "epoch", epoch))
            self._perms = {epoch: torch.randperm(len(self.blocks), generator=generator)}
        return self._perms[epoch]

    def take(self, start: int, count: int) -> torch.Tensor:
        n = len(self.blocks)
        indices = [self._perm(k // n)[k % n] for k in range(start, start + count)]
        return self.blocks[torch.stack(indices)]
