"""ODE-BERT: BERT whose residual connections are ODE integration steps.

BERT's sublayer update ``LayerNorm(y + F(y))`` is one forward-Euler step (dt = 1) of ``dy/dt = F(y)`` followed
by a LayerNorm. Here the vector fields F (``AttentionField``, ``FeedForwardField``, or the whole layer,
``LayerField``) are separated from the update, and the update is done by ``OdeBlock``: the one place where a
residual connection becomes an ODE solve. Parameter names are BERT's, so a BERT checkpoint loads unchanged;
with the default config the model *is* BERT.

Multistep methods (``ab2``, ``ab3``, ``ab2-learned``) and PCformer's predictor-corrector read the vector-field
evaluations of earlier blocks of the same stream: the encoder passes one ``StreamHistories`` down the layers,
and each ``OdeBlock`` reads its stream's history there and records the history after its solve.

This file imports only model code: BERT checkpoint conversion (``bert_ode.convert``) and model cards are tools
of the installed package, not part of the code a checkpoint carries for ``trust_remote_code=True``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from dataclasses import dataclass, replace
from itertools import zip_longest
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import CrossEntropyLoss
from torch.utils.checkpoint import checkpoint
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
from .integrators import NO_HISTORY, MultistepHistory, SolverStats, VectorField
from .solvers import OdeProblem, Solution, SolverSettings, solve
from .tableaux import GATED_METHODS, MULTISTEP, PREDICTOR_CORRECTORS

# ------------------------------------------------------------------------------------------------------------
# Outputs: the HuggingFace outputs plus the cost of the solves.
# ------------------------------------------------------------------------------------------------------------


# Every output adds, after HuggingFace's fields: ``nfe``, the vector-field evaluations of the whole forward
# pass, and ``solver_stats``, one ``SolverStats`` per ODE block in the order the blocks ran (layer by layer;
# within a layer, sublayer by sublayer).


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


# ------------------------------------------------------------------------------------------------------------
# BERT's sublayers, with BERT's module and parameter names; the residual add and the LayerNorm are left to the
# layer.
# ------------------------------------------------------------------------------------------------------------


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
    """BERT's attention sublayer: self-attention and its output projection, ``F_attn(y)``."""

    def __init__(self, config: BertOdeConfig, layer_idx: int | None = None):
        super().__init__()
        self.self = BertSelfAttention(config, layer_idx=layer_idx)
        self.output = BertOdeSelfOutput(config)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs):
        """The projected attention output and the attention probabilities (``None`` from kernels that do not
        form them, e.g. sdpa)."""
        attention_output, attention_probs = self.self(hidden_states, attention_mask=attention_mask, **kwargs)
        return self.output(attention_output), attention_probs


class BertOdeAttentionMap(nn.Module):
    """Passes one attention map through, once per layer: what ``output_attentions`` records (BERT's
    convention, one map per layer, however many times a scheme evaluates the attention)."""

    def forward(self, attention_probs: torch.Tensor) -> torch.Tensor:
        return attention_probs


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


class BertOdeTimeEmbedding(nn.Module):
    """``tau(t) = W [sin(w t); cos(w t)] + b``: how the weight-tied continuous-depth field knows its depth
    ``t``.

    ``w`` are 16 frequencies geometric from ``pi / depth`` to ``pi`` (``depth = num_hidden_layers``), so the
    slowest wave spans the encoder and the fastest tells neighbouring unit depths apart. ``W`` and ``b`` start
    at zero.
    """

    FREQUENCIES = 16

    def __init__(self, config: BertOdeConfig):
        super().__init__()
        self.depth = float(config.num_hidden_layers)
        self.weight = nn.Parameter(torch.zeros(config.hidden_size, 2 * self.FREQUENCIES))
        self.bias = nn.Parameter(torch.zeros(config.hidden_size))

    def forward(self, t, like: torch.Tensor) -> torch.Tensor:
        """``t``: a float, a 0-d or 1-element tensor, or one time per sample ``(batch,)`` (torchode)."""
        # A float t goes straight to the state's dtype (not through float32: float64 solves need it exact).
        t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
        exponents = torch.linspace(0.0, 1.0, self.FREQUENCIES, device=like.device, dtype=like.dtype)
        frequencies = (torch.pi / self.depth) * self.depth**exponents  # (frequencies,)
        if t.numel() == 1:
            angles = t.reshape(()) * frequencies
        else:
            angles = (
                t.reshape(-1, 1, 1) * frequencies
            )  # (batch, 1, frequencies): broadcasts over the sequence
        features = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
        return nn.functional.linear(features, self.weight, self.bias)


