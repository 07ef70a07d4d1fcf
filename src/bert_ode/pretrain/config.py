"""The pretraining configuration: four sections (data, tokenizer, model, train), read from YAML plus
overrides.

Read with the project's one config mechanism (``config_io``): a key that no section defines (a typo) or a
value of the wrong type is a ``ValueError`` naming it. ``model`` takes any
``BertOdeConfig`` field, so every ODE setting is one override away (``model.ode_method=rk4``).
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ..configuration_bert_ode import BertOdeConfig
from ..convert import check_checkpoint
from ..utils import markdown
from ..utils.config_io import (
    bounded,
    check_bounds,
    check_output_dir,
    from_dict,
    load_yaml,
    merge,
    nest,
    settings_rows,
    to_dict,
)
from ..utils.trackers import check_trackers

# The presets ship inside the package (package data), so a wheel install finds them as a source checkout does
# (the repository's configs/ is a link to this folder). A package installed as files, not zipped: a Path.
PRESET_DIR = Path(str(importlib.resources.files("bert_ode") / "configs"))


@dataclass
class DataConfig:
    """Where the text comes from and how it becomes MLM batches.

    files: local text / JSONL files or folders (a list or one path); dataset: a HuggingFace dataset name or
    local dataset folder; neither: the built-in corpus ``builtin`` (``all``, ``austen`` or ``python-docs``).
    """

    files: list[str] | str | None = None
    dataset: str | None = None
    dataset_config: str | None = None
    split: str = "train"
    streaming: bool = False
    text_field: str = "text"
    builtin: str = "all"
    max_documents: int | None = bounded(None, low=1)  # use only the first documents of the source
    # With streaming (a dataset read as training goes, streaming.py): the first documents are the validation
    # set, the next ones train the tokenizer.
    validation_documents: int = bounded(1000, low=1)
    tokenizer_documents: int = bounded(10_000, low=1)
    validation_fraction: float = bounded(0.02, low=0, high=1, high_open=True)
    # With files: these files are the validation split as given (a corpus split by document), files all train.
    validation_files: list[str] | str | None = None
    # Train on a fixed random sample of the packed training blocks holding this many tokens (the same sample
    # whatever train.seed; a budget past it repeats it): N unique tokens seen many times, the data control.
    max_train_tokens: int | None = bounded(None, low=1)
    seq_len: int = bounded(128, low=3)  # [CLS], at least one token, [SEP]
    mlm_probability: float = bounded(0.15, low=0, high=1, low_open=True, high_open=True)
    whole_word_mask: bool = False


@dataclass
class TokenizerConfig:
    """``path``: an existing tokenizer to use; otherwise a WordPiece tokenizer of ``vocab_size`` is
    trained."""

    path: str | None = None
    vocab_size: int = bounded(8192, low=8)
    min_frequency: int = bounded(2, low=1)
    lowercase: bool = True


@dataclass
class TrainConfig:
    """The optimisation recipe and the run's bookkeeping. Sizes are per process; budgets are global."""

    output_dir: str = "runs/pretrain"
    seed: int = 0
    batch_size: int = bounded(32, low=1)  # sequences per process and micro-step
    grad_accum: int = bounded(1, low=1)
    budget_tokens: int | None = bounded(2_000_000, low=1)  # tokens seen (all processes) in the schedule
    budget_minutes: float | None = bounded(None, low=0, low_open=True)  # wall clock; the first budget to end
    max_steps: int | None = bounded(None, low=1)  # optimizer steps (overrides budget_tokens)
    lr: float = bounded(1e-3, low=0, low_open=True)
    betas: list[float] = bounded(low=0, high=1, high_open=True, default_factory=lambda: [0.9, 0.98])
    eps: float = bounded(1e-6, low=0, low_open=True)
    weight_decay: float = bounded(0.01, low=0)
    # triangle: one-cycle, linear up and down to 0; wsd: warmup-stable-decay (the peak rate, then a linear
    # cooldown over the last cooldown_fraction of the budget); constant: the peak rate after the warmup.
    schedule: Literal["triangle", "cosine", "constant", "wsd"] = "triangle"
    warmup_fraction: float = bounded(0.1, low=0, high=1, high_open=True)
    warmup_tokens: int | None = bounded(None, low=1)  # the warmup in tokens (overrides warmup_fraction)
    cooldown_fraction: float = bounded(0.2, low=0, high=1, low_open=True)  # wsd: the share of the budget
    max_grad_norm: float | None = bounded(0.5, low=0)  # 0 or None: no clipping
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 where the hardware has it
    eval_every: int = bounded(200, low=0)  # optimizer steps; 0 = only at the end
    eval_blocks: int = bounded(256, low=1)  # validation blocks per evaluation (at most)
    # which eval_blocks: the first ones, or ones spread evenly over the split (a corpus whose validation
    # files are in source order, where the first blocks would all be one source's)
    eval_selection: Literal["first", "spread"] = "first"
    # validation blocks probed at each evaluation (token cosine, attention entropy: probes.jsonl); 0: none
    probe_blocks: int = bounded(0, low=0)
    save_every: int = bounded(500, low=0)  # optimizer steps; 0 = only at the end
    keep_checkpoints: int = bounded(2, low=1)
    log_every: int = bounded(10, low=1)
    num_threads: int | None = bounded(None, low=1)  # torch intra-op threads per process
    attn_implementation: str = "auto"  # auto: see device.resolve_attention
    init_from: str | None = None  # a BERT / BertOde checkpoint to start from instead of random weights
    progress_bar: bool = True
    # Trackers beside log.csv: tensorboard (offline), wandb, mlflow, ... (trackers.TRACKERS); [] for none.
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    # torch.compile of the encoder: true, false, or auto (native solver, >= compile.AUTO_MIN_STEPS steps).
    compile: bool | Literal["auto"] = "auto"


