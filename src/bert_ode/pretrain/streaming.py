"""True streaming of a large HuggingFace dataset (``data.streaming: true`` with ``data.dataset``).

Nothing is read into memory ahead of training: the first ``data.validation_documents`` documents of the stream
are the validation set (never trained on), the next ``data.tokenizer_documents`` train the tokenizer (unless
one is given) and serve as the word-frequency reference, and the rest are tokenised and packed into blocks as
the training loop asks for them. Each process reads its own shard
(``datasets.distributed.split_dataset_by_node``); the shard's position (the dataset's ``state_dict`` and the
tokens not yet packed) is saved with every checkpoint, so a resumed run continues with the next unseen block.
Documents are read in the dataset's order; ``data.max_documents`` bounds the stream; when it ends, the next
epoch reads it again.
"""

from __future__ import annotations

import copy
from pathlib import Path

import datasets
import torch
from datasets.distributed import split_dataset_by_node
from tokenizers import Tokenizer

from .config import DataConfig


def open_stream(data: DataConfig) -> datasets.IterableDataset:
    """The dataset as an iterable of ``{"text": ...}`` records (a Hub name, a local dataset folder, or a
    ``save_to_disk`` folder), bounded by ``max_documents``."""
    try:
        if _saved_to_disk(data.dataset):
            stream = datasets.load_from_disk(data.dataset)
            if isinstance(stream, datasets.DatasetDict):
                stream = stream[data.split]
            stream = stream.to_iterable_dataset()
        else:
            stream = datasets.load_dataset(
                data.dataset, data.dataset_config, split=data.split, streaming=True
            )
    except (FileNotFoundError, ConnectionError, ValueError, KeyError) as error:
        raise ValueError(f"cannot stream dataset {data.dataset!r} (split {data.split!r}): {error}") from None
    columns = stream.column_names
    if columns is not None and data.text_field not in columns:
        raise ValueError(
            f"dataset {data.dataset!r} has no text field {data.text_field!r}; its columns are {columns}"
        )
    stream = stream.select_columns([data.text_field])
    if data.text_field != "text":
        stream = stream.rename_columns({data.text_field: "text"})
    return stream.take(data.max_documents) if data.max_documents is not None else stream


def _saved_to_disk(name: str) -> bool:
    return (Path(name) / "state.json").exists() or (Path(name) / "dataset_dict.json").exists()


def head_documents(stream: datasets.IterableDataset, skip: int, count: int) -> list[str]:
    """``count`` documents after the first ``skip`` (texts that are not strings are skipped)."""
    return [str(record["text"]) for record in stream.skip(skip).take(count) if record["text"] is not None]


class StreamingBlocks:
    """This process's training blocks, packed on the fly from its shard of the stream.

    ``take(start, count)`` returns the next ``count`` blocks, as ``BlockStream.take`` does for an in-memory
    corpus; ``start`` (the global sample number) is not needed, because the position is this object's state.
    """

    def __init__(self, stream, tokenizer, seq_len: int, rank: int, world_size: int, skip: int):
        self.source = split_dataset_by_node(stream.skip(skip), rank=rank, world_size=world_size)
        # A private copy of the Rust tokenizer without the checkpoint's truncation/padding settings.
        self.backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        self.backend.no_truncation()
        self.backend.no_padding()
        self.cls, self.sep, self.body = tokenizer.cls_token_id, tokenizer.sep_token_id, seq_len - 2
        self.epoch = 0
        self.pending: list[int] = []  # tokens read but not yet packed into a block
        self.dataset_state: dict | None = None  # where the shard's iterator stands (resume)
        self._iterator = None

    def _records(self):
        # In the dataset's own order: a shuffle buffer's content is not part of datasets' state_dict, so a
        # resumed run could not continue exactly where it stopped (shuffle a sorted corpus beforehand). A
        # fresh copy per epoch: a loaded state stays with the dataset object it was loaded into.
        source = copy.deepcopy(self.source)
        if self.dataset_state is not None:
            source.load_state_dict(copy.deepcopy(self.dataset_state))
        self._source, self._read_this_epoch = source, 0
        return iter(source)

    def _next_text(self) -> str:
        while True:
            if self._iterator is None:
                self._iterator = self._records()
            try:
                record = next(self._iterator)
            except StopIteration:  # the end of the stream: the next epoch reads it again
                if self._read_this_epoch == 0 and self.dataset_state is None:
                    raise ValueError(
                        "the stream holds no training documents for this process (data.max_documents and "
                        "data.validation_documents leave none after the validation set)"
                    ) from None
                self.epoch, self.dataset_state, self._iterator = self.epoch + 1, None, None
                continue
            self._read_this_epoch += 1
            if record["text"]:
                return str(record["text"])

    def take(self, start: int, count: int) -> torch.Tensor:
        while len(self.pending) < count * self.body:
            self.pending.extend(self.backend.encode(self._next_text(), add_special_tokens=False).ids)
            self.pending.append(self.sep)
        tokens = torch.tensor(self.pending[: count * self.body], dtype=torch.long).view(count, self.body)
        del self.pending[: count * self.body]
        cls_column = torch.full((count, 1), self.cls, dtype=torch.long)
        sep_column = torch.full((count, 1), self.sep, dtype=torch.long)
        return torch.cat([cls_column, tokens, sep_column], dim=1)

    def state_dict(self) -> dict:
        """The position: epoch, the iterator's state and the tokens read but not packed."""
        # A copy: datasets hands out the live state, which moves on as the iterator does.
        state = self._source.state_dict() if self._iterator is not None else self.dataset_state
        return {"epoch": self.epoch, "dataset": copy.deepcopy(state), "pending": list(self.pending)}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.dataset_state = state["epoch"], state["dataset"]
        self.pending, self._iterator = list(state["pending"]), None


__all__ = ["StreamingBlocks", "head_documents", "open_stream"]