# ------------------------------------------------------------------------------------------------------------
# Vector fields F(t, y): small modules that the layer builds at each forward pass (they bind its attention
# mask). A field calls BERT's modules above (hooks on them see every evaluation) and registers the modules its
# parameters live in, so that its parameters() are what the adjoint differentiates. That is not the whole
# attention / output module: each holds its sublayer's LayerNorm, which in post-norm the layer applies after
# the solve, outside F. A field is never an attribute of the layer, so registering the layer's modules here
# leaves the state_dict keys BERT's.
# ------------------------------------------------------------------------------------------------------------


def _call_unregistered(field: nn.Module, **modules: nn.Module) -> None:
    """Gives ``field`` modules to call without registering them (so their parameters are not the field's)."""
    for name, module in modules.items():
        object.__setattr__(field, name, module)


class AttentionField(nn.Module):
    """``F_attn(y)``: self-attention and its output projection (``BertOdeAttention``); ``F_attn(LN(y))`` in
    pre-norm."""

    def __init__(self, attention: BertOdeAttention, pre_norm: bool, attention_mask, kwargs: dict):
        super().__init__()
        _call_unregistered(self, attention=attention)
        self.self_attention, self.dense = attention.self, attention.output.dense
        self.norm = attention.output.LayerNorm if pre_norm else None
        self.attention_mask, self.kwargs = attention_mask, kwargs
        self.first_map: torch.Tensor | None = None  # the first evaluation's attention probabilities

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        output, attention_probs = self.attention(
            y if self.norm is None else self.norm(y), self.attention_mask, **self.kwargs
        )
        if self.first_map is None:
            self.first_map = attention_probs
        return output


class FeedForwardField(nn.Module):
    """``F_ffn(y) = dropout(W_2 act(W_1 y))`` (``intermediate``, then ``output`` without its LayerNorm);
    ``F_ffn(LN(y))`` in pre-norm. ``chunk_size > 0`` runs it in chunks of that many tokens (BERT's
    ``chunk_size_feed_forward``)."""

    def __init__(
        self, intermediate: BertOdeIntermediate, output: BertOdeOutput, pre_norm: bool, chunk_size: int
    ):
        super().__init__()
        _call_unregistered(self, output=output)
        self.intermediate, self.dense = intermediate, output.dense
        self.norm = output.LayerNorm if pre_norm else None
        self.chunk_size = chunk_size

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        h = y if self.norm is None else self.norm(y)
        if self.chunk_size > 0:  # only then: apply_chunking_to_forward inspects a signature at every call
            return apply_chunking_to_forward(self.feed_forward, self.chunk_size, 1, h)
        return self.feed_forward(h)

    def feed_forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.output(self.intermediate(h))


class LayerField(nn.Module):
    """The whole-layer vector field: one Euler pass through the sublayer fields, minus its input.

    Pre-norm: each sublayer adds ``duration * F(LN(h))``. Post-norm: each adds ``duration * F(h)`` and is
    normalised by ``post_norms``, except the last, whose LayerNorm the layer applies after the solve; with
    Euler and one step the block then reproduces the plain layer. With ``time_embedding`` (continuous depth)
    the field is time-conditioned: ``F(t, y) = pass(x) - x`` at ``x = y + tau(t)``.
    """

    def __init__(self, fields, durations, post_norms, time_embedding: BertOdeTimeEmbedding | None = None):
        super().__init__()
        self.fields = nn.ModuleList(fields)
        self.durations = tuple(durations)  # 1, or 1/2 for Strang's feed-forward half steps
        self.post_norms = nn.ModuleList(
            post_norms
        )  # one fewer than the fields in post-norm; none in pre-norm
        self.time_embedding = time_embedding

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        x = y if self.time_embedding is None else y + self.time_embedding(t, y)
        h = x
        for field, duration, norm in zip_longest(self.fields, self.durations, self.post_norms):
            update = field(t, h)
            h = h + (update if duration == 1.0 else duration * update)
            if norm is not None:
                h = norm(h)
        return h - x


