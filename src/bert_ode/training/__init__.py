"""Training loops and their bookkeeping (no model code): pretraining, checkpoints, configuration."""

from .checkpointing import latest_checkpoint, list_checkpoints
from .pretrain import PretrainResult, SparseMlmLoss, pretrain
from .pretrain_config import DataConfig, PretrainConfig, TokenizerConfig, TrainConfig, load_config

__all__ = [
    "DataConfig",
    "PretrainConfig",
    "PretrainResult",
    "SparseMlmLoss",
    "TokenizerConfig",
    "TrainConfig",
    "latest_checkpoint",
    "list_checkpoints",
    "load_config",
    "pretrain",
]
