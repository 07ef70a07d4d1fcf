"""Masked-LM pretraining (``bert-ode pretrain``): the config, the data, the loop, checkpoints.

``config`` (``PretrainConfig`` and its sections, presets), ``data`` (corpus -> tokenizer -> packed blocks),
``streaming`` (a dataset read as training goes), ``mlm_loss`` (head and loss on masked positions only),
``schedule`` (budget and learning rate), ``log`` (CSV / TensorBoard), ``checkpointing`` (atomic, checksummed),
``run_lock`` (one run per folder), ``compile`` (when ``torch.compile`` pays), ``loop`` (``pretrain``).
"""

from .checkpointing import DiskFull, latest_checkpoint, list_checkpoints
from .config import DataConfig, PretrainConfig, TokenizerConfig, TrainConfig, load_config
from .loop import PretrainResult, ValidationLoss, pretrain, validation_loss
from .mlm_loss import SparseMlmLoss

__all__ = [
    "DataConfig",
    "DiskFull",
    "PretrainConfig",
    "PretrainResult",
    "SparseMlmLoss",
    "TokenizerConfig",
    "TrainConfig",
    "ValidationLoss",
    "latest_checkpoint",
    "list_checkpoints",
    "load_config",
    "pretrain",
    "validation_loss",
]
