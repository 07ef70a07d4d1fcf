"""The project's own fixed-step integrator: one generic step per family of schemes.

A step rule computes the increment of one step: ``RungeKuttaStep`` (``dt * sum_i b_i k_i`` for every Butcher
tableau), ``AdamsBashforthStep`` (``dt * sum_j beta_j F_{n-j}``, the earlier evaluations read from a
``MultistepHistory``) and ``PredictorCorrectorStep``. ``integrate_steps`` is the one place that adds an
increment to the state; ``integrate_fixed`` is its Runge-Kutta form.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from .tableaux import AdamsBashforth, ButcherTableau, PredictorCorrector, ema_weights

# f(t, y) -> dy/dt, with y of shape (batch, seq, hidden)
VectorField = Callable[[float, torch.Tensor], torch.Tensor]
# Given the stages k_1..k_s, the per-token weights that replace the tableau's b (the gated RK2).
StageWeights = Callable[[Sequence[torch.Tensor]], Sequence[torch.Tensor | float]]


@dataclass
class SolverStats:
    """What one ODE block's solve cost.

    Attributes:
        nfe: evaluations of the vector field.
        steps: accepted steps.
        rejected: rejected steps (adaptive solvers only).
        nfe_per_sample: for solvers that step each sample on its own (torchode), the evaluations each sample's
            own steps needed, shape ``(batch,)``. The batched solve still evaluates every sample at every call
            (``nfe``).
        steps_per_sample, rejected_per_sample: the accepted and rejected steps of each sample (torchode).

    For a per-sample solver, ``steps`` and ``rejected`` are the largest over the batch.
    """

    nfe: int
    steps: int
    rejected: int = 0
    nfe_per_sample: torch.Tensor | None = None
    steps_per_sample: torch.Tensor | None = None
    rejected_per_sample: torch.Tensor | None = None


def _flatten_stats(stats: SolverStats):
    return [stats.nfe_per_sample, stats.steps_per_sample, stats.rejected_per_sample], (
        stats.nfe,
        stats.steps,
        stats.rejected,
    )


def _unflatten_stats(children, counts) -> SolverStats:
    return SolverStats(*counts, *children)


# A pytree node, so that model outputs holding solver stats pass through torch.export (and other tracers): the
# per-sample tensors are its children, the counts (fixed by a fixed-step scheme) its static context.
torch.utils._pytree.register_pytree_node(
    SolverStats, _flatten_stats, _unflatten_stats, serialized_type_name="bert_ode.SolverStats"
)


def _linear_combination(
    coefficients: Sequence[torch.Tensor | float],
    tensors: Sequence[torch.Tensor],
    scale: float,
    base: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """``base + scale * sum_i coefficients[i] * tensors[i]`` (``base`` optional), skipping zero terms.

    Float coefficients go through ``torch.add(..., alpha=c)``, tensor ones through ``torch.addcmul``: one
    fused kernel per term instead of a multiply and an add. These element-wise passes are the whole overhead
    of a multi-stage scheme over its evaluations.
    """
    total = base
    for coefficient, tensor in zip(coefficients, tensors, strict=True):
        if isinstance(coefficient, float):
            coefficient = coefficient * scale
            if coefficient == 0.0:
                continue
            if total is None:
                total = tensor if coefficient == 1.0 else coefficient * tensor
            else:
                total = torch.add(total, tensor, alpha=coefficient)
            continue
        if total is None:
            total = coefficient * tensor if scale == 1.0 else (coefficient * scale) * tensor
        else:  # a learned coefficient (a gate, multistep or EMA weight): one fused multiply-add
            total = torch.addcmul(total, coefficient, tensor, value=scale)
    return total


def rk_stages(
    field: VectorField, t: float, y: torch.Tensor, dt: float, tableau: ButcherTableau
) -> list[torch.Tensor]:
    """The stages ``k_i = f(t + c_i dt, y + dt * sum_j a_ij k_j)`` of one explicit Runge-Kutta step."""
    stages: list[torch.Tensor] = []
    for row, c in zip(tableau.a, tableau.c, strict=True):
        stage_input = _linear_combination(row, stages, dt, base=y)  # y + dt * sum_j a_ij k_j
        stages.append(field(t + c * dt, stage_input))
    return stages


def explicit_rk_increment(
    field: VectorField,
    t: float,
    y: torch.Tensor,
    dt: float,
    tableau: ButcherTableau,
    stage_weights: StageWeights | None = None,
) -> torch.Tensor:
    """The increment of one explicit Runge-Kutta step of size ``dt`` from ``(t, y)``."""
    stages = rk_stages(field, t, y, dt, tableau)
    weights = tableau.b if stage_weights is None else stage_weights(stages)
    return _linear_combination(weights, stages, dt)


# ------------------------------------------------------------------------------------------------------------
# Memory across steps and blocks: what a multistep method reads.
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MultistepHistory:
    """The vector-field evaluations of one stream's earlier steps, newest first (``F_{n-1}, F_{n-2}, ...``),
    and the step size they were taken with. Immutable: a step returns a new one, so that re-running a step
    (checkpointing) reads what its first run read."""

    evaluations: tuple[torch.Tensor, ...] = ()
    step_size: float | None = None

    def after(self, evaluation: torch.Tensor, keep: int, step_size: float) -> MultistepHistory:
        """This history with ``evaluation`` as the newest, ``keep`` evaluations at most."""
        return MultistepHistory((evaluation, *self.evaluations)[:keep], step_size)


NO_HISTORY = MultistepHistory()


class StepRule(Protocol):
    """One step of a fixed-step scheme: its increment, and the evaluation a later step will read (or None)."""

    evaluations: int  # vector-field evaluations per step
    memory: int  # earlier evaluations it reads (0 for one-step methods)

    def increment(
        self, field: VectorField, t: float, y: torch.Tensor, dt: float, past: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, torch.Tensor | None]: ...


@dataclass(frozen=True)
class RungeKuttaStep:
    tableau: ButcherTableau
    stage_weights: StageWeights | None = None
    memory = 0

    @property
    def evaluations(self) -> int:
        return self.tableau.stages

    def increment(self, field, t, y, dt, past):
        return explicit_rk_increment(field, t, y, dt, self.tableau, self.stage_weights), None


@dataclass(frozen=True)
class AdamsBashforthStep:
    """``dt * sum_j beta_j F_{n-j}`` with ``F_n = f(t_n, y_n)``, the step's one evaluation. ``coefficients``:
    learned ``beta`` (a tensor of ``memory + 1`` entries) in place of the scheme's rows."""

    scheme: AdamsBashforth
    coefficients: torch.Tensor | None = None

    @property
    def evaluations(self) -> int:
        return 1

    @property
    def memory(self) -> int:
        if self.scheme.all_history and self.coefficients is not None:
            # Keep one more than this block reads: the next block of the stream reads one more.
            return len(self.coefficients)
        return self.scheme.memory

    def increment(self, field, t, y, dt, past):
        evaluation = field(t, y)
        if self.coefficients is None:
            row = self.scheme.row(len(past))
            terms = (evaluation, *past[: len(row) - 1])
        else:
            # Every learned coefficient is used from the first step on: a missing earlier evaluation is read
            # as the oldest one there is (at the first step, F_n itself).
            row = tuple(self.coefficients.unbind())
            known = (evaluation, *past)
            terms = tuple(known[min(j, len(known) - 1)] for j in range(len(row)))
        return _linear_combination(row, terms, dt), evaluation


