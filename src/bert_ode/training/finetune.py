"""Deprecated module path: fine-tuning lives in ``bert_ode.finetune`` (``from bert_ode.finetune import
finetune, FinetuneConfig``)."""

import warnings

from bert_ode.finetune import *  # noqa: F403 - the deprecated path offers the package's public names
from bert_ode.finetune import __all__  # noqa: F401

warnings.warn(
    "bert_ode.training.finetune moved: import from bert_ode.finetune", DeprecationWarning, stacklevel=2
)
