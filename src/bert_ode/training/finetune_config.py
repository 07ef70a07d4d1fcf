"""The settings of the ``finetune`` and ``evaluate`` commands: dataclasses, validated on construction.

The command line builds its options from these classes with transformers' ``HfArgumentParser`` (the ``help``
and ``aliases`` in each field's metadata); YAML and study configs build them with ``config_io.from_dict``. The
task options both commands share are declared once, in :class:`TaskOptions`.
"""

from __future__ import annotations

import os
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal

from ..convert import check_checkpoint
from ..data.tasks import BUILTIN_TASK, TaskData, load_task
from .config_io import bounded, check_bounds, check_output_dir
from .trackers import check_trackers

SPLIT_NAMES = ("train", "validation", "test")


@dataclass(kw_only=True)
class TaskOptions:
    """Which task, and how to read it: the arguments of ``bert_ode.data.tasks.load_task``."""

    task: str = field(
        default=BUILTIN_TASK,
        metadata={
            "help": "bbc-news (built-in, offline), a GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, "
            "rte), or a path to a CSV / TSV / JSON(L) / Parquet file or directory"
        },
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "local GLUE-shaped directory, or the directory of a local task"}
    )
    data_files: list[str] | None = field(
        default=None, metadata={"help": "local data file(s), split deterministically"}
    )
    text_column: str | None = field(default=None, metadata={"help": "text column of a local task"})
    text_pair_column: str | None = field(
        default=None, metadata={"help": "second text column of a local sentence-pair task"}
    )
    label_column: str = field(default="label", metadata={"help": "label column of a local task"})
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
    split_seed: int = field(default=0, metadata={"help": "seed of the deterministic data splits"})
    max_train_examples: int | None = field(
        default=None, metadata={"help": "deterministic subsample of train (quick runs)"}
    )
    max_eval_examples: int | None = field(
        default=None, metadata={"help": "deterministic subsample of validation and test"}
    )

    def __post_init__(self):
        if isinstance(self.data_files, (str, os.PathLike)):  # one file, as Python callers write it
            self.data_files = [str(self.data_files)]

    def load_task(self) -> TaskData:
        """The task these options name, loaded and split."""
        return load_task(self.task, **{name: getattr(self, name) for name in TASK_OPTIONS})


# The keyword arguments of ``load_task`` that TaskOptions carries (all of its fields but the task itself).
TASK_OPTIONS = tuple(name for name in TaskOptions.__dataclass_fields__ if name != "task")


def _check_at_least_one(config, names: tuple[str, ...]) -> None:
    for name in names:
        if int(getattr(config, name)) < 1:
            raise ValueError(f"{name}={getattr(config, name)!r} is invalid; it must be an integer >= 1")


