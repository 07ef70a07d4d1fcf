"""Butcher tableaux: consistent, and satisfying the order conditions of their declared order (and no more)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from bert_ode import TABLEAUX, ButcherTableau
from bert_ode.tableaux import GATED_METHODS

TOL = 1e-12


def _dot(u, v):
    # Not strict: _matvec passes the rows of a, which are shorter than v.
    return math.fsum(x * y for x, y in zip(u, v, strict=False))


def _matvec(a, v):
    # a is strictly lower triangular, stored row by row with row i holding i entries.
    return [_dot(row, v) for row in a]


def order_conditions(tableau: ButcherTableau) -> dict[int, list[tuple[str, float, float]]]:
    """The classical order conditions up to order 4: order -> [(name, value, required)]."""
    a, b, c = tableau.a, tableau.b, tableau.c
    c2 = [x * x for x in c]
    c3 = [x**3 for x in c]
    ac = _matvec(a, c)
    return {
        1: [("sum b", math.fsum(b), 1.0)],
        2: [("b.c", _dot(b, c), 1 / 2)],
        3: [("b.c^2", _dot(b, c2), 1 / 3), ("b.Ac", _dot(b, ac), 1 / 6)],
        4: [
            ("b.c^3", _dot(b, c3), 1 / 4),
            ("b.(c*Ac)", _dot(b, [x * y for x, y in zip(c, ac, strict=True)]), 1 / 8),
            ("b.Ac^2", _dot(b, _matvec(a, c2)), 1 / 12),
            ("b.AAc", _dot(b, _matvec(a, ac)), 1 / 24),
        ],
    }


def test_the_issue_schemes_exist_with_their_orders():
    expected = {"euler": 1, "midpoint": 2, "heun": 2, "rk3": 3, "rk4": 4, "rk2-gated": 2}
    assert {name: TABLEAUX[name].order for name in expected} == expected
    for name, tableau in TABLEAUX.items():
        assert tableau.name == name


@pytest.mark.parametrize("name", list(TABLEAUX))
def test_tableau_is_consistent_and_explicit(name):
    tableau = TABLEAUX[name]
    assert tableau.stages == len(tableau.b) == len(tableau.c) == len(tableau.a)
    assert tableau.c[0] == 0.0
    for i, row in enumerate(tableau.a):
        assert len(row) == i  # strictly lower triangular: explicit
        assert math.fsum(row) == pytest.approx(tableau.c[i], abs=TOL)
    assert math.fsum(tableau.b) == pytest.approx(1.0, abs=TOL)
    for coefficient in (*tableau.b, *tableau.c, *(x for row in tableau.a for x in row)):
        assert type(coefficient) is float  # float64 constants, cast to the state's dtype by the step


@pytest.mark.parametrize("name", list(TABLEAUX))
def test_order_conditions_hold_up_to_declared_order(name):
    tableau = TABLEAUX[name]
    conditions = order_conditions(tableau)
    for order in range(1, tableau.order + 1):
        for label, value, required in conditions[order]:
            assert value == pytest.approx(required, abs=TOL), f"{name}: order-{order} condition {label}"


@pytest.mark.parametrize("name", [n for n in TABLEAUX if TABLEAUX[n].order < 4])
def test_declared_order_is_not_understated(name):
    # At least one condition of the next order fails: the declared order is the scheme's true order.
    tableau = TABLEAUX[name]
    next_conditions = order_conditions(tableau)[tableau.order + 1]
    assert any(abs(value - required) > 1e-6 for _, value, required in next_conditions), name


def test_textbook_coefficients():
    # Kutta's RK3: the third stage reads y - F1 + 2 F2 (the ODE Transformer's code has y + F2 here).
    assert TABLEAUX["rk3"].a == ((), (0.5,), (-1.0, 2.0))
    assert TABLEAUX["rk3"].b == pytest.approx((1 / 6, 2 / 3, 1 / 6))
    assert TABLEAUX["rk4"].a == ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0))
    assert TABLEAUX["rk4"].b == pytest.approx((1 / 6, 1 / 3, 1 / 3, 1 / 6))
    assert TABLEAUX["heun"].a == ((), (1.0,)) and TABLEAUX["heun"].b == (0.5, 0.5)
    assert TABLEAUX["midpoint"].a == ((), (0.5,)) and TABLEAUX["midpoint"].b == (0.0, 1.0)
    assert TABLEAUX["euler"].b == (1.0,)


def test_gated_rk2_starts_as_heun():
    assert GATED_METHODS == {"rk2-gated"}
    gated, heun = TABLEAUX["rk2-gated"], TABLEAUX["heun"]
    assert (gated.a, gated.b, gated.c, gated.stages) == (heun.a, heun.b, heun.c, 2)


def test_tableau_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TABLEAUX["rk4"].order = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    "a, b, c, message",
    [
        # Row sums do not match c.
        (((), (0.5,)), (0.0, 1.0), (0.0, 1.0), "row 1"),
        (((), (1.0,), (0.5, 0.5)), (1 / 6, 2 / 3, 1 / 6), (0.0, 1.0, 0.5), "row 2"),
        # First stage not at c = 0.
        (((),), (1.0,), (0.5,), "row 0"),
        # Weights do not sum to 1.
        (((), (1.0,)), (0.5, 0.6), (0.0, 1.0), "weights b"),
        (((),), (0.9,), (0.0,), "weights b"),
        # Stage counts disagree.
        (((), (1.0,)), (0.5, 0.5), (0.0,), "stages"),
        (((),), (0.5, 0.5), (0.0, 1.0), "stages"),
        ((), (), (), "stages"),
        # Not explicit: a row with too many entries.
        (((0.0,), (1.0,)), (0.5, 0.5), (0.0, 1.0), "explicit"),
    ],
)
def test_inconsistent_tableau_raises(a, b, c, message):
    with pytest.raises(ValueError, match=message):
        ButcherTableau("broken", 2, a, b, c)


def test_valid_custom_tableau_is_accepted():
    # Ralston's second-order method: adding a scheme is one constructor call.
    ralston = ButcherTableau("ralston", 2, ((), (2 / 3,)), (1 / 4, 3 / 4), (0.0, 2 / 3))
    conditions = order_conditions(ralston)
    assert conditions[2][0][1] == pytest.approx(0.5, abs=TOL)


# --- stability functions (docs/mathematics.md, section 4) --------------------------------------------------


def _stability_polynomial(a, b):
    """R(z) = 1 + z b^T (I - zA)^-1 1 for an explicit tableau, as a function of complex z."""
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ones = np.ones(len(b))
    return lambda z: 1 + z * b @ np.linalg.solve(np.eye(len(b)) - z * a, ones)


def _full(tableau):
    """The strictly lower triangular A of a tableau as a square list."""
    size = tableau.stages
    return [list(row) + [0.0] * (size - len(row)) for row in tableau.a]


def _real_interval(stability) -> float:
    """beta of the largest [-beta, 0] with |R(z)| <= 1: a scan, then bisection at the first failure."""
    step, z = 1e-3, 0.0
    while abs(stability(z - step)) <= 1 + 1e-12:
        z -= step
    low, high = z - step, z  # fails at low, holds at high
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (low, middle) if abs(stability(middle)) <= 1 + 1e-12 else (middle, high)
    return -high


@pytest.mark.parametrize(
    "method, beta", [("euler", 2.0), ("midpoint", 2.0), ("heun", 2.0), ("rk3", 2.5127), ("rk4", 2.7853)]
)
def test_real_stability_intervals_are_the_chapters(method, beta):
    tableau = TABLEAUX[method]
    assert _real_interval(_stability_polynomial(_full(tableau), tableau.b)) == pytest.approx(beta, abs=1e-3)


@pytest.mark.parametrize("gamma", [0.5, 0.7, 0.875, 0.88, 0.95])
def test_a_frozen_gate_has_the_chapters_stability_interval(gamma):
    # R(z) = 1 + z + (1 - gamma) z^2: [-1/(1-gamma), 0] for gamma <= 7/8, else the larger root of
    # (1 - gamma) z^2 + z + 2 = 0.
    stability = _stability_polynomial(_full(TABLEAUX["rk2-gated"]), [gamma, 1 - gamma])
    c = 1 - gamma
    expected = 1 / c if 8 * c >= 1 else (1 - math.sqrt(1 - 8 * c)) / (2 * c)
    assert _real_interval(stability) == pytest.approx(expected, abs=1e-3)
    assert stability(-0.1) == pytest.approx(1 - 0.1 + c * 0.01)


def test_imaginary_axis_and_dopri5_claims():
    rk3, rk4 = (_stability_polynomial(_full(TABLEAUX[m]), TABLEAUX[m].b) for m in ("rk3", "rk4"))
    for stability, edge in ((rk3, math.sqrt(3)), (rk4, 2 * math.sqrt(2))):
        assert abs(stability(1j * edge * 0.999)) <= 1 and abs(stability(1j * edge * 1.001)) > 1
    from torchdiffeq._impl.dopri5 import _DORMAND_PRINCE_SHAMPINE_TABLEAU as dopri5

    size = len(dopri5.c_sol)
    # The first stage has no row in torchdiffeq's beta; stage i + 1 has row i.
    a = [[0.0] * size] + [[float(x) for x in row] + [0.0] * (size - len(row)) for row in dopri5.beta]
    stability = _stability_polynomial(a, [float(x) for x in dopri5.c_sol])
    # R(z) = T_5(z) + z^6 / 600
    for z in (-0.5, -2.0, -3.0):
        taylor = sum(z**k / math.factorial(k) for k in range(6)) + z**6 / 600
        assert stability(z) == pytest.approx(taylor, rel=1e-9)
    assert _real_interval(stability) == pytest.approx(3.307, abs=1e-3)
