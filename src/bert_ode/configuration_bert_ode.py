"""Configuration of ODE-BERT: a ``BertConfig`` plus the fields that turn residual connections into ODE steps."""

from __future__ import annotations

from typing import Any, ClassVar

from transformers import BertConfig

from .solvers import ADAPTIVE_METHODS, ADJOINT_BACKENDS, BACKEND_METHODS, BACKENDS
from .tableaux import GATED_METHODS, TABLEAUX

FIXED_STEP_METHODS = tuple(TABLEAUX)
ODE_METHODS = FIXED_STEP_METHODS + ADAPTIVE_METHODS
CHECKPOINTING = ("none", "block", "stage")
ODE_SCOPES = ("sublayer", "layer")
NORM_POSITIONS = ("post", "pre")
SPLITTINGS = ("lie", "strang")


def _one_of(field: str, allowed: tuple[str, ...]):
    def check(value: Any) -> None:
        if value not in allowed:
            raise ValueError(f"{field}={value!r} is not supported; allowed values: {', '.join(map(repr, allowed))}")

    return check


def _positive_number(field: str):
    def check(value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
            raise ValueError(f"{field}={value!r} is invalid; it must be a finite number > 0")

    return check


def _boolean(field: str):
    def check(value: Any) -> None:
        if not isinstance(value, bool):
            raise ValueError(f"{field}={value!r} is invalid; it must be True or False")

    return check


def _positive_int_or_none(field: str):
    def check(value: Any) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{field}={value!r} is invalid; it must be None (no bound) or an integer >= 1")

    return check


def backend_methods(backend: str) -> tuple[str, ...]:
    """The values of ``ode_method`` that ``ode_backend=backend`` runs."""
    return FIXED_STEP_METHODS if backend == "native" else tuple(BACKEND_METHODS[backend])


def _positive_int(field: str):
    def check(value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{field}={value!r} is invalid; it must be an integer >= 1")

    return check


class BertOdeConfig(BertConfig):
    r"""Configuration of a BertOde model: every field of [`BertConfig`] plus the ODE fields below.

    With the defaults (``euler``, 1 step, ``sublayer``, ``post``, ``lie``) the model is exactly BERT, so any BERT
    checkpoint loads and reproduces its outputs.

    Args:
        ode_method (`str`, *optional*, defaults to `"euler"`):
            The explicit Runge-Kutta scheme that replaces each residual connection ``y + F(y)``:
            ``"euler"`` (the plain residual), ``"midpoint"``, ``"heun"`` (the ODE Transformer's RK2),
            ``"rk3"`` (Kutta's third order), ``"rk4"`` (classic) or ``"rk2-gated"`` (the ODE Transformer's
            learnable RK2: ``y + gamma F1 + (1 - gamma) F2`` with ``gamma = sigmoid(W [F1; F2] + b)`` per token;
            each ODE block owns its gate, initialised to ``gamma = 1/2``, i.e. Heun).
            Fixed-step methods other than ``rk2-gated`` may be swapped after training.
        ode_steps (`int`, *optional*, defaults to 1):
            Integration steps per block over ``t`` in ``[0, 1]``, so ``dt = 1 / ode_steps``. It is read at every
            forward pass, so a trained model can be evaluated with more or fewer steps than it was trained with.
        ode_scope (`str`, *optional*, defaults to `"sublayer"`):
            What one ODE block integrates. ``"sublayer"``: attention and feed-forward are two ODEs of their own,
            where BERT has its two residual connections. ``"layer"``: the whole layer is the vector field ``F``
            (as in the ODE Transformer); ``F(y)`` is one pass of the layer's sublayers minus ``y``.
        norm_position (`str`, *optional*, defaults to `"post"`):
            Where LayerNorm sits. ``"post"`` (BERT): a block integrates ``dy/dt = F(y)`` over ``[0, 1]`` and then
            applies its LayerNorm once, after the whole update; intermediate RK stages and intermediate steps see
            un-normalised states. In ``"layer"`` scope the LayerNorms of the inner sublayers stay inside ``F``
            and only the last one is applied after the update. ``"pre"``: the LayerNorm is part of the vector
            field, ``dy/dt = F(LN(y))``, so it is applied to the input of every stage; the encoder ends with a
            final LayerNorm (``encoder.LayerNorm``). Every sublayer keeps BERT's parameter name for its norm
            (``attention.output.LayerNorm``, ``output.LayerNorm``) in both positions.
        splitting (`str`, *optional*, defaults to `"lie"`):
            How a layer splits attention and feed-forward. ``"lie"``: attention then feed-forward (BERT's
            Lie-Trotter splitting). ``"strang"``: Macaron Net's Strang splitting, a feed-forward half step
            (``macaron_intermediate`` / ``macaron_output``), attention, and a feed-forward half step
            (``intermediate`` / ``output``); each feed-forward has ``intermediate_size // 2`` units, so the layer
            has BERT's parameter count up to one bias and one LayerNorm.
        ode_backend (`str`, *optional*, defaults to `"native"`):
            What integrates each block. ``"native"``: the project's own fixed-step Runge-Kutta (every fixed-step
            method above; the fast path). ``"torchdiffeq"``: ``euler``, ``midpoint``, ``heun``, ``dopri5``,
            ``bosh3``, ``adaptive_heun`` (batch-coupled: one RMS error norm over the whole batch, so one hard
            sequence sets the step size of all). ``"torchode"``: ``euler``, ``heun``, ``dopri5``, ``tsit5``,
            ``adaptive_heun``, with a step size, accept/reject decision and error norm per sample; padding positions
            are left out of the error norm, so they never shrink a sample's steps. ``"torchdyn"`` (optional extra:
            ``pip install --no-deps torchdyn`` then ``pytorch-lightning torchcde torchsde attrs``): ``euler``,
            ``midpoint``, ``rk4``, ``dopri5``, ``tsit5``. A backend is only offered a method where it runs the same
            scheme as ours (torchdiffeq's ``"rk4"`` is the 3/8 rule, so classic ``rk4`` is native or torchdyn only);
            ``rk2-gated`` is native only. Asking a backend for a method it lacks raises a `ValueError`.
        ode_method, adaptive values:
            ``"dopri5"`` (Dormand-Prince 5(4)), ``"bosh3"`` (Bogacki-Shampine 3(2)), ``"tsit5"`` (Tsitouras 5(4)),
            ``"adaptive_heun"`` (Heun 2 with an Euler error estimate): step sizes chosen by the library to meet
            ``ode_rtol`` / ``ode_atol``; ``ode_steps`` is then ignored. They need a library backend (not ``"native"``).
        ode_rtol (`float`, *optional*, defaults to 1e-3), ode_atol (`float`, *optional*, defaults to 1e-4):
            Relative and absolute tolerances of the adaptive methods' local error (a step is accepted when the RMS of
            ``error / (atol + rtol * |y|)`` is at most 1). Hidden states are O(1), so these ask for roughly three
            significant digits. Ignored by fixed-step methods.
        ode_adjoint (`bool`, *optional*, defaults to `False`):
            Gradients by the adjoint method: the forward solve keeps no activations and the backward pass solves the
            adjoint ODE backwards in time, so training memory does not grow with the number of steps (at the cost of
            about one more solve, and gradients accurate to the solver tolerance rather than exact). Supported with
            ``ode_backend`` ``"torchdiffeq"`` and ``"torchdyn"``. The vector field must be deterministic: set the
            dropout probabilities to 0 when training with it (the backward solve re-evaluates the field).
        ode_max_nfe (`int` or `None`, *optional*, defaults to `None`):
            A bound on vector-field evaluations per block and per solve (with the adjoint, the backward solve has the
            same bound). A solve that would exceed it stops at once with ``bert_ode.solvers.MaxNfeExceeded`` (a
            `RuntimeError` naming the block), instead of hanging on a stiff block or a tight tolerance. A fixed-step
            block whose ``ode_steps x stages`` exceeds it raises before it starts. `None`: no bound.
        ode_checkpointing (`str`, *optional*, defaults to `"none"`):
            Activation checkpointing inside ODE blocks (``torch.utils.checkpoint``, non-reentrant), to train
            many-stage schemes in memory close to BERT's: ``"block"`` keeps only each block's input and recomputes
            the whole solve in the backward pass; ``"stage"`` keeps the stage inputs and outputs of every Runge-Kutta
            stage and recomputes each vector-field evaluation. Same loss and gradients as ``"none"``. Not combinable
            with ``ode_adjoint`` (which already keeps no activations). Independent of HuggingFace's layer-level
            ``gradient_checkpointing_enable()``.
        continuous_depth (`bool`, *optional*, defaults to `False`):
            The weight-tied continuous-depth encoder (the neural-ODE reading of an encoder, ALBERT-like in
            parameters): one layer (``encoder.layer.0``) is the vector field of one ODE block integrated over
            ``t`` in ``[0, num_hidden_layers]``, with ``ode_steps`` steps per unit of depth for fixed-step methods.
            The field is time-conditioned: ``F(t, y) = F_layer(y + tau(t))``, where ``F_layer`` is the whole-layer
            increment and ``tau(t) = W [sin(w t); cos(w t)] + b`` (``encoder.layer.0.time_embedding``: 16
            frequencies ``w`` geometric from ``pi / num_hidden_layers`` to ``pi``; ``W`` and ``b`` learned and
            initialised to zero, so the field starts time-independent). Requires ``ode_scope="layer"`` and
            ``norm_position="pre"`` (a LayerNorm between depths has no continuous-time reading). Parameters: one
            layer plus ``33 x hidden_size``. ``hidden_states`` then holds the embeddings and the final state.
    """

    model_type = "bert_ode"
    # The solver statistics ride along in the outputs; Trainer must not treat them as predictions.
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["nfe", "solver_stats"]

    ode_method: str = "euler"
    ode_steps: int = 1
    ode_scope: str = "sublayer"
    norm_position: str = "post"
    splitting: str = "lie"
    ode_backend: str = "native"
    ode_rtol: float = 1e-3
    ode_atol: float = 1e-4
    ode_adjoint: bool = False
    ode_max_nfe: int | None = None
    ode_checkpointing: str = "none"
    continuous_depth: bool = False

    # One check per ODE field, run on construction and on every later assignment.
    _ODE_FIELD_CHECKS: ClassVar[dict] = {
        "ode_method": _one_of("ode_method", ODE_METHODS),
        "ode_steps": _positive_int("ode_steps"),
        "ode_scope": _one_of("ode_scope", ODE_SCOPES),
        "norm_position": _one_of("norm_position", NORM_POSITIONS),
        "splitting": _one_of("splitting", SPLITTINGS),
        "ode_backend": _one_of("ode_backend", BACKENDS),
        "ode_rtol": _positive_number("ode_rtol"),
        "ode_atol": _positive_number("ode_atol"),
        "ode_adjoint": _boolean("ode_adjoint"),
        "ode_max_nfe": _positive_int_or_none("ode_max_nfe"),
        "ode_checkpointing": _one_of("ode_checkpointing", CHECKPOINTING),
        "continuous_depth": _boolean("continuous_depth"),
    }

    def __setattr__(self, name: str, value: Any) -> None:
        check = type(self)._ODE_FIELD_CHECKS.get(name)
        if check is not None:
            check(value)
        super().__setattr__(name, value)

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.is_decoder or self.add_cross_attention:
            raise ValueError(
                "BertOde is an encoder: is_decoder and add_cross_attention must be False "
                f"(got is_decoder={self.is_decoder}, add_cross_attention={self.add_cross_attention})"
            )
        if self.splitting == "strang" and self.intermediate_size % 2:
            raise ValueError(
                f"splitting='strang' halves the feed-forward: intermediate_size={self.intermediate_size} must be even"
            )
        self.check_solver()

    def check_solver(self) -> None:
        """Cross-field checks of the solver settings (run on construction; call it after changing them)."""
        methods = backend_methods(self.ode_backend)
        if self.ode_method not in methods:
            hint = ""
            if self.ode_method in ADAPTIVE_METHODS:
                hint = " (adaptive methods need a library backend: 'torchdiffeq', 'torchode' or 'torchdyn')"
            elif self.ode_method in GATED_METHODS:
                hint = " (the learned gate lives in the native integrator)"
            raise ValueError(
                f"ode_method={self.ode_method!r} is not run by ode_backend={self.ode_backend!r}{hint}; "
                f"that backend runs: {', '.join(map(repr, methods))}"
            )
        if self.ode_adjoint and self.ode_backend not in ADJOINT_BACKENDS:
            raise ValueError(
                f"ode_adjoint=True is supported with ode_backend in {', '.join(map(repr, ADJOINT_BACKENDS))}, "
                f"not {self.ode_backend!r} (torchode's backsolve adjoint keeps per-sample parameter gradients)"
            )
        if self.ode_adjoint and self.ode_checkpointing != "none":
            raise ValueError(
                f"ode_checkpointing={self.ode_checkpointing!r} cannot be combined with ode_adjoint=True: the adjoint "
                "already keeps no activations; use ode_checkpointing='none'"
            )
        if self.continuous_depth:
            if self.ode_scope != "layer" or self.norm_position != "pre":
                raise ValueError(
                    "continuous_depth=True integrates one whole-layer vector field over depth: it needs "
                    f"ode_scope='layer' and norm_position='pre' (got ode_scope={self.ode_scope!r}, "
                    f"norm_position={self.norm_position!r})"
                )
            if self.ode_backend == "torchdyn" and self.ode_method == "rk4":
                raise ValueError(
                    "continuous_depth=True with ode_backend='torchdyn' and ode_method='rk4': torchdyn 1.0.6's RK4 "
                    "evaluates its stages at the wrong times (t, t+dt/2, t+dt/2 instead of t+dt/2, t+dt/2, t+dt), "
                    "which matters for a time-dependent field; use ode_backend='native'"
                )


__all__ = ["BertOdeConfig"]