@dataclass
class FinetuneConfig(TaskOptions):
    """One fine-tuning protocol: a checkpoint, a task, one hyperparameter set, several seeds.

    ``checkpoint`` is the only positional field. The hyperparameters are those of HuggingFace ``Trainer``
    (linear warm-up and decay, AdamW); the help text of each field says what it means.
    """

    checkpoint: str = field(
        metadata={"help": "BertOde or BERT checkpoint directory (or Hub name), with its tokenizer"}
    )
    _: KW_ONLY
    output_dir: str | None = field(
        default="finetune-results",
        metadata={
            "help": "where results.json / results.md go (and the models, with --save-models); "
            "None writes nothing"
        },
    )
    seeds: list[int] = field(
        default_factory=lambda: [0, 1, 2],
        metadata={
            "help": "one run per seed; the seed sets the head's initialisation, dropout and data order"
        },
    )
    learning_rate: float = field(default=5e-5, metadata={"help": "peak learning rate", "aliases": ["--lr"]})
    batch_size: int = field(default=32, metadata={"help": "training batch size per device"})
    eval_batch_size: int = field(default=64, metadata={"help": "batch size of validation and test scoring"})
    epochs: float = field(default=3.0, metadata={"help": "training epochs (fractions allowed)"})
    max_seq_length: int = field(
        default=128,
        metadata={
            "help": "inputs are truncated to this many tokens (at most the model's max_position_embeddings)"
        },
    )
    warmup_ratio: float = bounded(
        0.1, low=0, high=1, metadata={"help": "share of the training steps spent warming up"}
    )
    weight_decay: float = bounded(0.01, low=0, metadata={"help": "AdamW weight decay"})
    evaluations_per_epoch: int = field(
        default=2, metadata={"help": "validation evaluations per epoch (the model-selection points)"}
    )
    early_stopping_patience: int | None = bounded(
        None,
        low=1,
        metadata={"help": "stop after this many validation evaluations without improvement (unset: never)"},
    )
    ode_overrides: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "config fields set when the checkpoint is loaded, e.g. {'ode_method': 'heun'} to "
            "warm-start an ODE variant from a BERT checkpoint (command line: --set ode_method=heun); empty "
            "keeps the checkpoint's"
        },
    )
    eval_ode_steps: list[int] = field(
        default_factory=list, metadata={"help": "also score the selected model with these ode_steps"}
    )
    reinit_head: bool = field(
        default=False, metadata={"help": "replace a classification head of the wrong size by a fresh one"}
    )
    save_models: bool = field(
        default=False,
        metadata={"help": "save each seed's selected model (with its tokenizer) to OUTPUT_DIR/seed-N"},
    )
    tokenizer: str | None = field(
        default=None, metadata={"help": "tokenizer location, if not with the checkpoint"}
    )
    bf16: bool = field(default=False, metadata={"help": "bfloat16 autocast (CPUs with AVX-512 bf16, GPUs)"})
    progress: bool = field(default=True, metadata={"help": "progress bars"})
    report_to: list[str] = field(
        default_factory=list,
        metadata={
            "help": "experiment trackers of the Trainer: tensorboard (offline; logs under output_dir/logs), "
            "wandb, mlflow, ...; none by default"
        },
    )

    def __post_init__(self):
        super().__post_init__()
        self.seeds = [int(seed) for seed in self.seeds]
        self.eval_ode_steps = [int(steps) for steps in self.eval_ode_steps]
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        _check_at_least_one(
            self, ("batch_size", "eval_batch_size", "max_seq_length", "evaluations_per_epoch")
        )
        if not self.epochs > 0:
            raise ValueError(f"epochs={self.epochs!r} is invalid; it must be > 0")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate={self.learning_rate!r} is invalid; it must be > 0")
        check_bounds(self)
        check_output_dir(self.output_dir, "output_dir")
        check_checkpoint(self.checkpoint)
        self.report_to = check_trackers(list(self.report_to), "report_to")
        if any(steps < 1 for steps in self.eval_ode_steps):
            raise ValueError(
                f"eval_ode_steps={self.eval_ode_steps!r} is invalid; every step count must be >= 1"
            )


@dataclass
class EvaluateConfig(TaskOptions):
    """Scoring a fine-tuned checkpoint on one split of a task, with one or more step counts.

    ``checkpoint`` is the only positional field. Called from Python with a model object, ``checkpoint`` holds
    the model's class name (what the results record), and the object itself is passed to ``evaluate``.
    """

    checkpoint: str = field(
        metadata={"help": "fine-tuned checkpoint directory (e.g. OUTPUT_DIR/seed-0 of finetune)"}
    )
    _: KW_ONLY
    split: Literal["train", "validation", "test"] = field(
        default="test", metadata={"help": "the split to score"}
    )
    ode_steps: list[int] | None = field(
        default=None, metadata={"help": "step counts to score with (unset: the model's own)"}
    )
    ode_overrides: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "config fields set when the checkpoint is loaded (command line: --set ode_method=rk4)"
        },
    )
    batch_size: int = field(default=64, metadata={"help": "scoring batch size"})
    max_seq_length: int | None = field(
        default=None,
        metadata={
            "help": "inputs are truncated to this many tokens (at most the model's max_position_embeddings); "
            "unset: the length the model was fine-tuned with (saved with its tokenizer), else 128"
        },
    )
    tokenizer: str | None = field(
        default=None, metadata={"help": "tokenizer location, if not with the checkpoint"}
    )
    bf16: bool = field(default=False, metadata={"help": "bfloat16 autocast (CPUs with AVX-512 bf16, GPUs)"})
    progress: bool = field(default=True, metadata={"help": "progress bars"})
    output_dir: str | None = field(
        default=None, metadata={"help": "write results.json / results.md here (unset: nowhere)"}
    )

    def __post_init__(self):
        super().__post_init__()
        if self.split not in SPLIT_NAMES:
            raise ValueError(
                f"split={self.split!r} is invalid; allowed values: 'train', 'validation', 'test'"
            )
        if self.ode_steps is not None:
            self.ode_steps = [int(steps) for steps in self.ode_steps]
            if any(steps < 1 for steps in self.ode_steps):
                raise ValueError(f"ode_steps={self.ode_steps!r} is invalid; every step count must be >= 1")
        _check_at_least_one(self, ("batch_size",))
        if self.max_seq_length is not None:
            _check_at_least_one(self, ("max_seq_length",))
        check_output_dir(self.output_dir, "output_dir")
        check_checkpoint(self.checkpoint)


__all__ = ["TASK_OPTIONS", "EvaluateConfig", "FinetuneConfig", "TaskOptions"]
