"""Butcher tableaux of the explicit Runge-Kutta schemes.

A scheme is data, not code: one generic step (``integrators.explicit_rk_increment``) runs any of them.
Coefficients are float64 Python constants; the step multiplies them into tensors, so they take the state's
dtype. Adding a scheme is one entry in ``TABLEAUX``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class ButcherTableau:
    """An explicit Runge-Kutta scheme ``(a, b, c)`` of a given order, checked on construction.

    Stage ``i`` evaluates ``k_i = f(t + c_i dt, y + dt * sum_j a[i][j] k_j)`` for ``j < i``; the step's
    increment is ``dt * sum_i b_i k_i``.
    """

    name: str
    order: int
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    c: tuple[float, ...]

    def __post_init__(self):
        stages = len(self.b)
        if stages == 0 or len(self.c) != stages or len(self.a) != stages:
            raise ValueError(f"tableau {self.name!r}: a, b and c must describe the same number of stages")
        for i, row in enumerate(self.a):
            if len(row) != i:
                raise ValueError(
                    f"tableau {self.name!r}: row {i} of a must have {i} entries (explicit scheme)"
                )
            # Row-sum condition (c_i = sum_j a_ij): every stage is evaluated at the time its weights reach.
            if abs(sum(row) - self.c[i]) > 1e-12:
                raise ValueError(
                    f"tableau {self.name!r}: row {i} of a sums to {sum(row)}, not c[{i}] = {self.c[i]}"
                )
        if abs(sum(self.b) - 1.0) > 1e-12:  # consistency (order >= 1)
            raise ValueError(f"tableau {self.name!r}: weights b sum to {sum(self.b)}, not 1")

    @property
    def stages(self) -> int:
        return len(self.b)


def _tableau(name: str, order: int, a, b, c) -> ButcherTableau:
    # Written as exact fractions so the coefficients read as in the textbooks; stored as float64.
    as_float = lambda xs: tuple(float(Fraction(x)) for x in xs)  # noqa: E731
    return ButcherTableau(name, order, tuple(as_float(row) for row in a), as_float(b), as_float(c))


TABLEAUX: dict[str, ButcherTableau] = {
    tableau.name: tableau
    for tableau in (
        # Forward Euler: y + dt f(y). With dt = 1 this is exactly BERT's residual connection.
        _tableau("euler", 1, a=[[]], b=["1"], c=["0"]),
        # Explicit midpoint.
        _tableau("midpoint", 2, a=[[], ["1/2"]], b=["0", "1"], c=["0", "1/2"]),
        # Heun's method: the ODE Transformer's standard RK2, y + (F1 + F2) / 2 with F2 = F(y + F1).
        _tableau("heun", 2, a=[[], ["1"]], b=["1/2", "1/2"], c=["0", "1"]),
        # Kutta's third-order method (the third stage reads y - F1 + 2 F2).
        _tableau("rk3", 3, a=[[], ["1/2"], ["-1", "2"]], b=["1/6", "2/3", "1/6"], c=["0", "1/2", "1"]),
        # The classic fourth-order Runge-Kutta method.
        _tableau(
            "rk4",
            4,
            a=[[], ["1/2"], ["0", "1/2"], ["0", "0", "1"]],
            b=["1/6", "1/3", "1/3", "1/6"],
            c=["0", "1/2", "1/2", "1"],
        ),
        # ODE Transformer's learnable RK2 evaluates Heun's stages; its weights (gamma, 1 - gamma) are computed
        # per token by a gate at run time, so b here is only the value the gate starts from (gamma = 1/2), and
        # the order is the order at that start. A trained gamma away from 1/2 + O(dt) makes the scheme first
        # order (stability polynomial 1 + z + (1 - gamma) z^2; docs/mathematics.md section 7).
        _tableau("rk2-gated", 2, a=[[], ["1"]], b=["1/2", "1/2"], c=["0", "1"]),
    )
}

# Schemes whose combination weights are learned: they own a gate and need ``stages == 2``.
GATED_METHODS = frozenset({"rk2-gated"})
