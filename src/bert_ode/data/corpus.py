"""Text corpora for pretraining: the built-in offline corpus, local text/JSONL files, or a HuggingFace
dataset.

Every source yields a list of documents (strings). ``split_documents`` cuts them into paragraph chunks and
assigns each chunk to train or validation by a hash of its text, so the split depends on nothing else: not on
the order of files, the number of processes, or the seed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import datasets

BUILTIN_CORPORA = {
    "austen": ("austen.jsonl.gz",),
    "python-docs": ("python-docs.jsonl.gz",),
    "all": ("austen.jsonl.gz", "python-docs.jsonl.gz"),
}
TEXT_SUFFIXES = (".txt", ".text", ".md", ".rst")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
_COMPRESSED = (".gz",)


@dataclass
class Corpus:
    """Documents of one source, split into ``train`` and ``validation`` chunks."""

    train: list[str]
    validation: list[str]
    description: str

    @property
    def num_chars(self) -> int:
        return sum(map(len, self.train)) + sum(map(len, self.validation))


# ------------------------------------------------------------------------------------------------------------
# Sources
# ------------------------------------------------------------------------------------------------------------


def load_builtin(name: str = "all") -> list[str]:
    """Documents of a corpus shipped inside the package (``austen``, ``python-docs`` or ``all``)."""
    if name not in BUILTIN_CORPORA:
        raise ValueError(
            f"unknown built-in corpus {name!r}; choose one of {', '.join(map(repr, BUILTIN_CORPORA))}"
        )
    documents = []
    for file_name in BUILTIN_CORPORA[name]:
        with resources.files("bert_ode.data").joinpath("corpora", file_name).open("rb") as raw:
            with gzip.open(raw, "rt", encoding="utf-8") as lines:
                documents.extend(json.loads(line)["text"] for line in lines)
    return documents


def _open_text(path: Path):
    if path.suffix in _COMPRESSED:
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _plain_suffix(path: Path) -> str:
    return Path(path.stem).suffix if path.suffix in _COMPRESSED else path.suffix


def _read_file(path: Path, text_field: str) -> list[str]:
    is_jsonl = _plain_suffix(path) in JSONL_SUFFIXES
    try:
        with _open_text(path) as handle:
            if not is_jsonl:
                return [handle.read()]
            documents = []
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}:{number}: not a JSON line ({error.msg})") from error
                if not isinstance(record, dict) or text_field not in record:
                    raise ValueError(
                        f"{path}:{number}: no text field {text_field!r} (set data.text_field to the field "
                        "that holds the text)"
                    )
                text = record[text_field]
                if not isinstance(text, str):
                    kind = "null" if text is None else type(text).__name__
                    raise ValueError(
                        f"{path}:{number}: the text field {text_field!r} is {kind}, not a string; drop the "
                        "record or give it text"
                    )
                documents.append(text)
            return documents
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as error:
        raise ValueError(f"cannot read {path}: it is not UTF-8 text ({error})") from error
    except PermissionError as error:
        raise ValueError(f"cannot read {path}: permission denied") from error
    except IsADirectoryError as error:
        raise ValueError(f"cannot read {path}: it is a directory") from error


def _expand(paths: Iterable[str | os.PathLike]) -> list[Path]:
    files = []
    for entry in paths:
        path = Path(entry).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"data file or folder not found: {path}")
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and _plain_suffix(p) in TEXT_SUFFIXES + JSONL_SUFFIXES
                and not p.name.startswith(".")
            )
            if not found:
                raise ValueError(
                    f"folder {path} holds no text or JSONL files (looked for "
                    f"{', '.join(TEXT_SUFFIXES + JSONL_SUFFIXES)}, optionally .gz)"
                )
            files.extend(found)
        else:
            files.append(path)
    return files


def load_files(paths: str | os.PathLike | Iterable[str | os.PathLike], text_field: str = "text") -> list[str]:
    """Documents of local files or folders: a text file is one document, a JSONL file one document a line."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    documents = []
    for path in _expand(paths):
        documents.extend(_read_file(path, text_field))
    return documents


