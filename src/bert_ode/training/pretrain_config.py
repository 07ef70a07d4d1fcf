"""The pretraining configuration: four sections (data, tokenizer, model, train), read from YAML plus overrides.

Every key is checked: a key that no section defines (a typo) is a ``ValueError`` naming it. ``model`` takes any
``BertOdeConfig`` field, so every ODE setting is one override away (``model.ode_method=rk4``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..configuration_bert_ode import BertOdeConfig

# Where named presets (``smoke``, ``cpu``, ``gpu``) live: the repository's configs/ folder.
PRESET_DIR = Path(__file__).resolve().parents[3] / "configs"


@dataclass
class DataConfig:
    """Where the text comes from and how it becomes MLM batches.

    files: local text / JSONL files or folders (a list or one path); dataset: a HuggingFace dataset name or local
    dataset folder; neither: the built-in corpus ``builtin`` (``all``, ``austen`` or ``python-docs``).
    """

    files: list[str] | str | None = None
    dataset: str | None = None
    dataset_config: str | None = None
    split: str = "train"
    streaming: bool = False
    text_field: str = "text"
    builtin: str = "all"
    max_documents: int | None = None  # with streaming: how many documents to read from the stream
    validation_fraction: float = 0.02
    seq_len: int = 128
    mlm_probability: float = 0.15
    whole_word_mask: bool = False


@dataclass
class TokenizerConfig:
    """``path``: an existing tokenizer to use; otherwise a WordPiece tokenizer of ``vocab_size`` is trained."""

    path: str | None = None
    vocab_size: int = 8192
    min_frequency: int = 2
    lowercase: bool = True


@dataclass
class TrainConfig:
    """The optimisation recipe and the run's bookkeeping. Sizes are per process; budgets are global."""

    output_dir: str = "runs/pretrain"
    seed: int = 0
    batch_size: int = 32  # sequences per process and micro-step
    grad_accum: int = 1
    budget_tokens: int | None = 2_000_000  # tokens seen (all processes) before the schedule ends
    budget_minutes: float | None = None  # wall-clock training budget; with both, whichever ends first
    max_steps: int | None = None  # an optimizer-step cap (overrides budget_tokens for the schedule's length)
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    eps: float = 1e-6
    weight_decay: float = 0.01
    schedule: str = "triangle"  # triangle (one-cycle: linear up, linear down to 0), cosine, constant
    warmup_fraction: float = 0.1
    max_grad_norm: float | None = 0.5
    precision: str = "auto"  # auto (bf16 where the hardware has it), bf16, fp32
    eval_every: int = 200  # optimizer steps; 0 = only at the end
    eval_blocks: int = 256  # validation blocks per evaluation (at most)
    save_every: int = 500  # optimizer steps; 0 = only at the end
    keep_checkpoints: int = 2
    log_every: int = 10
    num_threads: int | None = None  # torch intra-op threads per process
    # auto: eager attention for bf16 on CPU (measured faster there: its bf16 matmuls beat the CPU flash-attention
    # kernel, 396 vs 435 ms a step at hidden 256 / 4 layers / 32 x 128), sdpa everywhere else.
    attn_implementation: str = "auto"
    init_from: str | None = None  # a BERT / BertOde checkpoint to start from instead of random weights
    progress_bar: bool = True


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

SCHEDULES = ("triangle", "cosine", "constant")
PRECISIONS = ("auto", "bf16", "fp32")
# BertOdeConfig fields that describe a file or are set by the run, not by the user.
_NOT_SETTABLE = {"transformers_version", "architectures", "vocab_size", "pad_token_id", "dtype"}


@dataclass
class PretrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_MODEL))
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        train, data = self.train, self.data
        if train.schedule not in SCHEDULES:
            raise ValueError(f"train.schedule={train.schedule!r}; allowed values: {', '.join(SCHEDULES)}")
        if train.precision not in PRECISIONS:
            raise ValueError(f"train.precision={train.precision!r}; allowed values: {', '.join(PRECISIONS)}")
        for name in ("batch_size", "grad_accum", "log_every"):
            if getattr(train, name) < 1:
                raise ValueError(f"train.{name}={getattr(train, name)} must be >= 1")
        if train.budget_tokens is None and train.budget_minutes is None and train.max_steps is None:
            raise ValueError("set a budget: train.budget_tokens, train.budget_minutes or train.max_steps")
        if not 0 <= train.warmup_fraction < 1:
            raise ValueError(f"train.warmup_fraction={train.warmup_fraction} must be in [0, 1)")
        max_positions = self.model.get("max_position_embeddings", BertOdeConfig().max_position_embeddings)
        if data.seq_len > max_positions:
            raise ValueError(
                f"data.seq_len={data.seq_len} exceeds model.max_position_embeddings={max_positions}; lower the "
                "sequence length or raise max_position_embeddings"
            )
        model_config(self, vocab_size=128, pad_token_id=0)  # BertOdeConfig validates the model fields


