"""Downstream baselines that need no pretraining: the majority class and TF-IDF + logistic regression.

A pretrained encoder is only worth its compute on a task where it beats these on the same splits; a
from-scratch encoder that does not beat TF-IDF has not learned anything a bag of words lacks. Both are scored
with the task's own metrics (``metrics.compute_metrics``), selected on nothing (one fixed, standard setting
each), so they are reference points, not tuned competitors.
"""

from __future__ import annotations

import numpy as np
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline

from ..data.tasks import TaskData
from ..utils.metrics import compute_metrics

BASELINES = ("majority", "tfidf-logreg")


def _texts(dataset, pair: bool) -> list[str]:
    if not pair:
        return list(dataset["text"])
    return [f"{a} [SEP] {b}" for a, b in zip(dataset["text"], dataset["text_pair"], strict=True)]


def _estimator(name: str, regression: bool):
    if name == "majority":
        return DummyRegressor(strategy="mean") if regression else DummyClassifier(strategy="most_frequent")
    # Word uni- and bigrams, sublinear term frequency: the usual strong bag-of-words text classifier.
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True, max_features=200_000)
    model = Ridge(alpha=1.0) if regression else LogisticRegression(C=10.0, max_iter=2000)
    return make_pipeline(vectorizer, model)


def baseline_scores(
    task: TaskData, splits: tuple[str, ...] = ("validation", "test"), shorten=None
) -> dict[str, dict]:
    """``{baseline: {split: {metric: value}}}``: each baseline fitted on ``train`` and scored on
    ``splits``. ``shorten`` (a function of a list of texts): what the baselines see of each text, e.g. only
    the first tokens an encoder sees (``first_tokens``), so that both read the same words."""
    spec = task.spec
    pair, regression = spec.is_pair, spec.is_regression
    shorten = shorten or (lambda texts: texts)
    train_labels = np.asarray(task["train"]["label"])
    scores = {}
    for name in BASELINES:
        estimator = _estimator(name, regression).fit(shorten(_texts(task["train"], pair)), train_labels)
        scores[name] = {
            split: compute_metrics(
                spec.metrics,
                estimator.predict(shorten(_texts(task[split], pair))),
                np.asarray(task[split]["label"]),
            )
            for split in splits
        }
    return scores


def first_tokens(tokenizer, max_length: int):
    """A ``shorten`` for ``baseline_scores``: each text cut to the words of its first ``max_length`` tokens
    (special tokens included), as an encoder fine-tuned with ``max_seq_length`` sees it."""

    def shorten(texts: list[str]) -> list[str]:
        encoded = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
        return tokenizer.batch_decode(encoded, skip_special_tokens=True)

    return shorten
