"""Downstream-task metrics, computed locally with scikit-learn and scipy (``evaluate.load`` needs the Hub).

Each metric takes ``(predictions, labels)``: class ids for classification metrics, floats for regression ones.
GLUE's official metrics: CoLA Matthews correlation; SST-2, QNLI, RTE, MNLI accuracy; MRPC and QQP F1 and
accuracy; STS-B Pearson and Spearman correlation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn import metrics as skm

from .records import Record


def accuracy(predictions, labels) -> float:
    return float(skm.accuracy_score(labels, predictions))


def f1(predictions, labels) -> float:
    """Binary F1 of the positive class (label 1), as GLUE reports it for MRPC and QQP."""
    return float(skm.f1_score(labels, predictions, average="binary", pos_label=1, zero_division=0))


def macro_f1(predictions, labels) -> float:
    return float(skm.f1_score(labels, predictions, average="macro", zero_division=0))


def matthews_correlation(predictions, labels) -> float:
    return float(skm.matthews_corrcoef(labels, predictions))


def _correlation(function, predictions, labels) -> float:
    predictions, labels = np.asarray(predictions, dtype=float), np.asarray(labels, dtype=float)
    if predictions.std() == 0 or labels.std() == 0:
        return 0.0  # undefined for a constant input; a model predicting a constant carries no ranking at all
    return float(function(predictions, labels)[0])


def pearson(predictions, labels) -> float:
    return _correlation(stats.pearsonr, predictions, labels)


def spearman(predictions, labels) -> float:
    return _correlation(stats.spearmanr, predictions, labels)


METRICS: dict[str, Callable[[Sequence, Sequence], float]] = {
    "accuracy": accuracy,
    "f1": f1,
    "macro_f1": macro_f1,
    "matthews_correlation": matthews_correlation,
    "pearson": pearson,
    "spearman": spearman,
}
REGRESSION_METRICS = ("pearson", "spearman")


def compute_metrics(names: Sequence[str], predictions, labels) -> dict[str, float]:
    """``{name: value}`` for each metric in ``names``."""
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known metrics: {', '.join(METRICS)}")
    return {name: METRICS[name](predictions, labels) for name in names}


def logits_to_predictions(logits, regression: bool) -> np.ndarray:
    """Class ids (argmax) for classification, the single output for regression.
    ``logits``: (n, num_labels)."""
    logits = np.asarray(logits)
    if regression:
        return logits.reshape(len(logits), -1)[:, 0]
    return logits.argmax(axis=-1)


def trainer_compute_metrics(names: Sequence[str], regression: bool) -> Callable:
    """A ``compute_metrics`` for HuggingFace ``Trainer``: takes an ``EvalPrediction``, returns
    ``{name: value}``."""

    def compute(eval_prediction) -> dict[str, float]:
        logits = eval_prediction.predictions
        if isinstance(
            logits, (tuple, list)
        ):  # extra model outputs, if any slipped through: logits come first
            logits = logits[0]
        return compute_metrics(names, logits_to_predictions(logits, regression), eval_prediction.label_ids)

    return compute


@dataclass
class SeedStats(Record):
    """Median and spread of one figure over seeds (``std`` is the sample standard deviation, 0 for one
    seed)."""

    median: float
    mean: float
    std: float
    min: float
    max: float
    n: int


def summarize(values: Sequence[float]) -> SeedStats:
    """``SeedStats`` of ``values`` (one per seed); an empty list is an error."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError("cannot summarize an empty list of values")
    return SeedStats(
        median=float(np.median(array)),
        mean=float(array.mean()),
        std=float(array.std(ddof=1)) if array.size > 1 else 0.0,
        min=float(array.min()),
        max=float(array.max()),
        n=int(array.size),
    )


def confidence_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Student-t interval for the mean of ``values`` (e.g. paired per-seed differences): ``mean +- t * s /
    sqrt(n)``. With one value the interval is unbounded (``(-inf, inf)``): one seed says nothing about
    spread."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError("cannot give a confidence interval for an empty list of values")
    if array.size == 1:
        return float("-inf"), float("inf")
    half = stats.t.ppf(0.5 + level / 2, df=array.size - 1) * array.std(ddof=1) / np.sqrt(array.size)
    return float(array.mean() - half), float(array.mean() + half)


__all__ = [
    "METRICS",
    "REGRESSION_METRICS",
    "SeedStats",
    "accuracy",
    "compute_metrics",
    "confidence_interval",
    "f1",
    "logits_to_predictions",
    "macro_f1",
    "matthews_correlation",
    "pearson",
    "spearman",
    "summarize",
    "trainer_compute_metrics",
]
