"""Fine-tuning and evaluation on downstream tasks (``bert-ode finetune``, ``bert-ode evaluate``).

``config`` (``FinetuneConfig``, ``EvaluateConfig``), ``task_loading`` (checkpoint -> model with a head,
tokenizer, tokenized splits), ``protocol`` (``finetune``: seeds, Trainer, best-on-validation, test once),
``inference`` (prediction and scoring), ``evaluate`` (a fine-tuned checkpoint at several step counts),
``results`` (the typed ``results.json``) and ``report`` (``results.json`` / ``results.md`` on disk).
"""

from .config import EvaluateConfig, FinetuneConfig, TaskOptions
from .evaluate import evaluate
from .protocol import finetune
from .results import EvaluationResults, FinetuneResults

__all__ = [
    "EvaluateConfig",
    "EvaluationResults",
    "FinetuneConfig",
    "FinetuneResults",
    "TaskOptions",
    "evaluate",
    "finetune",
]