# ------------------------------------------------------------------------------------------------------------
# The ODE block: where a residual connection becomes an integration.
# ------------------------------------------------------------------------------------------------------------


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


class MultistepCoefficients(nn.Module):
    """The learned coefficients ``(beta_0, beta_1, ...)`` of a multistep block (``ab2-learned``), newest
    evaluation first; initialised to the scheme's own (Euler's ``(1, 0)`` for ``ab2-learned``)."""

    def __init__(self, initial: tuple[float, ...]):
        super().__init__()
        self.initial = initial
        self.weight = nn.Parameter(torch.tensor(initial))


class LearnedStepSize(nn.Module):
    """A block's learned step size ``h`` (``ode_learned_step``): one scalar (``"block"``) or one per channel
    (``"channel"``), initialised to 1 (``weight``, as LayerScale's)."""

    def __init__(self, config: BertOdeConfig):
        super().__init__()
        size = config.hidden_size if config.ode_learned_step == "channel" else 1
        self.weight = nn.Parameter(torch.ones(size))


class _ScaledField(nn.Module):
    """``h * F(t, y)``: a module, so that the adjoint differentiates ``h`` with the field's parameters."""

    def __init__(self, field: VectorField, step_size: nn.Parameter):
        super().__init__()
        self.field, self.step_size = field, step_size

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        return self.step_size * self.field(t, y)


class EmaCoefficient(nn.Module):
    """PCformer's learned EMA coefficient ``alpha`` of a block's predictor weights."""

    def __init__(self, initial: float):
        super().__init__()
        self.initial = initial
        self.alpha = nn.Parameter(torch.tensor([initial]))


class StreamHistories:
    """What the multistep streams carry from block to block in one forward pass.

    A stream is one sublayer's blocks (``"attention"``, ``"ffn"``, ``"macaron"``) in the sublayer scope, or
    the layer blocks (``"layer"``) in the layer scope. The block of layer ``l`` reads the history its stream
    had after layer ``l - 1`` and records the one after its own solve. Keyed by layer, not by call order, so
    that recomputing a layer (gradient checkpointing) reads what its first run read.
    """

    def __init__(self):
        self._after: dict[tuple[str, int], MultistepHistory] = {}

    def before(self, stream: str, layer: int) -> MultistepHistory:
        return self._after.get((stream, layer - 1), NO_HISTORY)

    def record(self, stream: str, layer: int, history: MultistepHistory) -> None:
        self._after[(stream, layer)] = history


