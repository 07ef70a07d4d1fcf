"""The settings of the ``finetune`` and ``evaluate`` commands: dataclasses, validated on construction.

The command line builds its options from these classes with transformers' ``HfArgumentParser`` (the ``help``
and ``aliases`` in each field's metadata); YAML and study configs build them with ``config_io.from_dict``. The
task options both commands share are declared once, in :class:`TaskOptions`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal

from ..convert import check_checkpoint, check_overrides
from ..data.tasks import BUILTIN_TASK, TaskData, load_task
from ..data.tokenizer import check_tokenizer_location
from ..utils.config_io import CheckedFields, bounded, check_output_dir
from ..utils.trackers import check_trackers

SPLIT_NAMES = ("train", "validation", "test")

PRECISION_HELP = (
    "auto: bf16 where the hardware multiplies it natively (CUDA with bf16, CPUs with AVX-512 BF16 or AMX), "
    "fp32 elsewhere; bf16; fp32"
)


@dataclass(kw_only=True)
class TaskOptions(CheckedFields):
    """Which task, and how to read it: the arguments of ``bert_ode.data.tasks.load_task``."""

    task: str = bounded(
        BUILTIN_TASK,
        help="bbc-news or rotten-tomatoes (built-in, offline), a GLUE task (cola, sst2, mrpc, stsb, qqp, "
        "mnli, qnli, rte), or a path to a CSV / TSV / JSON(L) / Parquet file or directory",
    )
    data_dir: str | None = bounded(None, help="local GLUE-shaped directory, or the directory of a local task")
    data_files: list[str] | None = bounded(None, help="local data file(s), split deterministically")
    text_column: str | None = bounded(None, help="text column of a local task")
    text_pair_column: str | None = bounded(None, help="second text column of a local sentence-pair task")
    label_column: str = bounded("label", help="label column of a local task")
    # nargs/const (passed to argparse by HfArgumentParser): a bare --regression means true, as for the other
    # flags.
    regression: bool | None = field(
        default=None,
        metadata={
            "help": "the local task's label is a number (unset: inferred from the labels)",
            "nargs": "?",
            "const": True,
        },
    )
    split_seed: int = bounded(0, help="seed of the deterministic data splits")
    max_train_examples: int | None = bounded(None, help="deterministic subsample of train (quick runs)")
    max_eval_examples: int | None = bounded(None, help="deterministic subsample of validation and test")

    def __post_init__(self):
        if isinstance(self.data_files, (str, os.PathLike)):  # one file, as Python callers write it
            self.data_files = [str(self.data_files)]

    def load_task(self) -> TaskData:
        """The task these options name, loaded and split."""
        return load_task(self.task, **{name: getattr(self, name) for name in TASK_OPTIONS})


# The keyword arguments of ``load_task`` that TaskOptions carries (all of its fields but the task itself).
TASK_OPTIONS = tuple(name for name in TaskOptions.__dataclass_fields__ if name != "task")


@dataclass
class FinetuneConfig(TaskOptions):
    """One fine-tuning protocol: a checkpoint, a task, one hyperparameter set, several seeds.

    ``checkpoint`` is the only positional field. The hyperparameters are those of HuggingFace ``Trainer``
    (linear warm-up and decay, AdamW); the help text of each field says what it means.
    """

    # None only in a study's protocol, where each unit sets its checkpoint.
    checkpoint: str | None = bounded(
        help="BertOde or BERT checkpoint directory (or Hub name), with its tokenizer"
    )
    _: KW_ONLY
    output_dir: str | None = bounded(
        "finetune-results",
        help="where results.json / results.md go (and the models, with --save-models); None writes nothing",
    )
    seeds: list[int] = bounded(
        default_factory=lambda: [0, 1, 2],
        min_items=1,
        help="one run per seed; the seed sets the head's initialisation, dropout and data order",
    )
    learning_rate: float = bounded(
        5e-5, low=0, low_open=True, help="peak learning rate", metadata={"aliases": ["--lr"]}
    )
    batch_size: int = bounded(32, low=1, help="training batch size per device")
    eval_batch_size: int = bounded(64, low=1, help="batch size of validation and test scoring")
    epochs: float = bounded(3.0, low=0, low_open=True, help="training epochs (fractions allowed)")
    max_seq_length: int = bounded(
        128,
        low=1,
        help="inputs are truncated to this many tokens (at most the model's max_position_embeddings)",
    )
    warmup_ratio: float = bounded(0.1, low=0, high=1, help="share of the training steps spent warming up")
    weight_decay: float = bounded(0.01, low=0, help="AdamW weight decay")
    evaluations_per_epoch: int = bounded(
        2, low=1, help="validation evaluations per epoch (the model-selection points)"
    )
    early_stopping_patience: int | None = bounded(
        None, low=1, help="stop after this many validation evaluations without improvement (unset: never)"
    )
    ode_overrides: dict[str, Any] = bounded(
        default_factory=dict,
        help="config fields set when the checkpoint is loaded, e.g. {'ode_method': 'heun'} to "
        "warm-start an ODE variant from a BERT checkpoint (command line: --set ode_method=heun); empty "
        "keeps the checkpoint's",
    )
    eval_ode_steps: list[int] = bounded(
        default_factory=list, low=1, help="also score the selected model with these ode_steps"
    )
    reinit_head: bool = bounded(False, help="replace a classification head of the wrong size by a fresh one")
    save_models: bool = bounded(
        False, help="save each seed's selected model (with its tokenizer) to OUTPUT_DIR/seed-N"
    )
    tokenizer: str | None = bounded(None, help="tokenizer location, if not with the checkpoint")
    precision: Literal["auto", "bf16", "fp32"] = bounded("auto", help=PRECISION_HELP)
    bf16: bool = bounded(False, help="the same as --precision bf16 (kept for older command lines)")
    progress: bool = bounded(True, help="progress bars")
    report_to: list[str] = bounded(
        default_factory=list,
        help="experiment trackers of the Trainer: tensorboard (offline; logs under output_dir/logs), "
        "wandb, mlflow, ...; none by default",
    )

    def __post_init__(self):
        super().__post_init__()
        self.check_fields()
        _bf16_alias(self)
        check_output_dir(self.output_dir, "output_dir")
        check_overrides(self.ode_overrides)  # before the task is tokenised (seconds), not after
        if self.checkpoint is not None:  # None: a study's protocol, the checkpoint set per unit
            check_checkpoint(self.checkpoint)
        if self.tokenizer is not None:
            check_tokenizer_location(self.tokenizer)
        self.report_to = check_trackers(list(self.report_to), "report_to")


@dataclass
class EvaluateConfig(TaskOptions):
    """Scoring a fine-tuned checkpoint on one split of a task, with one or more step counts.

    ``checkpoint`` is the only positional field. Called from Python with a model object, ``checkpoint`` holds
    the model's class name (what the results record), and the object itself is passed to ``evaluate``.
    """

    checkpoint: str = bounded(help="fine-tuned checkpoint directory (e.g. OUTPUT_DIR/seed-0 of finetune)")
    _: KW_ONLY
    split: Literal["train", "validation", "test"] = bounded("test", help="the split to score")
    ode_steps: list[int] | None = bounded(
        None, low=1, help="step counts to score with (unset: the model's own)"
    )
    ode_overrides: dict[str, Any] = bounded(
        default_factory=dict,
        help="config fields set when the checkpoint is loaded (command line: --set ode_method=rk4)",
    )
    allow_new_weights: bool = bounded(
        False,
        help="score even where --set adds weights the checkpoint lacks (RK2 gates, learned coefficients, "
        "step sizes): they keep their scheme's initial values, untrained",
    )
    batch_size: int = bounded(64, low=1, help="scoring batch size")
    max_seq_length: int | None = bounded(
        None,
        low=1,
        help="inputs are truncated to this many tokens (at most the model's max_position_embeddings); "
        "unset: the length the model was fine-tuned with (saved with its tokenizer), else 128",
    )
    tokenizer: str | None = bounded(None, help="tokenizer location, if not with the checkpoint")
    precision: Literal["auto", "bf16", "fp32"] = bounded("auto", help=PRECISION_HELP)
    bf16: bool = bounded(False, help="the same as --precision bf16 (kept for older command lines)")
    progress: bool = bounded(True, help="progress bars")
    output_dir: str | None = bounded(None, help="write results.json / results.md here (unset: nowhere)")

    def __post_init__(self):
        super().__post_init__()
        self.check_fields()
        _bf16_alias(self)
        check_output_dir(self.output_dir, "output_dir")
        check_overrides(self.ode_overrides)
        check_checkpoint(self.checkpoint)
        if self.tokenizer is not None:
            check_tokenizer_location(self.tokenizer)


def _bf16_alias(config) -> None:
    """``bf16=True`` is the older spelling of ``precision="bf16"``: it sets the precision and is cleared, so
    that a config derived from this one (``dataclasses.replace``) can change the precision."""
    if config.bf16:
        if config.precision == "fp32":
            raise ValueError("bf16=True contradicts precision='fp32'; set one of them")
        config.precision, config.bf16 = "bf16", False


def split_assignments(config_class, assignments: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``--set KEY=VALUE`` values of ``finetune`` / ``evaluate``, split into fields of ``config_class``
    (``learning_rate=1e-4``) and model config fields set when the checkpoint is loaded (``ode_overrides``:
    ``model.ode_method=heun``, or a bare ``ode_method=heun`` where the key is not a field of
    ``config_class``)."""
    settable = {f.name for f in dataclasses.fields(config_class)} - {"checkpoint", "ode_overrides"}
    fields, model = {}, {}
    for key, value in assignments.items():
        if key.startswith("model."):
            model[key.removeprefix("model.")] = value
        elif key in settable:
            fields[key] = value
        else:
            model[key] = value
    return fields, model


__all__ = ["TASK_OPTIONS", "EvaluateConfig", "FinetuneConfig", "TaskOptions", "split_assignments"]
