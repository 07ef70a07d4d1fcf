"""From a checkpoint and a task to what fine-tuning and evaluation run on: the model with its head, the
tokenizer, the tokenized splits.

Every checkpoint, plain BERT (``model_type`` ``bert``) and BertOde alike, is loaded through
``BertOdeForSequenceClassification.from_bert``: a BERT baseline is the euler BertOde, run by the very same
code.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import datasets
import torch
from transformers import PreTrainedTokenizerBase

from ..convert import read_checkpoint_config
from ..data.tasks import TaskData, TaskSpec
from ..data.tokenizer import load_tokenizer
from ..modeling_bert_ode import BertOdeForSequenceClassification


def checkpoint_name(checkpoint) -> str:
    """A checkpoint as results record it: its path, or the class name of a model object."""
    return str(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else type(checkpoint).__name__


def checkpoint_config(checkpoint) -> dict:
    """The config of a checkpoint (path, Hub name or model object) as a dict, without loading its weights
    (a local checkpoint that cannot load is refused here, naming what is wrong)."""
    return read_checkpoint_config(checkpoint)


def _head_size(config_dict: dict) -> int | None:
    """The size of the checkpoint's sequence-classification head; ``None`` when it has none."""
    architectures = config_dict.get("architectures") or []
    if not any(name.endswith("ForSequenceClassification") for name in architectures):
        return None
    return len(config_dict.get("id2label") or {}) or int(config_dict.get("num_labels", 2))


def _problem_type(spec: TaskSpec) -> str:
    return "regression" if spec.is_regression else "single_label_classification"


def _head_config(spec: TaskSpec) -> dict:
    """The config fields of a head for ``spec``: its size, problem type and label names."""
    fields = {"num_labels": spec.num_labels, "problem_type": _problem_type(spec)}
    if spec.label_names:
        fields["id2label"] = dict(enumerate(spec.label_names))
        fields["label2id"] = {label: index for index, label in enumerate(spec.label_names)}
    return fields


def _replace_head(model: BertOdeForSequenceClassification, spec: TaskSpec) -> None:
    """A fresh classification head of the task's size, in place of the checkpoint's."""
    model.classifier = torch.nn.Linear(model.config.hidden_size, spec.num_labels).to(model.dtype)
    model._init_weights(model.classifier)
    model.num_labels = spec.num_labels
    for key, value in _head_config(spec).items():
        setattr(model.config, key, value)


def load_model_for_task(
    checkpoint,
    spec: TaskSpec,
    ode_overrides: dict | None = None,
    *,
    reinit_head: bool = False,
    require_head: bool = False,
) -> BertOdeForSequenceClassification:
    """A ``BertOdeForSequenceClassification`` for ``spec`` from any BERT / BertOde checkpoint, through
    ``from_bert``.

    A checkpoint without a sequence-classification head gets a fresh one of the task's size. One with a head
    must match the task's number of labels (or ``reinit_head`` replaces it). ``require_head`` (evaluation)
    refuses a checkpoint with no fine-tuned head.
    """
    overrides = dict(ode_overrides or {})
    config_dict = checkpoint_config(checkpoint)
    head = _head_size(config_dict)
    name = (
        repr(str(checkpoint)) if isinstance(checkpoint, (str, os.PathLike)) else checkpoint_name(checkpoint)
    )
    if head is None and require_head:
        raise ValueError(
            f"checkpoint {name} has no fine-tuned sequence-classification head (architectures: "
            f"{config_dict.get('architectures')}); fine-tune it first (bert-ode finetune ... --save-models)"
        )
    if head is not None and head != spec.num_labels:
        if not reinit_head:
            raise ValueError(
                f"checkpoint {name} has a classification head with {head} label(s) but task {spec.name!r} "
                f"has {spec.num_labels} ({'regression' if spec.is_regression else 'classes'}); use a "
                "checkpoint "
                "fine-tuned for this task, or reinit_head=True (--reinit-head) to train a fresh head"
            )
        model = BertOdeForSequenceClassification.from_bert(checkpoint, **overrides)
        _replace_head(model, spec)
        return model
    if head is not None and require_head:  # scoring: class i must mean the same on both sides
        _check_label_names(config_dict, spec, name)
    # A head for this task keeps its label names; a checkpoint without one gets the task's.
    head_config = _head_config(spec) if head is None else {"problem_type": _problem_type(spec)}
    return BertOdeForSequenceClassification.from_bert(checkpoint, **head_config, **overrides)


def _check_label_names(config_dict: dict, spec: TaskSpec, name: str) -> None:
    """Refuses a head whose classes have other names than the task's: class i of the head would be scored
    against class i of the task, whatever each means (``neg``/``pos`` data for a ``negative``/``positive``
    head). Heads with transformers' placeholder names (``LABEL_0``, ...) carry no names to compare."""
    id2label = config_dict.get("id2label") or {}
    head_names = [str(id2label.get(str(i), id2label.get(i, ""))) for i in range(len(id2label))]
    if not spec.label_names or not head_names or all(n == f"LABEL_{i}" for i, n in enumerate(head_names)):
        return
    if list(head_names) != list(spec.label_names):
        raise ValueError(
            f"checkpoint {name} was fine-tuned for the classes {head_names}, but the task's are "
            f"{list(spec.label_names)}: score it on data with the head's classes (or fine-tune it again, "
            "--reinit-head)"
        )


def load_task_tokenizer(source) -> PreTrainedTokenizerBase:
    """The tokenizer of a checkpoint (or of ``source``), for classification: no masked-LM tokens required."""
    try:
        return load_tokenizer(source, require_mlm_tokens=False)
    except ValueError as error:
        raise ValueError(f"{error}; pass the tokenizer's location (tokenizer= / --tokenizer)") from error


def tokenize_splits(
    task: TaskData, tokenizer, max_seq_length: int, splits: Sequence[str] | None = None, progress: bool = True
) -> dict:
    """``{split: Dataset}`` of ``input_ids``, ``attention_mask``, ``token_type_ids``, ``labels``, unpadded."""

    def encode(batch):
        pair = batch["text_pair"] if task.spec.is_pair else None
        return tokenizer(batch["text"], pair, truncation=True, max_length=max_seq_length)

    bars_were_on = datasets.is_progress_bar_enabled()
    if not progress:
        datasets.disable_progress_bars()
    result = {}
    try:
        for split in splits or list(task.splits):
            dataset = task[split]
            text_columns = [c for c in dataset.column_names if c != "label"]
            encoded = dataset.map(
                encode, batched=True, remove_columns=text_columns, desc=f"tokenizing {split}"
            )
            result[split] = encoded.rename_column("label", "labels")
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
    return result


__all__ = [
    "checkpoint_config",
    "checkpoint_name",
    "load_model_for_task",
    "load_task_tokenizer",
    "tokenize_splits",
]


# What fine-tuning always adds to a pretrained encoder: not a consequence of --set.
_TASK_HEAD = ("classifier.", "bert.pooler.")


def untrained_by_overrides(model) -> list[str]:
    """The weights a loaded model has that its checkpoint did not (``from_bert``'s ``new_parameters``), the
    task head and pooler left out, each kind as ``"what (n tensors)"``."""
    from ..convert import describe_new_parameters

    names = [n for n in getattr(model, "new_parameters", []) if not n.startswith(_TASK_HEAD)]
    random, scheme = describe_new_parameters(names)
    return random + scheme