class OdeBlock(nn.Module):
    """Replaces one residual connection ``y + F(y)`` by integrating ``dy/dt = F(t, y)`` over
    ``[0, duration * ode_interval]``.

    The solver settings are built from the config at every call, so ``config.ode_steps`` (and a fixed-step
    ``config.ode_method``, or the solver fields) may be changed after training. ``solvers.solve`` runs the
    backend they name; ``ode_checkpointing`` wraps any of them. Learned schemes own their coefficients, one
    set per block: the gated RK2 its ``gate`` (``RungeKuttaGate``), ``ab2-learned`` its ``coefficients``
    (``MultistepCoefficients``), PCformer its ``ema`` (``EmaCoefficient``). Multistep and predictor-corrector
    blocks read and record their stream's history in the ``StreamHistories`` they are given (``stream``,
    ``layer_index``); without one, every call starts afresh.
    """

    def __init__(
        self, config: BertOdeConfig, name: str = "ODE block", stream: str = "layer", layer_index: int = 0
    ):
        super().__init__()
        self.config = config
        self.block_name = name  # for error messages, e.g. "encoder.layer.3.attention_ode"
        self.stream, self.layer_index = stream, layer_index
        method = config.ode_method
        self.gate = RungeKuttaGate(config.hidden_size) if method in GATED_METHODS else None
        learned_multistep = method in MULTISTEP and MULTISTEP[method].learned
        self.coefficients = (
            MultistepCoefficients(MULTISTEP[method].initial_coefficients(layer_index))
            if learned_multistep
            else None
        )
        self.step_size = LearnedStepSize(config) if config.ode_learned_step != "none" else None
        self.ema = (
            EmaCoefficient(PREDICTOR_CORRECTORS[method].alpha) if method in PREDICTOR_CORRECTORS else None
        )
        # The continuous-depth block integrates over num_hidden_layers units of depth, ode_steps steps each.
        self.depth_units = config.num_hidden_layers if config.continuous_depth else 1

    def forward(
        self,
        field: VectorField,
        y: torch.Tensor,
        duration: float = 1.0,
        attention_mask: torch.Tensor | None = None,
        histories: StreamHistories | None = None,
    ) -> tuple[torch.Tensor, SolverStats]:
        """``field``: ``F(t, y)``; where it is an ``nn.Module``, the adjoint differentiates its parameters.
        ``duration``: in units of depth (1, or 1/2 for a Strang half step). ``attention_mask``: the attention
        layers' mask, from which torchode learns where the padding is."""
        settings = SolverSettings.from_config(self.config, self.depth_units)
        method = settings.method
        if settings.adjoint and self.training and torch.is_grad_enabled():
            # ode_adjoint may have been switched on after a model with dropout was built
            self.config.validate_adjoint_field()
        multistep = method in MULTISTEP or method in PREDICTOR_CORRECTORS
        records_history = multistep and histories is not None
        carried = records_history and self.config.ode_history == "carry"
        history = histories.before(self.stream, self.layer_index) if carried else NO_HISTORY
        problem = OdeProblem(
            self._scaled(field),
            y,
            duration * settings.interval,
            self.block_name,
            attention_mask,
            self._stage_weights(method),
            history,
            self._coefficients(method),
        )
        if settings.checkpointing == "none" or not torch.is_grad_enabled():
            solution = solve(problem, settings)
        elif settings.checkpointing == "stage":
            solution = solve(replace(problem, field=_StageCheckpointed(problem.field)), settings)
        else:
            solution = _solve_block_checkpointed(problem, settings)
        if records_history:
            histories.record(self.stream, self.layer_index, solution.history)
        return solution.y, solution.stats

    def _scaled(self, field: VectorField) -> VectorField:
        """The field times the block's learned step size, where the config asks for one."""
        if self.config.ode_learned_step == "none":
            return field
        size = self.config.hidden_size if self.config.ode_learned_step == "channel" else 1
        if self.step_size is None or self.step_size.weight.numel() != size:
            built = "without them" if self.step_size is None else "with the other ode_learned_step"
            raise ValueError(
                f"ode_learned_step={self.config.ode_learned_step!r} needs the learned step sizes, but this "
                f"model was built {built}; build (or convert) the model with "
                f"ode_learned_step={self.config.ode_learned_step!r}"
            )
        return _ScaledField(field, self.step_size.weight)

    def _stage_weights(self, method: str) -> RungeKuttaGate | None:
        if method not in GATED_METHODS:
            return None
        return self._learned(method, self.gate, "gates")

    def _coefficients(self, method: str) -> torch.Tensor | None:
        if method in MULTISTEP and MULTISTEP[method].learned:
            return self._learned(method, self.coefficients, "multistep coefficients").weight
        if method in PREDICTOR_CORRECTORS:
            return self._learned(method, self.ema, "EMA coefficients").alpha[0]
        return None

    def _learned(self, method: str, module: nn.Module | None, what: str) -> nn.Module:
        if module is None:
            raise ValueError(
                f"ode_method={method!r} needs the learned {what}, but this model was built with another "
                f"method; build (or convert) the model with ode_method={method!r}"
            )
        return module


