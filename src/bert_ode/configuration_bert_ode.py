"""Configuration of ODE-BERT: a ``BertConfig`` plus the fields that turn residual connections into ODE
steps.

Like transformers' own config files, this one imports no torch (nor any model code): the methods and backends
it validates against are the torch-free tables of ``methods`` and ``tableaux``, so a config loads where torch
is not installed (tests/test_model_files.py). (Where torch is installed, transformers itself imports it.)
"""

from __future__ import annotations

import importlib
import math
from typing import Any, ClassVar, Literal, get_args

from transformers import BertConfig

from .methods import ODE_BACKENDS, ODE_METHODS, check_backend

OdeScope = Literal["sublayer", "layer"]
NormPosition = Literal["post", "pre"]
Splitting = Literal["lie", "strang"]
Checkpointing = Literal["none", "block", "stage"]
OdeHistory = Literal["carry", "restart"]
LearnedStep = Literal["none", "block", "channel"]
# Methods and backends are typed `str`: their values are the keys of the tables that define them
# (``tableaux``, ``methods.BACKEND_TABLE``), so adding a scheme or a backend stays one entry there.


def _one_of(*allowed):
    def check(field: str, value: Any) -> None:
        if value not in allowed:
            raise ValueError(
                f"{field}={value!r} is not supported; allowed values: {', '.join(map(repr, allowed))}"
            )

    return check


