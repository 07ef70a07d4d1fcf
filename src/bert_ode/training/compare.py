"""Deprecated module path: the study lives in ``bert_ode.study`` (``from bert_ode.study import compare``)."""

import warnings

from bert_ode.study import *  # noqa: F403 - the deprecated path offers the package's public names
from bert_ode.study import __all__  # noqa: F401

warnings.warn("bert_ode.training.compare moved: import from bert_ode.study", DeprecationWarning, stacklevel=2)
