"""Scoring a sequence classifier on a tokenized split: logits, the task's metrics, and function evaluations.

A plain inference loop rather than ``Trainer.predict``: it records the model's ``nfe`` (function evaluations
per forward pass), which ``Trainer`` drops with the model's other solver outputs. ``config.ode_steps`` is read
at every forward pass, so one trained model can be scored with other step counts (``ode_steps``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding

from ..data.tasks import TaskSpec
from ..utils.metrics import compute_metrics, logits_to_predictions

# The inputs a sequence classifier takes; a tokenized split also holds its ``labels``.
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@torch.no_grad()
def predict(model, dataset, tokenizer, batch_size: int = 64, bf16: bool = False, progress: bool = False):
    """``(logits (n, num_labels) float32 array, mean function evaluations per forward pass)`` in dataset
    order."""
    columns = [c for c in dataset.column_names if c in MODEL_INPUTS]
    loader = DataLoader(
        dataset.select_columns(columns),
        batch_size=batch_size,
        shuffle=False,
        collate_fn=DataCollatorWithPadding(tokenizer),
    )
    was_training = model.training
    model.eval()
    device = model.device
    logits, nfes = [], []
    try:
        for batch in tqdm(loader, desc="scoring", disable=not progress, leave=False):
            batch = {key: value.to(device) for key, value in batch.items()}
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                outputs = model(**batch)
            logits.append(outputs.logits.float().cpu().numpy())
            nfes.append(float(outputs.nfe))
    finally:
        model.train(was_training)
    return np.concatenate(logits), float(np.mean(nfes))


def score(
    model,
    dataset,
    tokenizer,
    spec: TaskSpec,
    batch_size: int = 64,
    bf16: bool = False,
    progress: bool = False,
    return_predictions: bool = False,
) -> dict:
    """The task's metrics on a tokenized split, plus ``nfe`` (per forward pass), ``examples`` and ``seconds``.

    With ``return_predictions`` also ``predictions`` (class ids or values, a list) and ``logits`` (an array).
    """
    start = time.perf_counter()
    logits, nfe = predict(model, dataset, tokenizer, batch_size, bf16, progress)
    predictions = logits_to_predictions(logits, spec.is_regression)
    scores = compute_metrics(spec.metrics, predictions, np.asarray(dataset["labels"]))
    scores.update(nfe=nfe, examples=len(dataset), seconds=time.perf_counter() - start)
    if return_predictions:
        scores["predictions"] = predictions.tolist()
        scores["logits"] = logits
    return scores


def score_by_ode_steps(
    model,
    splits: dict,
    tokenizer,
    spec: TaskSpec,
    steps: Iterable[int],
    *,
    batch_size: int = 64,
    bf16: bool = False,
    progress: bool = False,
    return_predictions: bool = False,
) -> dict[str, dict[str, dict]]:
    """``{str(steps): {split: score(...)}}``: the tokenized ``splits`` scored with each step count in turn."""
    result = {}
    for count in steps:
        with model.ode_steps_as(count):
            result[str(count)] = {
                split: score(model, dataset, tokenizer, spec, batch_size, bf16, progress, return_predictions)
                for split, dataset in splits.items()
            }
    return result


__all__ = ["predict", "score", "score_by_ode_steps"]