def _positive_int(field: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{field}={value!r} is invalid; it must be an integer >= 1")


def _positive_int_or_none(field: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{field}={value!r} is invalid; it must be None (no bound) or an integer >= 1")


def _positive_number(field: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError(f"{field}={value!r} is invalid; it must be a finite number > 0")


def _activation_names():
    """transformers' activation names. Its table lives in a torch module, so it is read when a config is
    checked, not when this file is imported; where torch is not installed (no model can be built there) the
    check is left out and the config still loads."""
    try:
        return importlib.import_module("transformers.activations").ACT2FN
    except ImportError:
        return None


def _boolean(field: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{field}={value!r} is invalid; it must be True or False")


# One check per ODE field, run on construction and on every later assignment.
# Size fields a model cannot be built with unless they are positive integers.
_SIZE_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
)

_FIELD_CHECKS = {
    "ode_method": _one_of(*ODE_METHODS),
    "ode_steps": _positive_int,
    "ode_interval": _positive_number,
    "ode_scope": _one_of(*get_args(OdeScope)),
    "norm_position": _one_of(*get_args(NormPosition)),
    "splitting": _one_of(*get_args(Splitting)),
    "ode_backend": _one_of(*ODE_BACKENDS),
    "ode_rtol": _positive_number,
    "ode_atol": _positive_number,
    "ode_adjoint": _boolean,
    "ode_max_nfe": _positive_int_or_none,
    "ode_checkpointing": _one_of(*get_args(Checkpointing)),
    "continuous_depth": _boolean,
    "ode_history": _one_of(*get_args(OdeHistory)),
    "ode_learned_step": _one_of(*get_args(LearnedStep)),
}


class BertOdeConfig(BertConfig):
    r"""Configuration of a BertOde model: every field of [`BertConfig`] plus the ODE fields below.

    With the defaults the model is exactly BERT, so any BERT checkpoint loads and reproduces its outputs. Each
    field is checked on construction and on assignment (a `ValueError` names the field and its allowed
    values); the ``validate_*`` methods check combinations on construction. The solver fields are read at
    every forward pass, so a trained model may be run with other ones. More on each choice:
    ``docs/solvers.md``.

    Args:
        ode_method (`str`, *optional*, defaults to `"euler"`):
            The scheme that replaces each residual connection ``y + F(y)``. Fixed-step: ``"euler"`` (the
            residual itself), ``"midpoint"``, ``"heun"``, ``"rk3"``, ``"rk4"``, ``"rk2-gated"`` (the ODE
            Transformer's learned RK2: a per-token gate per block, starting as Heun). Multistep, one
            evaluation per step, the earlier steps' evaluations reused across blocks (per sublayer stream in
            the sublayer scope, across layers in the layer scope, across ``ode_steps`` within a block):
            ``"ab2"``, ``"ab3"`` (Adams-Bashforth, starting with Euler), ``"ab2-learned"`` (learned
            coefficients per block, starting as Euler: a converted BERT is exactly BERT), ``"ab-learned"``
            (every earlier block of the stream: the block of layer ``l`` owns ``l + 1`` learned coefficients,
            newest evaluation first, starting as Euler; DenseFormer's learned cross-layer weights read as a
            multistep method; not with ``continuous_depth``). Predictor-corrector
            (PCformer): ``"pcformer"`` (RK4 predictor with a learned EMA coefficient per block, one
            Adams-Moulton corrector evaluation: 5 evaluations per step), ``"pcformer-rk2"`` (RK2 predictor:
            3). The learned methods (``"rk2-gated"``, ``"ab2-learned"``, ``"ab-learned"``, ``"pcformer"``,
            ``"pcformer-rk2"``)
            own parameters and cannot be swapped in after construction. Adaptive: ``"dopri5"``, ``"bosh3"``,
            ``"tsit5"``, ``"adaptive_heun"`` (need a library ``ode_backend``). Multistep and
            predictor-corrector methods run on ``ode_backend="native"`` only.
        ode_steps (`int`, *optional*, defaults to 1):
            Fixed-step methods: steps per block over ``t`` in ``[0, ode_interval]``, so
            ``dt = ode_interval / ode_steps`` (a Strang feed-forward half step spans half of it).
        ode_interval (`float`, *optional*, defaults to 1.0):
            The length of time each block integrates over (per unit of depth: the continuous-depth block spans
            ``num_hidden_layers * ode_interval``). Euler with interval ``T`` is BERT with every residual
            branch scaled by ``T``.
        ode_scope (`Literal["sublayer", "layer"]`, *optional*, defaults to `"sublayer"`):
            ``"sublayer"``: attention and feed-forward are ODE blocks of their own, where BERT has its
            residuals. ``"layer"``: one block per layer, whose field is one pass through the layer minus its
            input.
        norm_position (`Literal["post", "pre"]`, *optional*, defaults to `"post"`):
            ``"post"`` (BERT): a block's LayerNorm is applied once, after its solve. ``"pre"``: the LayerNorm
            is part of the field, ``F(LN(y))``, and the encoder ends with ``encoder.LayerNorm``.
        splitting (`Literal["lie", "strang"]`, *optional*, defaults to `"lie"`):
            ``"lie"``: attention, then feed-forward (BERT). ``"strang"``: Macaron's feed-forward half step
            (``macaron_intermediate`` / ``macaron_output``), attention, feed-forward half step; the two
            feed-forwards share ``intermediate_size`` units (the first takes the odd one).
        ode_backend (`str`, *optional*, defaults to `"native"`):
            What integrates each block: ``"native"`` (the project's fixed-step integrator, every fixed-step
            method; the fast path), ``"torchdiffeq"``, ``"torchode"`` (a step size per sample) or
            ``"torchdyn"``. Each runs the methods listed for it in ``methods.BACKEND_TABLE``.
        ode_rtol (`float`, *optional*, defaults to 1e-3), ode_atol (`float`, *optional*, defaults to 1e-4):
            Adaptive methods: a step is accepted when the RMS of ``error / (atol + rtol * max(|y_n|,
            |y_n+1|))`` is at most 1.
        ode_adjoint (`bool`, *optional*, defaults to `False`):
            Gradients by the adjoint method: training memory does not grow with the steps; gradients are as
            accurate as the backward solve (contractive fields amplify its errors). Adaptive methods only
            (with fixed steps the backward steps evaluate the gradient at other states than the forward
            steps used: use ``ode_checkpointing``); backends ``"torchdiffeq"`` and ``"torchdyn"``; the field
            must be deterministic (dropout 0).
        ode_max_nfe (`int` or `None`, *optional*, defaults to `None`):
            The most vector-field evaluations a block's solve may take (the adjoint's backward solve too);
            beyond it ``solvers.MaxNfeExceeded`` is raised. `None`: adaptive solves are bounded by 2000 per
            unit of depth (``solvers.ADAPTIVE_MAX_NFE_PER_UNIT``), fixed steps by their step count.
        ode_checkpointing (`Literal["none", "block", "stage"]`, *optional*, defaults to `"none"`):
            Activation checkpointing inside ODE blocks: ``"block"`` keeps each block's input, ``"stage"`` each
            evaluation's input (and the stages a gate reads); the rest is recomputed. Same gradients. Not with
            ``ode_adjoint``.
        continuous_depth (`bool`, *optional*, defaults to `False`):
            One weight-tied layer as a time-conditioned field ``F(t, y) = F_layer(y + tau(t))`` integrated
            over ``t`` in ``[0, num_hidden_layers]`` (``ode_steps`` per unit). Needs ``ode_scope="layer"`` and
            ``norm_position="pre"``.
        ode_history (`Literal["carry", "restart"]`, *optional*, defaults to `"carry"`):
            Multistep and predictor-corrector methods: ``"carry"`` starts a block's solve with the
            evaluations its stream's earlier blocks left (what a cross-layer multistep block means at
            ``ode_steps=1``); ``"restart"`` starts every block afresh (its first step is the scheme's
            start-up), so that refining ``ode_steps`` in a model whose layers differ keeps the scheme's order
            (with ``"carry"`` a history taken on another layer's field makes it first order). Read at every
            forward.
        ode_learned_step (`Literal["none", "block", "channel"]`, *optional*, defaults to `"none"`):
            A learned step size ``h`` per ODE block (``"block"``: one scalar) or per block and channel
            (``"channel"``: ``hidden_size`` of them), starting at 1, that scales the block's vector field:
            integrating ``h F`` over the interval, which for an autonomous field is integrating ``F`` over
            ``h`` times it. With Euler it is ReZero / SkipInit / LayerScale started at 1, exactly BERT at
            initialisation; with any scheme, the control that tells a learned scheme's gain from a learned
            residual scale. Owns parameters (``step_size``), so it is set at construction; ``"none"`` after
            construction runs the blocks without them.
    """

    model_type = "bert_ode"
    # The solver statistics ride along in the outputs; Trainer must not treat them as predictions.
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["nfe", "solver_stats"]

    ode_method: str = "euler"
    ode_steps: int = 1
    ode_interval: float = 1.0
    ode_scope: OdeScope = "sublayer"
    norm_position: NormPosition = "post"
    splitting: Splitting = "lie"
    ode_backend: str = "native"
    ode_rtol: float = 1e-3
    ode_atol: float = 1e-4
    ode_adjoint: bool = False
    ode_max_nfe: int | None = None
    ode_checkpointing: Checkpointing = "none"
    continuous_depth: bool = False
    ode_history: OdeHistory = "carry"
    ode_learned_step: LearnedStep = "none"

    def __setattr__(self, name: str, value: Any) -> None:
        self.check_field(name, value)
        super().__setattr__(name, value)

    @staticmethod
    def check_field(name: str, value: Any) -> None:
        """The check ``name = value`` gets when set (allowed values, ranges), without building a config: how
        an override is refused before anything is loaded. Checks of fields together wait for the config."""
        check = _FIELD_CHECKS.get(name)
        if check is not None:
            check(name, value)

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.validate_encoder_only()
        self.validate_sizes()
        self.validate_solver()
        self.validate_continuous_depth()

    def validate_encoder_only(self) -> None:
        if self.is_decoder or self.add_cross_attention:
            raise ValueError(
                "BertOde is an encoder: is_decoder and add_cross_attention must be False "
                f"(got is_decoder={self.is_decoder}, add_cross_attention={self.add_cross_attention})"
            )

    def validate_sizes(self) -> None:
        """What BertConfig itself does not check: positive sizes and a known activation. Whether the heads
        divide the width is checked where transformers checks it, when a model is built (``validate_heads``):
        a config may be made one field at a time, as transformers' own config tests do."""
        for name in _SIZE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} is invalid; it must be an integer >= 1")
        activations = _activation_names()
        if (
            isinstance(self.hidden_act, str)
            and activations is not None
            and self.hidden_act not in activations
        ):
            allowed = ", ".join(sorted(activations))
            raise ValueError(f"hidden_act={self.hidden_act!r} is unknown; allowed values: {allowed}")

    def validate_heads(self) -> None:
        """The heads divide the width: checked when a model is built from this config."""
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} must be a multiple of num_attention_heads="
                f"{self.num_attention_heads} (each head gets hidden_size / num_attention_heads dimensions)"
            )

    def validate_solver(self) -> None:
        """The solver fields together (call it after changing several of them)."""
        check_backend(self.ode_backend, self.ode_method, self.ode_adjoint)
        if self.ode_adjoint:
            self.validate_adjoint_field()
        if self.ode_adjoint and self.ode_checkpointing != "none":
            raise ValueError(
                f"ode_checkpointing={self.ode_checkpointing!r} cannot be combined with ode_adjoint=True: the "
                "adjoint "
                "already keeps no activations; use ode_checkpointing='none'"
            )

    def validate_adjoint_field(self) -> None:
        """The adjoint's field is deterministic: checked on construction and, where ``ode_adjoint`` is
        switched on later, at every training forward."""
        dropout = {"hidden_dropout_prob": self.hidden_dropout_prob}
        dropout["attention_probs_dropout_prob"] = self.attention_probs_dropout_prob
        if any(dropout.values()):
            # The backward solve re-evaluates the field; a new dropout mask there differentiates another one.
            raise ValueError(
                "ode_adjoint=True needs a deterministic vector field: set the dropout probabilities to 0 "
                f"(got {', '.join(f'{key}={value}' for key, value in dropout.items())})"
            )

    def validate_continuous_depth(self) -> None:
        if not self.continuous_depth:
            return
        if self.ode_scope != "layer" or self.norm_position != "pre":
            raise ValueError(
                "continuous_depth=True integrates one whole-layer vector field over depth: it needs "
                f"ode_scope='layer' and norm_position='pre' (got ode_scope={self.ode_scope!r}, "
                f"norm_position={self.norm_position!r})"
            )
        if self.ode_method == "ab-learned":
            raise ValueError(
                "ode_method='ab-learned' learns one coefficient per earlier block of a stream, and the "
                "continuous-depth model has one block: use ode_method='ab2-learned' (or 'ab2', 'ab3') with "
                "continuous_depth=True"
            )
        if self.ode_backend == "torchdyn" and self.ode_method == "rk4":
            raise ValueError(
                "continuous_depth=True with ode_backend='torchdyn' and ode_method='rk4': torchdyn 1.0.6's "
                "RK4 evaluates its stages at the wrong times (t, t+dt/2, t+dt/2 instead of t+dt/2, t+dt/2, "
                "t+dt), which matters for a time-dependent field; use ode_backend='native'"
            )


__all__ = ["BertOdeConfig"]
