"""Downstream metrics: hand-computed cases, and agreement with scikit-learn / scipy on random inputs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from bert_ode.utils import metrics


def test_binary_metrics_by_hand():
    predictions = [1, 0, 1, 1, 0, 0]
    labels = [1, 0, 0, 1, 1, 0]  # TP 2, FP 1, FN 1, TN 2
    assert metrics.accuracy(predictions, labels) == pytest.approx(4 / 6)
    assert metrics.f1(predictions, labels) == pytest.approx(2 / 3)  # precision = recall = 2/3
    # MCC = (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = 3 / 9
    assert metrics.matthews_correlation(predictions, labels) == pytest.approx(1 / 3)


def test_correlations_by_hand():
    # x - mean = (-1, 0, 1), y - mean = (-1, 1, 0): r = 1 / sqrt(2 * 2); ranks equal the values, so Spearman
    # too
    assert metrics.pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert metrics.spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    # monotone but not linear: Spearman 1, Pearson below 1
    assert metrics.spearman([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(1.0)
    assert metrics.pearson([1, 2, 3, 4], [1, 4, 9, 16]) < 1.0
    assert metrics.pearson([2, 2, 2], [1, 2, 3]) == 0.0  # constant prediction: no correlation, no NaN


def test_agreement_with_sklearn_and_scipy():
    rng = np.random.default_rng(0)
    labels, predictions = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    assert metrics.accuracy(predictions, labels) == pytest.approx(skm.accuracy_score(labels, predictions))
    assert metrics.f1(predictions, labels) == pytest.approx(skm.f1_score(labels, predictions))
    assert metrics.matthews_correlation(predictions, labels) == pytest.approx(
        skm.matthews_corrcoef(labels, predictions)
    )
    labels5, predictions5 = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    assert metrics.macro_f1(predictions5, labels5) == pytest.approx(
        skm.f1_score(labels5, predictions5, average="macro")
    )
    x, y = rng.normal(size=100), rng.normal(size=100)
    assert metrics.pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0])
    assert metrics.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0])


def test_compute_metrics_and_trainer_adapter():
    from transformers import EvalPrediction

    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    labels = np.array([1, 0, 0])
    compute = metrics.trainer_compute_metrics(["accuracy", "f1"], regression=False)
    result = compute(EvalPrediction(predictions=logits, label_ids=labels))
    assert result == {"accuracy": pytest.approx(2 / 3), "f1": pytest.approx(2 / 3)}
    regression = metrics.trainer_compute_metrics(["pearson"], regression=True)
    assert regression(
        EvalPrediction(predictions=np.array([[1.0], [2.0], [3.0]]), label_ids=np.array([2.0, 4.0, 6.0]))
    ) == {"pearson": pytest.approx(1.0)}
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.compute_metrics(["bleu"], [0], [0])


def test_summarize_median_and_spread():
    summary = metrics.summarize([0.5, 0.7, 0.6])
    assert summary["median"] == pytest.approx(0.6)
    assert (summary["min"], summary["max"]) == (0.5, 0.7)
    assert summary["std"] == pytest.approx(0.1)  # sample std, ddof=1
    assert metrics.summarize([0.3])["std"] == 0.0
    with pytest.raises(ValueError, match="empty"):
        metrics.summarize([])
