"""The fixed-step schemes as data: Butcher tableaux (Runge-Kutta), Adams coefficients (multistep) and
predictor-corrector pairs.

A scheme is data, not code: one generic step per family (``integrators``) runs any of them. Coefficients are
float64 Python constants; the step multiplies them into tensors, so they take the state's dtype. Adding a
scheme is one entry in ``TABLEAUX``, ``MULTISTEP`` or ``PREDICTOR_CORRECTORS``. This module imports no torch:
the config validates against its tables.
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


# ------------------------------------------------------------------------------------------------------------
# Linear multistep methods of Adams type: one evaluation per step, the earlier ones reused.
# ------------------------------------------------------------------------------------------------------------


def _fractions(*rows) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(Fraction(x)) for x in row) for row in rows)


def _check_rows(name: str, rows: tuple[tuple[float, ...], ...], first_length: int) -> None:
    for m, row in enumerate(rows):
        if len(row) != first_length + m:
            raise ValueError(f"scheme {name!r}: row {m} must have {first_length + m} coefficients")
        if abs(sum(row) - 1.0) > 1e-12:  # consistency (order >= 1)
            raise ValueError(f"scheme {name!r}: row {m} sums to {sum(row)}, not 1")


@dataclass(frozen=True)
class AdamsBashforth:
    """``y_{n+1} = y_n + dt * sum_j beta_j F_{n-j}``: ``F_n = f(t_n, y_n)`` is the step's one evaluation and
    ``F_{n-1}, F_{n-2}, ...`` are earlier steps' (across blocks: the earlier layers of the same stream).

    ``rows[m]`` are the coefficients ``(beta_0, ..., beta_m)`` (newest first) used when ``m`` earlier
    evaluations are available; the last row is the scheme itself, the shorter ones its start-up. ``learned``:
    every ODE block owns its coefficients as parameters, initialised to the last row (a model built with it
    starts as that scheme); while the history is shorter, a missing evaluation is read as the oldest one
    available, so that every coefficient is used from the first block on. ``all_history``: (learned only)
    the block of layer ``l`` owns ``l + 1`` coefficients, for its own evaluation and each earlier block's,
    initialised to the last row padded with zeros. ``order``: the order of the initial coefficients.
    """

    name: str
    order: int
    rows: tuple[tuple[float, ...], ...]
    learned: bool = False
    all_history: bool = False

    def __post_init__(self):
        if not self.rows:
            raise ValueError(f"scheme {self.name!r}: no coefficients")
        _check_rows(self.name, self.rows, first_length=1)
        if self.all_history and not self.learned:
            raise ValueError(f"scheme {self.name!r}: an all-history scheme's coefficients are learned")

    @property
    def memory(self) -> int:
        """How many earlier evaluations the scheme reads (an all-history scheme: as many as its block's
        coefficients say, ``AdamsBashforthStep.memory``)."""
        return len(self.rows) - 1

    def initial_coefficients(self, layer_index: int) -> tuple[float, ...]:
        """A learned block's initial coefficients in layer ``layer_index`` (newest evaluation first)."""
        if not self.all_history:
            return self.rows[-1]
        return self.rows[-1] + (0.0,) * max(layer_index + 1 - len(self.rows[-1]), 0)

    @property
    def evaluations(self) -> int:
        return 1

    def row(self, available: int) -> tuple[float, ...]:
        """The coefficients to use with ``available`` earlier evaluations."""
        return self.rows[min(available, self.memory)]


MULTISTEP: dict[str, AdamsBashforth] = {
    scheme.name: scheme
    for scheme in (
        # AB2 starts with one Euler step: its local error O(dt^2) occurs once, so the global order stays 2.
        AdamsBashforth("ab2", 2, _fractions(["1"], ["3/2", "-1/2"])),
        # AB3 starts with Euler, then 2 F_1 - F_0: the first two steps together are one explicit midpoint step
        # of size 2 dt (local error O(dt^3)), so the global order is 3 at one evaluation per step; with
        # Euler then AB2 it would be 2 (docs/mathematics.md section 15.3).
        AdamsBashforth("ab3", 3, _fractions(["1"], ["2", "-1"], ["23/12", "-16/12", "5/12"])),
        # Learned (beta_0, beta_1) per block, initialised to Euler (1, 0): a converted BERT computes exactly
        # what BERT computes. Consistent while beta_0 + beta_1 = 1; second order only at (3/2, -1/2).
        AdamsBashforth("ab2-learned", 1, _fractions(["1"], ["1", "0"]), learned=True),
        # Learned weights on every earlier block's evaluation (DenseFormer's and MUDDFormer's cross-layer
        # weights read as a multistep method), initialised to Euler (1, 0, ..., 0): exactly BERT at init.
        AdamsBashforth("ab-learned", 1, _fractions(["1"]), learned=True, all_history=True),
    )
}


