"""ODE-BERT: BERT whose residual connections are ODE integration steps.

BERT's sublayer update ``LayerNorm(y + F(y))`` is one forward-Euler step (dt = 1) of ``dy/dt = F(y)`` followed by
a LayerNorm. Here the vector fields F (attention, feed-forward, or the whole layer) are separated from the update,
and the update is done by ``OdeBlock``: the one place where a residual connection becomes an ODE solve.
Parameter names are BERT's, so a BERT checkpoint loads unchanged; with the default config the model *is* BERT.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import CrossEntropyLoss
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutputWithPoolingAndCrossAttentions,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.models.bert.modeling_bert import (
    BertEmbeddings,
    BertLMPredictionHead,
    BertOnlyMLMHead,
    BertPooler,
    BertSelfAttention,
)
from transformers.pytorch_utils import apply_chunking_to_forward
from transformers.utils.generic import can_return_tuple
from transformers.utils.output_capturing import capture_outputs

from .configuration_bert_ode import BertOdeConfig
from .integrators import SolverStats, integrate_fixed
from .tableaux import GATED_METHODS, TABLEAUX

# ---------------------------------------------------------------------------------------------------------------
# Outputs: the HuggingFace outputs plus the cost of the solves.
# ---------------------------------------------------------------------------------------------------------------


# Every output adds, after HuggingFace's fields: ``nfe``, the vector-field evaluations of the whole forward pass,
# and ``solver_stats``, one ``SolverStats`` per ODE block in the order the blocks ran (layer by layer; within a
# layer, sublayer by sublayer).


@dataclass
class BertOdeModelOutput(BaseModelOutputWithPoolingAndCrossAttentions):
    nfe: int | None = None
    solver_stats: tuple[SolverStats, ...] | None = None


@dataclass
class BertOdeMaskedLMOutput(MaskedLMOutput):
    nfe: int | None = None
    solver_stats: tuple[SolverStats, ...] | None = None


@dataclass
class BertOdeSequenceClassifierOutput(SequenceClassifierOutput):
    nfe: int | None = None
    solver_stats: tuple[SolverStats, ...] | None = None


@dataclass
class BertOdeTokenClassifierOutput(TokenClassifierOutput):
    nfe: int | None = None
    solver_stats: tuple[SolverStats, ...] | None = None


@dataclass
class BertOdeQuestionAnsweringOutput(QuestionAnsweringModelOutput):
    nfe: int | None = None
    solver_stats: tuple[SolverStats, ...] | None = None


@dataclass
class BertOdeMultipleChoiceOutput(MultipleChoiceModelOutput):
    nfe: int | None = None
    solver_stats: tuple[SolverStats, ...] | None = None


# ---------------------------------------------------------------------------------------------------------------
# Vector fields: BERT's sublayers without their residual connection and LayerNorm.
# ---------------------------------------------------------------------------------------------------------------


class BertOdeSelfOutput(nn.Module):
    """BERT's attention output projection; the residual add and the LayerNorm are left to the ODE block."""

    def __init__(self, config: BertOdeConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.dense(hidden_states))


class BertOdeAttention(nn.Module):
    """The attention vector field: self-attention and its output projection, ``F_attn(y)``."""

    def __init__(self, config: BertOdeConfig, layer_idx: int | None = None):
        super().__init__()
        self.self = BertSelfAttention(config, layer_idx=layer_idx)
        self.output = BertOdeSelfOutput(config)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs):
        attention_output, _ = self.self(hidden_states, attention_mask=attention_mask, **kwargs)
        return self.output(attention_output)


class BertOdeIntermediate(nn.Module):
    def __init__(self, config: BertOdeConfig, intermediate_size: int):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, intermediate_size)
        act = config.hidden_act
        self.intermediate_act_fn = ACT2FN[act] if isinstance(act, str) else act

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.intermediate_act_fn(self.dense(hidden_states))


class BertOdeOutput(nn.Module):
    """BERT's feed-forward output projection; residual add and LayerNorm are left to the ODE block."""

    def __init__(self, config: BertOdeConfig, intermediate_size: int):
        super().__init__()
        self.dense = nn.Linear(intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.dense(hidden_states))


# ---------------------------------------------------------------------------------------------------------------
# The ODE block: where a residual connection becomes an integration.
# ---------------------------------------------------------------------------------------------------------------