def _solve_block_checkpointed(problem: OdeProblem, settings: SolverSettings) -> Solution:
    """``ode_checkpointing="block"``: only the block's input (and its stream's history) is kept; the backward
    pass re-runs the whole solve."""
    first_run: list[Solution] = []  # the backward pass's re-run reports again; report the forward one

    def run(y0: torch.Tensor, *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
        history = replace(problem.history, evaluations=past)
        solution = solve(replace(problem, y0=y0, history=history), settings)
        if not first_run:
            first_run.append(solution)
        return (solution.y, *solution.history.evaluations)

    y1, *evaluations = checkpoint(run, problem.y0, *problem.history.evaluations, use_reentrant=False)
    stats, history = first_run[0].stats, first_run[0].history
    return Solution(y1, stats, replace(history, evaluations=tuple(evaluations)))


class _StageCheckpointed(nn.Module):
    """``ode_checkpointing="stage"``: one checkpoint per evaluation, so only its input is kept (its output
    feeds only linear combinations, which need no saved values; a gate's inputs are kept by the gate). A
    module holding the field, so that the field's parameters stay visible."""

    def __init__(self, field: VectorField):
        super().__init__()
        self.field = field

    def forward(self, t, y: torch.Tensor) -> torch.Tensor:
        return checkpoint(self.field, t, y, use_reentrant=False)


# ------------------------------------------------------------------------------------------------------------
# The encoder layer: sublayers and their vector fields, integrated by ODE blocks.
# ------------------------------------------------------------------------------------------------------------


class _Sublayer(NamedTuple):
    field: nn.Module  # F(t, y): what the block integrates
    norm: nn.LayerNorm  # in post-norm, applied after the block's solve (in pre-norm the field applies it)
    duration: float  # 1, or 1/2 for Strang's feed-forward half steps


class BertOdeLayer(GradientCheckpointingLayer):
    """One encoder layer: attention and feed-forward vector fields, integrated by ODE blocks.

    ``ode_scope="sublayer"``: one ``OdeBlock`` per sublayer (``attention_ode``, ``ffn_ode``, and
    ``macaron_ode`` for Strang splitting). ``ode_scope="layer"``: one ``layer_ode`` whose vector field is one
    pass through the layer.
    """

    def __init__(self, config: BertOdeConfig, layer_idx: int | None = None):
        super().__init__()
        self.config = config
        strang = config.splitting == "strang"
        ffn_size = config.intermediate_size // 2 if strang else config.intermediate_size
        if strang:  # the half before attention takes the odd unit, as convert.split_feed_forward's chunk does
            macaron_size = config.intermediate_size - ffn_size
            self.macaron_intermediate = BertOdeIntermediate(config, macaron_size)
            self.macaron_output = BertOdeOutput(config, macaron_size)
        self.attention = BertOdeAttention(config, layer_idx=layer_idx)
        self.attention_map = BertOdeAttentionMap()
        self.intermediate = BertOdeIntermediate(config, ffn_size)
        self.output = BertOdeOutput(config, ffn_size)
        prefix, index = f"encoder.layer.{layer_idx}.", layer_idx or 0
        if config.ode_scope == "sublayer":
            if strang:
                self.macaron_ode = OdeBlock(config, prefix + "macaron_ode", "macaron", index)
            self.attention_ode = OdeBlock(config, prefix + "attention_ode", "attention", index)
            self.ffn_ode = OdeBlock(config, prefix + "ffn_ode", "ffn", index)
        else:
            self.layer_ode = OdeBlock(config, prefix + "layer_ode", "layer", index)
        # continuous_depth: this one layer is the field over all depths; it needs to know which depth it is
        # at.
        self.time_embedding = BertOdeTimeEmbedding(config) if config.continuous_depth else None

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        histories: StreamHistories | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, tuple[SolverStats, ...]]:
        """``histories``: the multistep streams' histories of this forward pass (``BertOdeEncoder`` passes
        one); without it a multistep layer starts its streams afresh."""
        if histories is not None:
            self._check_checkpointing_keeps_history_gradients()
        sublayers = self._sublayers(attention_mask, kwargs)
        attention_field = next(s.field for s in sublayers if isinstance(s.field, AttentionField))
        if self.config.ode_scope == "layer":
            sublayers = [self._whole_layer(sublayers)]
        post_norm = self.config.norm_position == "post"
        stats = []
        for sublayer, block in zip(sublayers, self._blocks(), strict=True):
            hidden_states, block_stats = block(
                sublayer.field, hidden_states, sublayer.duration, attention_mask, histories
            )
            if post_norm:
                hidden_states = sublayer.norm(hidden_states)
            stats.append(block_stats)
        if attention_field.first_map is not None:
            # The layer's attention map: its first evaluation, at the block's input (BERT's map for Euler).
            self.attention_map(attention_field.first_map)
        return hidden_states, tuple(stats)

    def _check_checkpointing_keeps_history_gradients(self) -> None:
        """HF's reentrant layer checkpointing differentiates a layer's positional tensor inputs only; the
        history a multistep stream carries between layers would lose its gradients."""
        method = self.config.ode_method
        if method not in MULTISTEP and method not in PREDICTOR_CORRECTORS:
            return
        checkpointing = getattr(self, "_gradient_checkpointing_func", None)
        reentrant = getattr(checkpointing, "keywords", {}).get("use_reentrant", False)
        if self.gradient_checkpointing and self.training and reentrant:
            raise ValueError(
                f"ode_method={method!r} carries vector-field evaluations from layer to layer, which "
                "reentrant checkpointing cannot differentiate: use gradient_checkpointing_enable("
                "gradient_checkpointing_kwargs={'use_reentrant': False}) (transformers' default)"
            )

    def _sublayers(self, attention_mask, kwargs: dict) -> list[_Sublayer]:
        """In order: attention, feed-forward (Lie); or feed-forward half step, attention, feed-forward half
        step (Strang)."""
        pre_norm = self.config.norm_position == "pre"
        chunk_size = self.config.chunk_size_feed_forward
        attention = _Sublayer(
            AttentionField(self.attention, pre_norm, attention_mask, kwargs),
            self.attention.output.LayerNorm,
            1.0,
        )
        if self.config.splitting == "lie":
            field = FeedForwardField(self.intermediate, self.output, pre_norm, chunk_size)
            return [attention, _Sublayer(field, self.output.LayerNorm, 1.0)]
        before = FeedForwardField(self.macaron_intermediate, self.macaron_output, pre_norm, chunk_size)
        after = FeedForwardField(self.intermediate, self.output, pre_norm, chunk_size)
        return [
            _Sublayer(before, self.macaron_output.LayerNorm, 0.5),
            attention,
            _Sublayer(after, self.output.LayerNorm, 0.5),
        ]

    def _whole_layer(self, sublayers: list[_Sublayer]) -> _Sublayer:
        """``ode_scope="layer"``: the sublayers as one field; in post-norm the last LayerNorm closes the
        block."""
        post_norms = [s.norm for s in sublayers[:-1]] if self.config.norm_position == "post" else []
        fields, durations = [s.field for s in sublayers], [s.duration for s in sublayers]
        field = LayerField(fields, durations, post_norms, self.time_embedding)
        duration = float(self.config.num_hidden_layers) if self.time_embedding is not None else 1.0
        return _Sublayer(field, sublayers[-1].norm, duration)

    def _blocks(self) -> list[OdeBlock]:
        if self.config.ode_scope == "layer":
            return [self.layer_ode]
        return ([self.macaron_ode] if self.config.splitting == "strang" else []) + [
            self.attention_ode,
            self.ffn_ode,
        ]