# Cramming-like small-model defaults: pre-LN, no dropout.
DEFAULT_MODEL = {
    "hidden_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "intermediate_size": 1024,
    "max_position_embeddings": 128,
    "norm_position": "pre",
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
}

# BertOdeConfig fields that describe a file or are set by the run, not by the user.
_NOT_SETTABLE = {"transformers_version", "architectures", "vocab_size", "pad_token_id", "dtype"}


@dataclass
class PretrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    # BertOdeConfig fields: over DEFAULT_MODEL for a model trained from scratch; over the checkpoint's own
    # config for one started from train.init_from (so that only what is set here changes, e.g. ODE fields).
    model: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return to_dict(self)

    def with_overrides(self, overrides: dict) -> PretrainConfig:
        """A new, validated config: this one with nested (``{"train": {"lr": ...}}``) or dotted
        (``{"train.lr": ...}``) values applied; unknown keys and wrong types are errors naming the key."""
        config = from_dict(PretrainConfig, merge(self.to_dict(), nest(overrides)))
        config.validate()
        return config

    def validate(self) -> None:
        self._validate_model_keys()
        for name in ("data", "tokenizer", "train"):
            check_bounds(getattr(self, name), name)
        train = self.train
        if len(train.betas) != 2:
            raise ValueError(f"train.betas={train.betas!r} is invalid; it must be two numbers in [0, 1)")
        check_output_dir(train.output_dir, "train.output_dir")
        check_trackers(train.report_to, "train.report_to")
        if train.init_from:
            check_checkpoint(train.init_from)
        if self.data.streaming and not self.data.dataset:
            raise ValueError("data.streaming=true reads a dataset as training goes: it needs data.dataset")
        if self.data.streaming and self.data.max_train_tokens is not None:
            raise ValueError(
                "data.max_train_tokens samples the packed corpus: it cannot apply to data.streaming"
            )
        if self.data.files is not None and not self.data.files:
            raise ValueError("data.files is empty; name at least one file or folder (or leave it unset)")
        if train.budget_tokens is None and train.budget_minutes is None and train.max_steps is None:
            raise ValueError("set a budget: train.budget_tokens, train.budget_minutes or train.max_steps")
        if train.warmup_tokens is not None and train.budget_tokens is None and train.max_steps is None:
            raise ValueError("train.warmup_tokens needs a budget in tokens or steps, not a wall-clock one")
        max_positions = self.model_fields().get("max_position_embeddings")
        if max_positions is not None and self.data.seq_len > max_positions:
            raise ValueError(
                f"data.seq_len={self.data.seq_len} exceeds model.max_position_embeddings={max_positions}; "
                "lower the "
                "sequence length or raise max_position_embeddings"
            )
        # BertOdeConfig validates the model fields; the heads against the width, as building the model would.
        model_config(self, vocab_size=128, pad_token_id=0).validate_heads()

    def model_fields(self) -> dict[str, Any]:
        """The BertOdeConfig fields this config sets: ``model`` over ``DEFAULT_MODEL`` from scratch, ``model``
        alone over a ``train.init_from`` checkpoint."""
        return dict(self.model) if self.train.init_from else {**DEFAULT_MODEL, **self.model}

    def _validate_model_keys(self) -> None:
        allowed = {f.name for f in dataclasses.fields(BertOdeConfig)} - _NOT_SETTABLE
        for key in self.model:
            if key not in allowed:
                raise ValueError(
                    f"unknown config key 'model.{key}': not a BertOdeConfig field that can be set"
                )


def model_config(
    config: PretrainConfig, vocab_size: int, pad_token_id: int, attn_implementation: str = "sdpa"
) -> BertOdeConfig:
    return BertOdeConfig(
        **config.model_fields(),
        vocab_size=vocab_size,
        pad_token_id=pad_token_id,
        attn_implementation=attn_implementation,
    )


def resolve_config_path(name_or_path: str | os.PathLike) -> Path:
    """A YAML path, or the name of a preset (``smoke``, ``cpu``, ``gpu``, ``warm``: ``bert_ode/configs/``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    preset = PRESET_DIR / f"{name_or_path}.yaml"
    if preset.is_file():
        return preset
    # compare-*.yaml beside them are study presets (bert-ode compare), not pretraining recipes.
    presets = (
        sorted(p.stem for p in PRESET_DIR.glob("*.yaml") if not p.stem.startswith("compare-"))
        if PRESET_DIR.is_dir()
        else []
    )
    raise FileNotFoundError(
        f"config {str(name_or_path)!r} not found (not a file; presets: {', '.join(presets)})"
    )


def load_config(
    name_or_path: str | os.PathLike | None = None, overrides: dict | None = None
) -> PretrainConfig:
    """Defaults, then the YAML file (if any), then ``overrides`` (dotted keys); validated."""
    values = load_yaml(resolve_config_path(name_or_path), "config") if name_or_path is not None else {}
    return PretrainConfig().with_overrides(merge(values, nest(overrides or {})))


def save_config(config: PretrainConfig, path: str | os.PathLike) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")


def settings_reference() -> str:
    """The Markdown table of every pretraining setting (key, default, allowed values) that the README shows;
    a test keeps the two equal."""
    rows = []
    for section, cls in (("data", DataConfig), ("tokenizer", TokenizerConfig), ("train", TrainConfig)):
        rows += settings_rows(cls, f"{section}.")
    return "\n".join(markdown.table(["key", "default", "allowed"], rows))