# ------------------------------------------------------------------------------------------------------------
# Predictor-corrector blocks (PCformer, Li et al., NeurIPS 2024): a Runge-Kutta predictor whose stage weights
# are an exponential moving average with a learned coefficient, then one Adams-Moulton corrector evaluation.
# ------------------------------------------------------------------------------------------------------------

# Adams-Moulton rows (beta_0 for F_{n+1}, then F_n, F_{n-1}, ...): trapezoid (order 2), then orders 3 and 4.
ADAMS_MOULTON = _fractions(["1/2", "1/2"], ["5/12", "8/12", "-1/12"], ["9/24", "19/24", "-5/24", "1/24"])


@dataclass(frozen=True)
class PredictorCorrector:
    """A predict-evaluate-correct step.

    Predictor: the stages ``k_i`` of ``predictor`` (its ``a`` and ``c``) combined with the EMA weights of
    ``ema_weights``, ``P = y_n + dt * sum_i gamma_i k_i``. Corrector:
    ``y_{n+1} = y_n + dt (beta_0 f(t_{n+1}, P) + beta_1 F_n + beta_2 F_{n-1} + ...)`` with ``F_n = k_1`` (the
    evaluation at ``y_n``) and the earlier steps' ``F``; ``corrector_rows[m]`` with ``m`` earlier evaluations
    (shorter rows are the start-up). Every ODE block owns its EMA coefficient, initialised to ``alpha``.
    ``order``: the global order at that ``alpha``.
    """

    name: str
    order: int
    predictor: ButcherTableau
    corrector_rows: tuple[tuple[float, ...], ...]
    alpha: float = 0.5

    def __post_init__(self):
        _check_rows(self.name, self.corrector_rows, first_length=2)

    @property
    def memory(self) -> int:
        return len(self.corrector_rows) - 1

    @property
    def evaluations(self) -> int:
        return self.predictor.stages + 1

    def row(self, available: int) -> tuple[float, ...]:
        return self.corrector_rows[min(available, self.memory)]


def ema_weights(alpha, stages: int) -> list:
    """The predictor's stage weights: an exponential moving average over the stages, the last stage
    weighted most. ``gamma_1 = (1 - alpha)^(s-1)`` and ``gamma_i = alpha (1 - alpha)^(s-i)`` for ``i >= 2``,
    which sum to 1 for every ``alpha`` (a float, or a tensor: only arithmetic is used). At ``alpha = 1/2`` and
    two stages: Heun's weights."""
    rest = 1 - alpha
    return [rest ** (stages - 1)] + [alpha * rest ** (stages - i) for i in range(2, stages + 1)]


PREDICTOR_CORRECTORS: dict[str, PredictorCorrector] = {
    scheme.name: scheme
    for scheme in (
        # The paper's block (its Figure 1 and its WMT configurations): RK4 stages as the predictor, a
        # four-term corrector. Five evaluations per step; second order at alpha = 1/2, where the EMA weights
        # (1/8, 1/8, 1/4, 1/2) make the predictor first order.
        PredictorCorrector("pcformer", 2, TABLEAUX["rk4"], ADAMS_MOULTON),
        # The released language-model code's size: RK2 (Heun) stages as the predictor. Three evaluations per
        # step; third order at alpha = 1/2 (a second-order predictor, one corrector pass).
        PredictorCorrector("pcformer-rk2", 3, TABLEAUX["heun"], ADAMS_MOULTON),
    )
}

# Every fixed-step method by name, and the ones that own learned coefficients (they cannot be swapped in after
# a model is built without them).
FIXED_STEP_METHODS = (*TABLEAUX, *MULTISTEP, *PREDICTOR_CORRECTORS)
LEARNED_METHODS = frozenset(
    {*GATED_METHODS, *(name for name, scheme in MULTISTEP.items() if scheme.learned), *PREDICTOR_CORRECTORS}
)