# Config fields that decide which modules a model has: changing one after the model is built would run modules
# built for the old value (or none at all), so it is refused at the next forward instead.
STRUCTURAL_FIELDS = ("ode_scope", "continuous_depth", "splitting", "norm_position", "num_hidden_layers")


class BertOdeEncoder(nn.Module):
    def __init__(self, config: BertOdeConfig):
        super().__init__()
        self.config = config
        self.built_for = {name: getattr(config, name) for name in STRUCTURAL_FIELDS}
        # continuous_depth: one weight-tied layer integrated over [0, num_hidden_layers]
        # (BertOdeLayer.time_embedding).
        layers = 1 if config.continuous_depth else config.num_hidden_layers
        self.layer = nn.ModuleList([BertOdeLayer(config, layer_idx=i) for i in range(layers)])
        # Pre-norm leaves the residual stream un-normalised; the encoder closes with one LayerNorm.
        self.LayerNorm = (
            nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
            if config.norm_position == "pre"
            else None
        )

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs):
        self.check_structure()
        stats: list[SolverStats] = []
        histories = StreamHistories()  # multistep methods: each stream's evaluations, from layer to layer
        for layer in self.layer:
            hidden_states, layer_stats = layer(hidden_states, attention_mask, histories=histories, **kwargs)
            stats.extend(layer_stats)
        if self.LayerNorm is not None:
            hidden_states = self.LayerNorm(hidden_states)
        return hidden_states, tuple(stats)

    def check_structure(self) -> None:
        """Refuses a structural config field changed after the model was built (see ``STRUCTURAL_FIELDS``)."""
        for name, built in self.built_for.items():
            now = getattr(self.config, name)
            if now != built:
                raise ValueError(
                    f"config.{name} was set to {now!r} after the model was built with {built!r}; {name} "
                    f"decides which modules the model has: build the model again with {name}={now!r} (or "
                    "convert a checkpoint with it: BertOde*.from_bert / bert-ode convert --set)"
                )