def model_config(config: PretrainConfig, vocab_size: int, pad_token_id: int, attn_implementation: str = "sdpa"
                 ) -> BertOdeConfig:
    return BertOdeConfig(
        **config.model,
        vocab_size=vocab_size,
        pad_token_id=pad_token_id,
        attn_implementation=attn_implementation,
    )


def resolve_attention(name: str, device_type: str, bf16: bool) -> str:
    """``train.attn_implementation``, with ``auto`` made concrete for this device and precision."""
    if name != "auto":
        return name
    return "eager" if device_type == "cpu" and bf16 else "sdpa"


def _model_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(BertOdeConfig)} - _NOT_SETTABLE


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Light type checking from the default's type: YAML ints become floats, everything else must match."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"config key {key!r} must be true or false, got {value!r}")
    elif isinstance(default, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif isinstance(default, int) and not (isinstance(value, int) and not isinstance(value, bool)):
        raise ValueError(f"config key {key!r} must be an integer, got {value!r}")
    elif isinstance(default, str) and not isinstance(value, str):
        raise ValueError(f"config key {key!r} must be a string, got {value!r}")
    return value


def _section_update(section: str, target, values: dict) -> None:
    if not isinstance(values, dict):
        raise ValueError(f"config section {section!r} must be a mapping, got {values!r}")
    if isinstance(target, dict):  # the model section
        allowed = _model_fields()
        for key, value in values.items():
            if key not in allowed:
                raise ValueError(f"unknown config key 'model.{key}': not a BertOdeConfig field that can be set")
            target[key] = value
        return
    defaults = {f.name: getattr(target, f.name) for f in dataclasses.fields(target)}
    for key, value in values.items():
        if key not in defaults:
            raise ValueError(
                f"unknown config key '{section}.{key}'; the {section} section has: {', '.join(sorted(defaults))}"
            )
        setattr(target, key, _coerce(f"{section}.{key}", value, defaults[key]))


def apply(config: PretrainConfig, values: dict) -> PretrainConfig:
    """Applies a nested ``{"train": {"lr": ...}}`` or dotted ``{"train.lr": ...}`` mapping; unknown keys raise."""
    nested: dict[str, dict] = {}
    for key, value in values.items():
        section, dot, rest = key.partition(".")
        if dot:
            nested.setdefault(section, {})[rest] = value
        elif isinstance(value, dict):
            nested.setdefault(section, {}).update(value)
        else:
            nested.setdefault(section, {})[""] = value
    for section, section_values in nested.items():
        if section not in ("data", "tokenizer", "model", "train"):
            raise ValueError(f"unknown config key {section!r}; the sections are data, tokenizer, model, train")
        if "" in section_values:
            raise ValueError(f"config key {section!r} is a section: set {section}.<key>=<value>")
        _section_update(section, getattr(config, section), section_values)
    return config


def resolve_config_path(name_or_path: str | os.PathLike) -> Path:
    """A YAML path, or the name of a preset in configs/ (``smoke``, ``cpu``, ``gpu``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    preset = PRESET_DIR / f"{name_or_path}.yaml"
    if preset.is_file():
        return preset
    # compare-*.yaml beside them are study presets (bert-ode compare), not pretraining recipes.
    presets = sorted(p.stem for p in PRESET_DIR.glob("*.yaml") if not p.stem.startswith("compare-")) \
        if PRESET_DIR.is_dir() else []
    raise FileNotFoundError(f"config {str(name_or_path)!r} not found (not a file; presets: {', '.join(presets)})")


def load_config(
    name_or_path: str | os.PathLike | None = None, overrides: dict | None = None
) -> PretrainConfig:
    """Defaults, then the YAML file (if any), then ``overrides`` (dotted keys); validated."""
    config = PretrainConfig()
    if name_or_path is not None:
        path = resolve_config_path(name_or_path)
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            raise ValueError(f"cannot parse config {path}: {error}") from error
        if not isinstance(values, dict):
            raise ValueError(f"config {path} must be a mapping of sections")
        apply(config, values)
    apply(config, overrides or {})
    config.validate()
    return config


def save_config(config: PretrainConfig, path: str | os.PathLike) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
