"""Deprecated: the old home of pretraining (``bert_ode.training``). Pretraining now lives in
``bert_ode.pretrain``, fine-tuning in ``bert_ode.finetune``, the study in ``bert_ode.study``.

The names this package documented (``from bert_ode.training import pretrain, PretrainConfig``) and the module
``bert_ode.training.finetune`` keep working, with a ``DeprecationWarning`` naming the new place.
"""

import importlib
import warnings

# old name -> the module that defines it now
_MOVED = {
    **dict.fromkeys(
        ["DataConfig", "PretrainConfig", "TokenizerConfig", "TrainConfig", "load_config"],
        "bert_ode.pretrain.config",
    ),
    **dict.fromkeys(["PretrainResult", "pretrain"], "bert_ode.pretrain.loop"),
    "SparseMlmLoss": "bert_ode.pretrain.mlm_loss",
    **dict.fromkeys(["latest_checkpoint", "list_checkpoints"], "bert_ode.pretrain.checkpointing"),
}


def __getattr__(name: str):
    if name not in _MOVED:
        raise AttributeError(f"module 'bert_ode.training' has no attribute {name!r}")
    package = _MOVED[name].rsplit(".", 1)[0]
    warnings.warn(
        f"bert_ode.training.{name} moved: import it from {package}", DeprecationWarning, stacklevel=2
    )
    return getattr(importlib.import_module(_MOVED[name]), name)


__all__ = sorted(_MOVED)