# ------------------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------------------


# The saved ``auto_map``: every Auto class and the class of this file that it builds (by name: the copied
# model code is imported as ``modeling_bert_ode`` from the checkpoint folder).
REMOTE_CODE_AUTO_MAP = {
    "AutoConfig": "configuration_bert_ode.BertOdeConfig",
    "AutoModel": "modeling_bert_ode.BertOdeModel",
    "AutoModelForMaskedLM": "modeling_bert_ode.BertOdeForMaskedLM",
    "AutoModelForSequenceClassification": "modeling_bert_ode.BertOdeForSequenceClassification",
    "AutoModelForTokenClassification": "modeling_bert_ode.BertOdeForTokenClassification",
    "AutoModelForQuestionAnswering": "modeling_bert_ode.BertOdeForQuestionAnswering",
    "AutoModelForMultipleChoice": "modeling_bert_ode.BertOdeForMultipleChoice",
}


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
    # One attention map per layer (BertOdeAttentionMap), not one per vector-field evaluation.
    _can_record_outputs = {"hidden_states": BertOdeLayer, "attentions": BertOdeAttentionMap}

    def __init__(self, config: BertOdeConfig, *args, **kwargs):
        config.validate_heads()  # where transformers checks sizes: when a model is built
        super().__init__(config, *args, **kwargs)

    @classmethod
    def _can_set_attn_implementation(cls) -> bool:
        # transformers decides this by searching the modeling source for its attention interface; the
        # attention here is transformers' own BertSelfAttention, which dispatches through that interface at
        # every call.
        return True

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
        elif isinstance(module, MultistepCoefficients):
            # ab2-learned: (1, 0), Euler, i.e. BERT's residual.
            init.copy_(module.weight, torch.tensor(module.initial, dtype=module.weight.dtype))
        elif isinstance(module, EmaCoefficient):
            init.constant_(module.alpha, module.initial)
        elif isinstance(module, LearnedStepSize):
            # h = 1: the block is its scheme without a learned step (Euler: BERT's residual).
            init.ones_(module.weight)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """``PreTrainedModel.save_pretrained``, with an ``auto_map`` naming every head (transformers writes
        the saving class only, and a checkpoint saved by one head must load as any other with
        ``trust_remote_code=True`` where bert_ode is not installed), and a model card where the folder has
        none (``Trainer.save_model`` saves through here too)."""
        self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), **REMOTE_CODE_AUTO_MAP}
        saved = super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            self._write_card_if_missing(save_directory)
        return saved

    def _write_card_if_missing(self, directory) -> None:
        """A default card (``bert_ode.model_card``; bert-ode's own commands then write a fuller one). A card
        already there, the user's or one written before, is kept. Cards are a tool of the installed package,
        imported when called: the model code a checkpoint carries for remote code writes none."""
        if os.path.isfile(os.path.join(directory, "README.md")):
            return
        try:
            model_card = importlib.import_module("bert_ode.model_card")
        except ImportError:
            return
        model_card.write_model_card(directory, self, base_model=self.name_or_path or None)

    @classmethod
    def from_bert(cls, checkpoint, **config_overrides):
        """Builds this model from a HuggingFace BERT checkpoint (a path, a Hub name or a loaded BERT model).

        ``config_overrides`` set any config field, the ODE fields included. With none, the result computes
        exactly what the BERT model computes. Parameters the checkpoint lacks (a task head, gates, learned
        multistep or EMA coefficients, a pre-norm final LayerNorm) are freshly initialised; parameters of
        other heads are dropped.

        Conversion is a tool of the installed package (``bert_ode.convert``), imported here when called: the
        model code a checkpoint carries for ``trust_remote_code=True`` holds no conversion.
        """
        try:
            convert = importlib.import_module("bert_ode.convert")
        except ImportError as error:
            raise ImportError(
                "from_bert converts with the bert-ode package (bert_ode.convert), which is not installed "
                "here; the model code saved with a checkpoint does not carry conversion"
            ) from error
        return convert.convert_bert(cls, checkpoint, **config_overrides)

    @contextlib.contextmanager
    def ode_steps_as(self, steps: int):
        """``with model.ode_steps_as(n):`` the model integrates every block with ``n`` steps, and with its own
        count again afterwards (also when the block raises). The one way every evaluation at another step
        count (depth elasticity, refinement) changes it."""
        own_steps = self.config.ode_steps
        self.config.ode_steps = int(steps)
        try:
            yield self
        finally:
            self.config.ode_steps = own_steps


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
        _check_inputs(input_ids, inputs_embeds, self.config.hidden_size)
        batch_size, seq_length = (input_ids if input_ids is not None else inputs_embeds).shape[:2]
        if attention_mask is not None and attention_mask.dim() != 4:
            if tuple(attention_mask.shape) != (batch_size, seq_length):
                raise ValueError(
                    f"attention_mask has shape {tuple(attention_mask.shape)}; it must be (batch, sequence) = "
                    f"{(batch_size, seq_length)}, the shape of the inputs (or a 4-D attention mask)"
                )
        if seq_length > self.config.max_position_embeddings:
            raise ValueError(
                f"sequence length {seq_length} exceeds "
                f"max_position_embeddings={self.config.max_position_embeddings}"
                "; truncate the input (e.g. tokenizer(..., truncation=True, max_length="
                f"{self.config.max_position_embeddings}))"
            )
        embedding_output = self.embeddings(
            input_ids=input_ids,
            position_ids=position_ids,
            token_type_ids=token_type_ids,
            inputs_embeds=inputs_embeds,
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


def _check_inputs(
    input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None, hidden_size: int
) -> None:
    """Dtype, number of dimensions and empty sizes: read from the tensors' metadata, so they cost no device
    synchronisation and no graph break. Ids at or past ``vocab_size`` are not checked here: that reads the
    values (a device synchronisation on a GPU, in every forward); on a CPU the embedding lookup itself refuses
    them with "index out of range"."""
    if input_ids is not None:
        name, tensor, expected = "input_ids", input_ids, "(batch, sequence)"
        if input_ids.dtype.is_floating_point or input_ids.dtype.is_complex or input_ids.dtype == torch.bool:
            raise ValueError(
                f"input_ids has dtype {input_ids.dtype}; it must hold integer token ids (torch.long), as "
                "tokenizer(..., return_tensors='pt') gives them"
            )
        wanted_dims = 2
    else:
        name, tensor, expected = "inputs_embeds", inputs_embeds, f"(batch, sequence, {hidden_size})"
        if not inputs_embeds.dtype.is_floating_point:
            raise ValueError(f"inputs_embeds has dtype {inputs_embeds.dtype}; it must be floating point")
        wanted_dims = 3
    if tensor.dim() != wanted_dims:
        hint = f"; for one sequence add the batch dimension: {name}.unsqueeze(0)" if tensor.dim() == 1 else ""
        raise ValueError(f"{name} has shape {tuple(tensor.shape)}; it must be {expected}{hint}")
    if tensor.shape[0] == 0 or tensor.shape[1] == 0:
        raise ValueError(
            f"{name} has shape {tuple(tensor.shape)}: empty; a batch needs at least one sequence of at least "
            "one token"
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
        dropout = (
            config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        )
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
        dropout = (
            config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        )
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
        dropout = (
            config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        )
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
    "EmaCoefficient",
    "MultistepCoefficients",
    "OdeBlock",
    "StreamHistories",
]
