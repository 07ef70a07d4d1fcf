"""Configuration of ODE-BERT: a ``BertConfig`` plus the fields that turn residual connections into ODE steps."""

from __future__ import annotations

from typing import Any, ClassVar

from transformers import BertConfig

from .tableaux import TABLEAUX

ODE_METHODS = tuple(TABLEAUX)
ODE_SCOPES = ("sublayer", "layer")
NORM_POSITIONS = ("post", "pre")
SPLITTINGS = ("lie", "strang")


def _one_of(field: str, allowed: tuple[str, ...]):
    def check(value: Any) -> None:
        if value not in allowed:
            raise ValueError(f"{field}={value!r} is not supported; allowed values: {', '.join(map(repr, allowed))}")

    return check


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
    """

    model_type = "bert_ode"
    # The solver statistics ride along in the outputs; Trainer must not treat them as predictions.
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["nfe", "solver_stats"]

    ode_method: str = "euler"
    ode_steps: int = 1
    ode_scope: str = "sublayer"
    norm_position: str = "post"
    splitting: str = "lie"

    # One check per ODE field, run on construction and on every later assignment.
    _ODE_FIELD_CHECKS: ClassVar[dict] = {
        "ode_method": _one_of("ode_method", ODE_METHODS),
        "ode_steps": _positive_int("ode_steps"),
        "ode_scope": _one_of("ode_scope", ODE_SCOPES),
        "norm_position": _one_of("norm_position", NORM_POSITIONS),
        "splitting": _one_of("splitting", SPLITTINGS),
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


__all__ = ["BertOdeConfig"]
