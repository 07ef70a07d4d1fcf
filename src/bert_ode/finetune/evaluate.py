"""Evaluation of a fine-tuned checkpoint: one task split, scored with one or more step counts."""

from __future__ import annotations

import dataclasses
import os
import sys

import torch

from ..data.tasks import TaskData
from ..utils.device import ComputeInfo, inference_device, resolve_precision
from .config import EvaluateConfig
from .inference import score_by_ode_steps
from .report import write_results
from .results import EvaluationResults, ModelDescription, TaskDescription
from .task_loading import (
    checkpoint_name,
    load_model_for_task,
    load_task_tokenizer,
    tokenize_splits,
    untrained_by_overrides,
)

# transformers' "no limit" is a huge model_max_length (1e30); below this, a tokenizer carries a real length.
_NO_LIMIT = 1_000_000
DEFAULT_MAX_SEQ_LENGTH = 128


def fine_tuned_length(tokenizer) -> int:
    """The sequence length a fine-tuned model was trained with, which ``finetune`` saves as its tokenizer's
    ``model_max_length``; 128 for a tokenizer without one."""
    length = getattr(tokenizer, "model_max_length", None)
    return int(length) if isinstance(length, int) and 0 < length < _NO_LIMIT else DEFAULT_MAX_SEQ_LENGTH


def evaluate(
    checkpoint,
    task: str | TaskData | None = None,
    *,
    tokenizer=None,
    return_predictions: bool = False,
    **options,
) -> EvaluationResults:
    """Scores a fine-tuned checkpoint (BertOde or plain BERT, with a sequence-classification head) on a task
    split.

    Call as ``evaluate(EvaluateConfig(...))`` or ``evaluate(checkpoint, task, **options)``, ``options`` being
    ``EvaluateConfig`` fields (``split``, ``ode_steps``, ``max_eval_examples``, ...). ``checkpoint`` may be a
    model object (then ``tokenizer`` must be given), ``task`` an already loaded ``TaskData``, ``tokenizer`` a
    tokenizer object. ``ode_steps``: the step counts to score with (``None``: the checkpoint's own). With
    ``return_predictions`` each entry of ``by_ode_steps`` also holds ``predictions`` (list) and ``logits``
    (array; not written to JSON).
    """
    config, source = _resolve(checkpoint, task, tokenizer, options)
    task_data = task if isinstance(task, TaskData) else config.load_task()
    model = load_model_for_task(source, task_data.spec, config.ode_overrides, require_head=True)
    _check_trained(model, config)
    model.to(inference_device())
    if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
        if config.tokenizer is None and not isinstance(source, (str, os.PathLike)):
            raise ValueError("a checkpoint given as a model needs tokenizer=")
        tokenizer = load_task_tokenizer(config.tokenizer or source)
    max_length = min(
        config.max_seq_length or fine_tuned_length(tokenizer), model.config.max_position_embeddings
    )
    encoded = tokenize_splits(task_data, tokenizer, max_length, [config.split], config.progress)
    steps = list(dict.fromkeys(config.ode_steps or [model.config.ode_steps]))
    dtype = resolve_precision(config.precision, inference_device())
    options = {"batch_size": config.batch_size, "bf16": dtype == torch.bfloat16, "progress": config.progress}
    by_steps = score_by_ode_steps(
        model, encoded, tokenizer, task_data.spec, steps, return_predictions=return_predictions, **options
    )
    results = EvaluationResults(
        checkpoint=config.checkpoint,
        task=TaskDescription.of(task_data),
        split=config.split,
        model=ModelDescription.of(model),
        main_metric=task_data.spec.main_metric,
        by_ode_steps={count: scores[config.split] for count, scores in by_steps.items()},
        compute=ComputeInfo.of(dtype, inference_device()),
    )
    if config.output_dir is not None:
        write_results(results, config.output_dir)
    return results


def _check_trained(model, config: EvaluateConfig) -> None:
    """An evaluation scores the checkpoint's trained weights: weights its ``ode_overrides`` add (a scheme's
    gates, coefficients, step sizes) are refused, or with ``allow_new_weights`` named on standard error."""
    untrained = untrained_by_overrides(model)
    if not untrained:
        return
    what = ", ".join(untrained)
    if not config.allow_new_weights:
        raise ValueError(
            f"the model settings {config.ode_overrides} add weights checkpoint {config.checkpoint!r} does "
            f"not have: {what}; untrained, so this would not score the checkpoint. Fine-tune with these "
            "settings, or pass --allow-new-weights (allow_new_weights=True) to score them at their initial "
            "values"
        )
    print(f"evaluate: scoring weights the checkpoint does not have, untrained: {what}", file=sys.stderr)


def _resolve(checkpoint, task, tokenizer, options: dict) -> tuple[EvaluateConfig, object]:
    """The run's settings, and what to load the model from (a path, or the model object given)."""
    allowed = {f.name for f in dataclasses.fields(EvaluateConfig)} - {"checkpoint", "task", "tokenizer"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"unknown evaluate option(s) {unknown}; the options are {', '.join(sorted(allowed))}"
        )
    named = {}
    if isinstance(task, str):
        named["task"] = task
    if isinstance(tokenizer, (str, os.PathLike)):
        named["tokenizer"] = str(tokenizer)
    if isinstance(checkpoint, EvaluateConfig):
        return dataclasses.replace(checkpoint, **named, **options), checkpoint.checkpoint
    return EvaluateConfig(checkpoint_name(checkpoint), **named, **options), checkpoint


__all__ = ["evaluate"]