class RungeKuttaGate(nn.Module):
    """The ODE Transformer's learnable RK2 weights: ``gamma = sigmoid(W [k1; k2] + b)``, one per token.

    Returns the stage weights ``(gamma, 1 - gamma)`` that replace Heun's ``(1/2, 1/2)``. Parameters have
    ``nn.Linear``'s names and shapes (``weight`` (1, 2 * hidden), ``bias`` (1,)) and start at zero, i.e. Heun.
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, 2 * hidden_size))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, stages):
        k1, k2 = stages
        hidden = k1.shape[-1]
        # W [k1; k2] + b without materialising the concatenation.
        logits = nn.functional.linear(k1, self.weight[:, :hidden], self.bias) + nn.functional.linear(
            k2, self.weight[:, hidden:]
        )
        gamma = torch.sigmoid(logits)  # (batch, seq, 1)
        return gamma, 1.0 - gamma


class OdeBlock(nn.Module):
    """Replaces one residual connection ``y + F(y)`` by integrating ``dy/dt = F(t, y)`` over ``[0, duration]``.

    The scheme and step count are read from the config at every call, so ``config.ode_steps`` (and a fixed-step
    ``config.ode_method``) may be changed after training. The gated RK2 owns ``gate``, one ``RungeKuttaGate`` per block.
    """

    def __init__(self, config: BertOdeConfig):
        super().__init__()
        self.config = config
        self.gate = RungeKuttaGate(config.hidden_size) if config.ode_method in GATED_METHODS else None

    def forward(
        self, field: Callable[[float, torch.Tensor], torch.Tensor], y: torch.Tensor, duration: float = 1.0
    ) -> tuple[torch.Tensor, SolverStats]:
        method = self.config.ode_method
        stage_weights = None
        if method in GATED_METHODS:
            if self.gate is None:
                raise ValueError(
                    f"ode_method={method!r} needs the learned gates, but this model was built with another method; "
                    "build (or convert) the model with ode_method='rk2-gated'"
                )
            stage_weights = self.gate
        return integrate_fixed(field, y, 0.0, duration, self.config.ode_steps, TABLEAUX[method], stage_weights)


class _Sublayer(NamedTuple):
    field: Callable[[torch.Tensor], torch.Tensor]  # F without residual or norm
    norm: nn.LayerNorm  # the sublayer's LayerNorm: applied to F's input (pre) or after the update (post)
    duration: float  # 1, or 1/2 for Strang's feed-forward half steps


class BertOdeLayer(GradientCheckpointingLayer):
    """One encoder layer: attention and feed-forward vector fields, integrated by ODE blocks.

    ``ode_scope="sublayer"``: one ``OdeBlock`` per sublayer (``attention_ode``, ``ffn_ode``, and ``macaron_ode`` for
    Strang splitting). ``ode_scope="layer"``: one ``layer_ode`` whose vector field is one pass through the layer.
    """

    def __init__(self, config: BertOdeConfig, layer_idx: int | None = None):
        super().__init__()
        self.config = config
        strang = config.splitting == "strang"
        ffn_size = config.intermediate_size // 2 if strang else config.intermediate_size
        if strang:
            self.macaron_intermediate = BertOdeIntermediate(config, ffn_size)
            self.macaron_output = BertOdeOutput(config, ffn_size)
        self.attention = BertOdeAttention(config, layer_idx=layer_idx)
        self.intermediate = BertOdeIntermediate(config, ffn_size)
        self.output = BertOdeOutput(config, ffn_size)
        if config.ode_scope == "sublayer":
            if strang:
                self.macaron_ode = OdeBlock(config)
            self.attention_ode = OdeBlock(config)
            self.ffn_ode = OdeBlock(config)
        else:
            self.layer_ode = OdeBlock(config)

    def _feed_forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return apply_chunking_to_forward(
            lambda h: self.output(self.intermediate(h)), self.config.chunk_size_feed_forward, 1, hidden_states
        )

    def _sublayers(self, attention_mask, kwargs) -> list[_Sublayer]:
        attention = _Sublayer(
            lambda h: self.attention(h, attention_mask, **kwargs), self.attention.output.LayerNorm, 1.0
        )
        if self.config.splitting == "lie":
            return [attention, _Sublayer(self._feed_forward, self.output.LayerNorm, 1.0)]
        macaron = _Sublayer(
            lambda h: self.macaron_output(self.macaron_intermediate(h)), self.macaron_output.LayerNorm, 0.5
        )
        return [macaron, attention, _Sublayer(self._feed_forward, self.output.LayerNorm, 0.5)]

    def _blocks(self) -> list[OdeBlock]:
        if self.config.ode_scope == "layer":
            return [self.layer_ode]
        return ([self.macaron_ode] if self.config.splitting == "strang" else []) + [self.attention_ode, self.ffn_ode]

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> tuple[torch.Tensor, tuple[SolverStats, ...]]:
        sublayers = self._sublayers(attention_mask, kwargs)
        pre_norm = self.config.norm_position == "pre"
        if self.config.ode_scope == "layer":
            sublayers = [_Sublayer(_layer_increment(sublayers, pre_norm), sublayers[-1].norm, 1.0)]
        stats = []
        for sublayer, block in zip(sublayers, self._blocks()):
            if pre_norm and self.config.ode_scope == "sublayer":
                field = lambda t, y, s=sublayer: s.field(s.norm(y))  # noqa: E731
            else:
                field = lambda t, y, s=sublayer: s.field(y)  # noqa: E731
            hidden_states, block_stats = block(field, hidden_states, sublayer.duration)
            if not pre_norm:
                hidden_states = sublayer.norm(hidden_states)
            stats.append(block_stats)
        return hidden_states, tuple(stats)


def _layer_increment(sublayers: list[_Sublayer], pre_norm: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """The whole-layer vector field: one Euler pass through the sublayers, minus its input.

    Pre-norm: each sublayer adds ``duration * F(LN(h))``. Post-norm: each sublayer adds ``duration * F(h)`` and is
    normalised, except the last, whose LayerNorm the block applies after the integration. With Euler and one step
    the block then reproduces the plain layer.
    """

    def increment(y: torch.Tensor) -> torch.Tensor:
        h = y
        for i, sublayer in enumerate(sublayers):
            update = sublayer.field(sublayer.norm(h) if pre_norm else h)
            h = h + (update if sublayer.duration == 1.0 else sublayer.duration * update)
            if not pre_norm and i < len(sublayers) - 1:
                h = sublayer.norm(h)
        return h - y

    return increment


class BertOdeEncoder(nn.Module):
    def __init__(self, config: BertOdeConfig):
        super().__init__()
        self.config = config
        self.layer = nn.ModuleList([BertOdeLayer(config, layer_idx=i) for i in range(config.num_hidden_layers)])
        # Pre-norm leaves the residual stream un-normalised; the encoder closes with one LayerNorm.
        self.LayerNorm = (
            nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.norm_position == "pre" else None
        )

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs):
        stats: list[SolverStats] = []
        for layer in self.layer:
            hidden_states, layer_stats = layer(hidden_states, attention_mask, **kwargs)
            stats.extend(layer_stats)
        if self.LayerNorm is not None:
            hidden_states = self.LayerNorm(hidden_states)
        return hidden_states, tuple(stats)


# ---------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------


class BertOdePreTrainedModel(PreTrainedModel):
    config_class = BertOdeConfig
    config: BertOdeConfig
    base_model_prefix = "bert"
    supports_gradient_checkpointing = True
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _no_split_modules = ["BertEmbeddings", "BertOdeLayer"]
    _can_record_outputs = {"hidden_states": BertOdeLayer, "attentions": BertSelfAttention}

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, BertLMPredictionHead):
            init.zeros_(module.bias)
        elif isinstance(module, BertEmbeddings):
            init.copy_(module.position_ids, torch.arange(module.position_ids.shape[-1]).expand((1, -1)))
            init.zeros_(module.token_type_ids)
        elif isinstance(module, RungeKuttaGate):
            # gamma = sigmoid(0) = 1/2: the gated RK2 starts as Heun's method.
            init.zeros_(module.weight)
            init.zeros_(module.bias)

    @classmethod
    def from_bert(cls, checkpoint, **config_overrides):
        """Builds this model from a HuggingFace BERT checkpoint (a path, a Hub name or a loaded BERT model).

        ``config_overrides`` set any config field, the ODE fields included. With none, the result computes exactly
        what the BERT model computes. Parameters the checkpoint lacks (a task head, gates, a pre-norm final
        LayerNorm) are freshly initialised; parameters of other heads are dropped.
        """
        from .convert import convert_bert

        return convert_bert(cls, checkpoint, **config_overrides)


class BertOdeModel(BertOdePreTrainedModel):
    def __init__(self, config: BertOdeConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.config = config
        self.gradient_checkpointing = False
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertOdeEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value

    @capture_outputs
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs,
    ) -> BertOdeModelOutput:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
        seq_length = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        if seq_length > self.config.max_position_embeddings:
            raise ValueError(
                f"sequence length {seq_length} exceeds max_position_embeddings={self.config.max_position_embeddings}"
                "; truncate the input (e.g. tokenizer(..., truncation=True, max_length="
                f"{self.config.max_position_embeddings}))"
            )
        embedding_output = self.embeddings(
            input_ids=input_ids, position_ids=position_ids, token_type_ids=token_type_ids, inputs_embeds=inputs_embeds
        )
        attention_mask = create_bidirectional_mask(
            config=self.config, inputs_embeds=embedding_output, attention_mask=attention_mask
        )
        sequence_output, stats = self.encoder(embedding_output, attention_mask=attention_mask, **kwargs)
        pooled_output = self.pooler(sequence_output) if self.pooler is not None else None
        return BertOdeModelOutput(
            last_hidden_state=sequence_output,
            pooler_output=pooled_output,
            nfe=sum(s.nfe for s in stats),
            solver_stats=stats,
        )


def _solver_fields(outputs: BertOdeModelOutput) -> dict:
    return {
        "hidden_states": outputs.hidden_states,
        "attentions": outputs.attentions,
        "nfe": outputs.nfe,
        "solver_stats": outputs.solver_stats,
    }


class BertOdeForMaskedLM(BertOdePreTrainedModel):
    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def __init__(self, config: BertOdeConfig):
        super().__init__(config)
        self.bert = BertOdeModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings):
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> BertOdeMaskedLMOutput:
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            return_dict=True,
            **kwargs,
        )
        logits = self.cls(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            loss = CrossEntropyLoss()(logits.view(-1, self.config.vocab_size), labels.view(-1))
        return BertOdeMaskedLMOutput(loss=loss, logits=logits, **_solver_fields(outputs))


class BertOdeForSequenceClassification(BertOdePreTrainedModel):
    def __init__(self, config: BertOdeConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertOdeModel(config)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> BertOdeSequenceClassifierOutput:
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            return_dict=True,
            **kwargs,
        )
        logits = self.classifier(self.dropout(outputs.pooler_output))
        loss = None
        if labels is not None:
            loss = self.loss_function(labels, logits, self.config)
        return BertOdeSequenceClassifierOutput(loss=loss, logits=logits, **_solver_fields(outputs))


class BertOdeForMultipleChoice(BertOdePreTrainedModel):
    def __init__(self, config: BertOdeConfig):
        super().__init__(config)
        self.bert = BertOdeModel(config)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> BertOdeMultipleChoiceOutput:
        # (batch, num_choices, seq) -> (batch * num_choices, seq)
        num_choices = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        flat = lambda x: None if x is None else x.reshape(-1, *x.shape[2:])  # noqa: E731
        outputs = self.bert(
            flat(input_ids),
            attention_mask=flat(attention_mask),
            token_type_ids=flat(token_type_ids),
            position_ids=flat(position_ids),
            inputs_embeds=flat(inputs_embeds),
            return_dict=True,
            **kwargs,
        )
        logits = self.classifier(self.dropout(outputs.pooler_output)).view(-1, num_choices)
        loss = CrossEntropyLoss()(logits, labels) if labels is not None else None
        return BertOdeMultipleChoiceOutput(loss=loss, logits=logits, **_solver_fields(outputs))


class BertOdeForTokenClassification(BertOdePreTrainedModel):
    def __init__(self, config: BertOdeConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertOdeModel(config, add_pooling_layer=False)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> BertOdeTokenClassifierOutput:
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            return_dict=True,
            **kwargs,
        )
        logits = self.classifier(self.dropout(outputs.last_hidden_state))
        loss = None
        if labels is not None:
            loss = CrossEntropyLoss()(logits.view(-1, self.num_labels), labels.view(-1))
        return BertOdeTokenClassifierOutput(loss=loss, logits=logits, **_solver_fields(outputs))


class BertOdeForQuestionAnswering(BertOdePreTrainedModel):
    def __init__(self, config: BertOdeConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertOdeModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
        **kwargs,
    ) -> BertOdeQuestionAnsweringOutput:
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            return_dict=True,
            **kwargs,
        )
        logits = self.qa_outputs(outputs.last_hidden_state)
        start_logits, end_logits = (x.squeeze(-1).contiguous() for x in logits.split(1, dim=-1))
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = self.loss_function(start_logits, end_logits, start_positions, end_positions)
        return BertOdeQuestionAnsweringOutput(
            loss=loss, start_logits=start_logits, end_logits=end_logits, **_solver_fields(outputs)
        )


__all__ = [
    "BertOdeForMaskedLM",
    "BertOdeForMultipleChoice",
    "BertOdeForQuestionAnswering",
    "BertOdeForSequenceClassification",
    "BertOdeForTokenClassification",
    "BertOdeModel",
    "BertOdePreTrainedModel",
    "OdeBlock",
]
