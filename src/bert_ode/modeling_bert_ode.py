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
from .solvers import MaxNfeExceeded, solve_with_backend
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

    The scheme, step count, backend and tolerances are read from the config at every call, so ``config.ode_steps``
    (and a fixed-step ``config.ode_method``, or the solver settings) may be changed after training. The gated RK2 owns
    ``gate``, one ``RungeKuttaGate`` per block.

    ``ode_backend="native"`` runs the project's own fixed-step integrator; the other backends go through the adapters
    of ``solvers.py`` (adaptive steps, the adjoint, per-sample steps). ``ode_checkpointing`` wraps either.
    """

    def __init__(self, config: BertOdeConfig, name: str = "ODE block"):
        super().__init__()
        self.config = config
        self.block_name = name  # for error messages, e.g. "encoder.layer.3.attention_ode"
        self.gate = RungeKuttaGate(config.hidden_size) if config.ode_method in GATED_METHODS else None
        # The continuous-depth block integrates over num_hidden_layers units of depth, ode_steps steps each.
        self.depth_units = config.num_hidden_layers if config.continuous_depth else 1

    def forward(
        self,
        field: Callable[[float, torch.Tensor], torch.Tensor],
        y: torch.Tensor,
        duration: float = 1.0,
        modules: tuple[nn.Module, ...] = (),
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, SolverStats]:
        """``modules``: those the field closes over (the adjoint differentiates their parameters);
        ``attention_mask``: the attention layers' mask, from which torchode learns where the padding is."""
        checkpointing = self.config.ode_checkpointing
        if checkpointing == "none" or not torch.is_grad_enabled():
            return self._solve(field, y, duration, modules, attention_mask)
        if checkpointing == "stage":
            return self._solve(_checkpointed(field), y, duration, modules, attention_mask)
        first_run: list[SolverStats] = []  # the backward pass re-runs the solve; report the forward one

        def solve(y0: torch.Tensor) -> torch.Tensor:
            y1, stats = self._solve(field, y0, duration, modules, attention_mask)
            if not first_run:
                first_run.append(stats)
            return y1

        y = torch.utils.checkpoint.checkpoint(solve, y, use_reentrant=False)
        return y, first_run[0]

    def _solve(self, field, y, duration, modules, attention_mask) -> tuple[torch.Tensor, SolverStats]:
        config = self.config
        method = config.ode_method
        steps = config.ode_steps * self.depth_units
        if config.ode_backend != "native":
            return solve_with_backend(
                field,
                y,
                duration,
                steps,
                backend=config.ode_backend,
                method=method,
                rtol=config.ode_rtol,
                atol=config.ode_atol,
                adjoint=config.ode_adjoint,
                max_nfe=config.ode_max_nfe,
                params=[p for module in modules for p in module.parameters()] if config.ode_adjoint else (),
                attention_mask=attention_mask,
                block=self.block_name,
            )
        tableau = TABLEAUX.get(method)
        if tableau is None:
            raise ValueError(
                f"{self.block_name}: ode_method={method!r} is not a fixed-step method, so ode_backend='native' cannot run it;"
                " choose ode_backend 'torchdiffeq', 'torchode' or 'torchdyn'"
            )
        if config.ode_max_nfe is not None and steps * tableau.stages > config.ode_max_nfe:
            raise MaxNfeExceeded(
                f"{self.block_name}: {steps} steps of {method!r} need {steps * tableau.stages} vector-field evaluations, "
                f"more than ode_max_nfe={config.ode_max_nfe}"
            )
        stage_weights = None
        if method in GATED_METHODS:
            if self.gate is None:
                raise ValueError(
                    f"ode_method={method!r} needs the learned gates, but this model was built with another method; "
                    "build (or convert) the model with ode_method='rk2-gated'"
                )
            stage_weights = self.gate
        return integrate_fixed(field, y, 0.0, duration, steps, tableau, stage_weights)


def _checkpointed(field):
    """One Runge-Kutta stage per checkpoint: only its input and output are kept for the backward pass."""

    def checkpointed_field(t, y):
        return torch.utils.checkpoint.checkpoint(field, t, y, use_reentrant=False)

    return checkpointed_field