@dataclass(frozen=True)
class PredictorCorrectorStep:
    """Predict with the EMA-weighted Runge-Kutta stages, evaluate once at the prediction, correct with the
    Adams-Moulton row for the history there is. ``alpha``: the block's EMA coefficient (tensor or float)."""

    scheme: PredictorCorrector
    alpha: torch.Tensor | float = 0.5

    @property
    def evaluations(self) -> int:
        return self.scheme.evaluations

    @property
    def memory(self) -> int:
        return self.scheme.memory

    def increment(self, field, t, y, dt, past):
        stages = rk_stages(field, t, y, dt, self.scheme.predictor)
        weights = ema_weights(self.alpha, len(stages))
        predicted = _linear_combination(weights, stages, dt, base=y)
        corrector_evaluation = field(t + dt, predicted)
        row = self.scheme.row(len(past))
        terms = (corrector_evaluation, stages[0], *past[: len(row) - 2])
        return _linear_combination(row, terms, dt), stages[0]


def integrate_steps(
    field: VectorField,
    y: torch.Tensor,
    t0: float,
    t1: float,
    steps: int,
    rule: StepRule,
    history: MultistepHistory = NO_HISTORY,
) -> tuple[torch.Tensor, SolverStats, MultistepHistory]:
    """Integrates ``dy/dt = field(t, y)`` from ``t0`` to ``t1`` in ``steps`` equal steps of ``rule``, starting
    from ``history`` (a multistep method's earlier evaluations); returns the state, the cost and the history
    after the last step. The one place where the state changes."""
    dt = (t1 - t0) / steps
    taken_with = history.step_size
    if rule.memory and history.evaluations and taken_with is not None and not math.isclose(taken_with, dt):
        raise ValueError(
            f"a multistep history taken with step size {taken_with} cannot go on with step size {dt}"
        )
    for n in range(steps):
        increment, evaluation = rule.increment(field, t0 + n * dt, y, dt, history.evaluations)
        y = y + increment
        if rule.memory:
            history = history.after(evaluation, rule.memory, dt)
    return y, SolverStats(nfe=steps * rule.evaluations, steps=steps), history


def integrate_fixed(
    field: VectorField,
    y: torch.Tensor,
    t0: float,
    t1: float,
    steps: int,
    tableau: ButcherTableau,
    stage_weights: StageWeights | None = None,
) -> tuple[torch.Tensor, SolverStats]:
    """Integrates ``dy/dt = field(t, y)`` from ``t0`` to ``t1`` in ``steps`` equal steps of ``tableau``."""
    y, stats, _ = integrate_steps(field, y, t0, t1, steps, RungeKuttaStep(tableau, stage_weights))
    return y, stats
