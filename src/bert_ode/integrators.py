"""The project's own fixed-step integrator: one generic explicit Runge-Kutta step for every Butcher tableau.

A step computes the increment ``dt * sum_i b_i k_i``; ``integrate_fixed`` is the one place that adds it to the
state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .tableaux import ButcherTableau

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

    Float coefficients go through ``torch.add(..., alpha=c)``: one fused kernel per term instead of a multiply
    and an add. These element-wise passes are the whole overhead of a multi-stage scheme over its evaluations.
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
        term = coefficient * tensor if scale == 1.0 else (coefficient * scale) * tensor
        total = term if total is None else total + term
    return total


def explicit_rk_increment(
    field: VectorField,
    t: float,
    y: torch.Tensor,
    dt: float,
    tableau: ButcherTableau,
    stage_weights: StageWeights | None = None,
) -> torch.Tensor:
    """The increment of one explicit Runge-Kutta step of size ``dt`` from ``(t, y)``."""
    stages: list[torch.Tensor] = []
    for row, c in zip(tableau.a, tableau.c, strict=True):
        stage_input = _linear_combination(row, stages, dt, base=y)  # y + dt * sum_j a_ij k_j
        stages.append(field(t + c * dt, stage_input))
    weights = tableau.b if stage_weights is None else stage_weights(stages)
    return _linear_combination(weights, stages, dt)


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
    dt = (t1 - t0) / steps
    for n in range(steps):
        y = y + explicit_rk_increment(field, t0 + n * dt, y, dt, tableau, stage_weights)
    return y, SolverStats(nfe=steps * tableau.stages, steps=steps)
