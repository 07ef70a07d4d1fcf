"""bert-ode: BERT whose residual connections are ODE integration steps, native to HuggingFace transformers."""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from .configuration_bert_ode import BertOdeConfig
from .integrators import SolverStats
from .modeling_bert_ode import (
    BertOdeForMaskedLM,
    BertOdeForMultipleChoice,
    BertOdeForQuestionAnswering,
    BertOdeForSequenceClassification,
    BertOdeForTokenClassification,
    BertOdeModel,
    BertOdePreTrainedModel,
)
from .tableaux import TABLEAUX, ButcherTableau

__version__ = "0.1.0"

_AUTO_CLASSES = {
    AutoModel: BertOdeModel,
    AutoModelForMaskedLM: BertOdeForMaskedLM,
    AutoModelForSequenceClassification: BertOdeForSequenceClassification,
    AutoModelForTokenClassification: BertOdeForTokenClassification,
    AutoModelForQuestionAnswering: BertOdeForQuestionAnswering,
    AutoModelForMultipleChoice: BertOdeForMultipleChoice,
}

AutoConfig.register(BertOdeConfig.model_type, BertOdeConfig, exist_ok=True)
# register_for_auto_class makes save_pretrained write an auto_map and copy the model code, so a checkpoint
# also loads with trust_remote_code=True where bert_ode is not installed.
BertOdeConfig.register_for_auto_class()
for _auto_class, _model_class in _AUTO_CLASSES.items():
    _auto_class.register(BertOdeConfig, _model_class, exist_ok=True)
    _model_class.register_for_auto_class(_auto_class.__name__)

__all__ = [
    "BertOdeConfig",
    "BertOdePreTrainedModel",
    "ButcherTableau",
    "SolverStats",
    "TABLEAUX",
    *sorted(model_class.__name__ for model_class in _AUTO_CLASSES.values()),
]
