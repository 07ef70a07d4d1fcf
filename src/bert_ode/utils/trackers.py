"""Experiment trackers a run reports to (``train.report_to`` of pretraining, ``report_to`` of fine-tuning):
the ones accelerate and transformers' Trainer drive, checked before any work starts."""

from __future__ import annotations

import importlib.util

# Tracker name -> the package it needs. TensorBoard runs offline: pretraining's default.
TRACKERS = {
    "tensorboard": "tensorboard",
    "wandb": "wandb",
    "mlflow": "mlflow",
    "comet_ml": "comet_ml",
    "aim": "aim",
    "clearml": "clearml",
    "dvclive": "dvclive",
    "swanlab": "swanlab",
    "trackio": "trackio",
}


def check_trackers(names: list[str], key: str) -> list[str]:
    """The trackers asked for (``[]`` or ``["none"]``: none); a ``ValueError`` naming the key for an unknown
    name or one whose package is not installed."""
    names = [name for name in names if name != "none"]
    for name in names:
        if name not in TRACKERS:
            raise ValueError(f"{key}: unknown tracker {name!r}; allowed: none, {', '.join(TRACKERS)}")
        if importlib.util.find_spec(TRACKERS[name]) is None:
            raise ValueError(f"{key}: tracker {name!r} needs the package {TRACKERS[name]} (pip install it)")
    return names


__all__ = ["TRACKERS", "check_trackers"]