class BertOdeTimeEmbedding(nn.Module):
    """``tau(t) = W [sin(w t); cos(w t)] + b``: how the weight-tied continuous-depth field knows its depth ``t``.

    ``w`` are 16 frequencies geometric from ``pi / depth`` to ``pi`` (``depth = num_hidden_layers``), so the slowest
    wave spans the encoder and the fastest tells neighbouring unit depths apart. ``W`` and ``b`` start at zero.
    """

    FREQUENCIES = 16

    def __init__(self, config: BertOdeConfig):
        super().__init__()
        self.depth = float(config.num_hidden_layers)
        self.weight = nn.Parameter(torch.zeros(config.hidden_size, 2 * self.FREQUENCIES))
        self.bias = nn.Parameter(torch.zeros(config.hidden_size))

    def forward(self, t, like: torch.Tensor) -> torch.Tensor:
        """``t``: a float, a 0-d or 1-element tensor, or one time per sample ``(batch,)`` (torchode)."""
        t = torch.as_tensor(t, device=like.device).to(like.dtype)
        exponents = torch.linspace(0.0, 1.0, self.FREQUENCIES, device=like.device, dtype=like.dtype)
        frequencies = (torch.pi / self.depth) * self.depth**exponents  # (frequencies,)
        if t.numel() == 1:
            angles = t.reshape(()) * frequencies
        else:
            angles = t.reshape(-1, 1, 1) * frequencies  # (batch, 1, frequencies): broadcasts over the sequence
        features = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
        return nn.functional.linear(features, self.weight, self.bias)


class _Sublayer(NamedTuple):
    field: Callable[[torch.Tensor], torch.Tensor]  # F without residual or norm
    norm: nn.LayerNorm  # the sublayer's LayerNorm: applied to F's input (pre) or after the update (post)
    duration: float  # 1, or 1/2 for Strang's feed-forward half steps
    modules: tuple[nn.Module, ...]  # what F's parameters live in (not the norm)


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
        prefix = f"encoder.layer.{layer_idx}."
        if config.ode_scope == "sublayer":
            if strang:
                self.macaron_ode = OdeBlock(config, prefix + "macaron_ode")
            self.attention_ode = OdeBlock(config, prefix + "attention_ode")
            self.ffn_ode = OdeBlock(config, prefix + "ffn_ode")
        else:
            self.layer_ode = OdeBlock(config, prefix + "layer_ode")
        # continuous_depth: this one layer is the field over all depths; it needs to know which depth it is at.
        self.time_embedding = BertOdeTimeEmbedding(config) if config.continuous_depth else None

    def _feed_forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return apply_chunking_to_forward(
            lambda h: self.output(self.intermediate(h)), self.config.chunk_size_feed_forward, 1, hidden_states
        )

    def _sublayers(self, attention_mask, kwargs) -> list[_Sublayer]:
        attention = _Sublayer(
            lambda h: self.attention(h, attention_mask, **kwargs),
            self.attention.output.LayerNorm,
            1.0,
            (self.attention.self, self.attention.output.dense),
        )
        feed_forward = (self.intermediate, self.output.dense)
        if self.config.splitting == "lie":
            return [attention, _Sublayer(self._feed_forward, self.output.LayerNorm, 1.0, feed_forward)]
        macaron = _Sublayer(
            lambda h: self.macaron_output(self.macaron_intermediate(h)),
            self.macaron_output.LayerNorm,
            0.5,
            (self.macaron_intermediate, self.macaron_output.dense),
        )
        return [macaron, attention, _Sublayer(self._feed_forward, self.output.LayerNorm, 0.5, feed_forward)]

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
            # Inside the whole-layer field the norms run too: all of them (pre), all but the last (post).
            norms = tuple(s.norm for s in (sublayers if pre_norm else sublayers[:-1]))
            modules = tuple(m for s in sublayers for m in s.modules) + norms
            duration = 1.0
            if self.time_embedding is not None:
                modules += (self.time_embedding,)
                duration = float(self.config.num_hidden_layers)
            sublayers = [_Sublayer(_layer_increment(sublayers, pre_norm), sublayers[-1].norm, duration, modules)]
        stats = []
        for sublayer, block in zip(sublayers, self._blocks()):
            modules = sublayer.modules
            if self.time_embedding is not None:
                tau = self.time_embedding
                field = lambda t, y, s=sublayer: s.field(y + tau(t, y))  # noqa: E731
            elif pre_norm and self.config.ode_scope == "sublayer":
                field = lambda t, y, s=sublayer: s.field(s.norm(y))  # noqa: E731
                modules = modules + (sublayer.norm,)
            else:
                field = lambda t, y, s=sublayer: s.field(y)  # noqa: E731
            hidden_states, block_stats = block(field, hidden_states, sublayer.duration, modules, attention_mask)
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
        # continuous_depth: one weight-tied layer integrated over [0, num_hidden_layers] (BertOdeLayer.time_embedding).
        layers = 1 if config.continuous_depth else config.num_hidden_layers
        self.layer = nn.ModuleList([BertOdeLayer(config, layer_idx=i) for i in range(layers)])
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
        elif isinstance(module, BertOdeTimeEmbedding):
            # tau(t) = 0: the continuous-depth field starts time-independent.
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
    "BertOdeTimeEmbedding",
    "OdeBlock",
]