def load_hf_dataset(
    name: str,
    config_name: str | None = None,
    split: str = "train",
    streaming: bool = False,
    text_field: str = "text",
    max_documents: int | None = None,
) -> list[str]:
    """Documents of a HuggingFace dataset (a Hub name, a local dataset folder, or a ``save_to_disk`` folder).

    With ``streaming`` the dataset is read lazily and only the first ``max_documents`` documents are taken, so
    a huge Hub corpus need not be downloaded in full.
    """
    try:
        if (Path(name) / "state.json").exists() or (Path(name) / "dataset_dict.json").exists():
            dataset = datasets.load_from_disk(name)
            if isinstance(dataset, datasets.DatasetDict):
                dataset = dataset[split]
        else:
            dataset = datasets.load_dataset(name, config_name, split=split, streaming=streaming)
    except (FileNotFoundError, ConnectionError, ValueError, KeyError) as error:
        raise ValueError(
            f"cannot load dataset {name!r} (config {config_name!r}, split {split!r}): {error}. Check the "
            "name, "
            "or pass local files with data.files"
        ) from error
    columns = dataset.column_names
    if columns is not None and text_field not in columns:
        raise ValueError(f"dataset {name!r} has no text field {text_field!r}; its columns are {columns}")
    documents = []
    for record in dataset:
        if max_documents is not None and len(documents) >= max_documents:
            break
        documents.append(str(record[text_field]))
    return documents


# ------------------------------------------------------------------------------------------------------------
# Split
# ------------------------------------------------------------------------------------------------------------


def chunk_document(text: str, chunk_chars: int = 4000) -> list[str]:
    """Paragraph groups of about ``chunk_chars`` characters (a long paragraph stays whole)."""
    chunks, current, size = [], [], 0
    for paragraph in text.split("\n\n"):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if current and size + len(paragraph) > chunk_chars:
            chunks.append("\n\n".join(current))
            current, size = [], 0
        current.append(paragraph)
        size += len(paragraph) + 2
    if current:
        chunks.append("\n\n".join(current))
    return chunks


def is_validation(chunk: str, validation_fraction: float) -> bool:
    """Deterministic: the first 8 bytes of the chunk's SHA-1 as a number in [0, 1) below the fraction."""
    digest = hashlib.sha1(chunk.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < validation_fraction


def split_documents(
    documents: Iterable[str], validation_fraction: float = 0.02, chunk_chars: int = 4000
) -> tuple[list[str], list[str]]:
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction={validation_fraction} must be in [0, 1)")
    train, validation = [], []
    for document in documents:
        for chunk in chunk_document(document, chunk_chars):
            (validation if is_validation(chunk, validation_fraction) else train).append(chunk)
    return train, validation


def load_corpus(
    files: str | os.PathLike | list | None = None,
    dataset: str | None = None,
    dataset_config: str | None = None,
    split: str = "train",
    streaming: bool = False,
    text_field: str = "text",
    builtin: str = "all",
    max_documents: int | None = None,
    validation_fraction: float = 0.02,
    validation_files: str | os.PathLike | list | None = None,
) -> Corpus:
    """Loads one source (``files``, else ``dataset``, else the built-in corpus) and splits it; with
    ``validation_files`` (a corpus already split by document, as ``bert-ode corpus build`` writes it) every
    document of ``files`` trains and the validation chunks are those files'.

    Raises ``FileNotFoundError`` for a missing path and ``ValueError`` for an unreadable, empty or unknown
    source.
    """
    if files and dataset:
        raise ValueError("give either data.files or data.dataset, not both")
    if validation_files and not files:
        raise ValueError("data.validation_files needs data.files: the training half of the same corpus")
    if validation_files:
        train = [c for d in load_files(files, text_field)[:max_documents] for c in chunk_document(d)]
        validation = [c for d in load_files(validation_files, text_field) for c in chunk_document(d)]
        if not train or not validation:
            which = "data.files" if not train else "data.validation_files"
            raise ValueError(f"the corpus is empty: {which} holds no text")
        return Corpus(train, validation, f"files {files}, validation files {validation_files}")
    if files:
        documents, description = load_files(files, text_field), f"files {files}"
    elif dataset:
        documents = load_hf_dataset(dataset, dataset_config, split, streaming, text_field, max_documents)
        description = (
            f"dataset {dataset}" + (f" ({dataset_config})" if dataset_config else "") + f" [{split}]"
        )
    else:
        documents, description = load_builtin(builtin), f"built-in corpus {builtin!r}"
    if max_documents is not None:
        documents = documents[:max_documents]
    train, validation = split_documents(documents, validation_fraction)
    if validation_fraction > 0 and not validation and len(train) > 1:
        # A corpus too small for its fraction still gets one validation chunk, the same one every time.
        last = max(range(len(train)), key=lambda i: hashlib.sha1(train[i].encode("utf-8")).digest())
        validation = [train.pop(last)]
    if not train:
        raise ValueError(f"the corpus ({description}) is empty: it holds no text to train on")
    return Corpus(train=train, validation=validation, description=description)
