"""Scaling curves: validation loss against training compute, ``L(C) = a * C^(-b) + c``, fitted per variant.

The fit is done in units of ``C / C_min`` (the smallest compute of the variant's points), so ``a`` is the
reducible loss at the smallest budget and the optimiser works on numbers of order one. A three-parameter fit
through a handful of budgets passes close to every point and says little about its own uncertainty: read the
trend between variants (does the gap at equal compute grow or shrink?) from the measured points first and
from the fits second.

A power law plus a constant is convex in log compute: each e-fold of compute buys less loss than the one
before. Small models that are still leaving the unigram plateau do the opposite (the loss falls faster at each
larger budget). There the fit's exponent and asymptote estimate nothing; ``bends_down`` detects that regime,
and the gaps between variants are read from the measured points (``interpolate_log_linear``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from ..utils.records import Record


@dataclass
class PowerLawFit(Record):
    """``loss(C) = a * (C / scale)^(-b) + c``; ``c`` is the loss the variant approaches with unlimited
    compute."""

    a: float
    b: float
    c: float
    scale: float  # the compute the curve is normalised by (the smallest of the fitted points)
    rmse: float  # root-mean-square residual of the fit, in nats

    def __call__(self, compute):
        return self.a * (np.asarray(compute, dtype=float) / self.scale) ** (-self.b) + self.c


def fit_power_law(compute, loss) -> PowerLawFit:
    """Least-squares fit of ``a * (C / C_min)^(-b) + c`` with ``a, b >= 0`` and ``0 <= c <= min(loss)``; needs
    at least three points."""
    compute, loss = np.asarray(compute, dtype=float), np.asarray(loss, dtype=float)
    if compute.size < 3 or compute.size != loss.size:
        raise ValueError(f"a power-law fit needs >= 3 (compute, loss) points, got {compute.size}")
    if np.any(compute <= 0):
        raise ValueError("compute must be positive")
    scale = float(compute.min())
    x = compute / scale

    def model(x, a, b, c):
        return a * x ** (-b) + c

    floor = max(float(loss.min()), 1e-9)
    guess = (max(loss.max() - loss.min(), 1e-3), 0.5, floor * 0.9)
    # A loss is never negative, and the asymptote lies below every measured loss: without these bounds a
    # curve that bends the wrong way is "fitted" by b -> 0 with a and -c in the thousands (a line in log C).
    with warnings.catch_warnings():
        # Three budgets for three parameters leave no residual to estimate a covariance from; the fit itself
        # is still the least-squares one, and its covariance is not used.
        warnings.simplefilter("ignore", OptimizeWarning)
        params, _ = curve_fit(model, x, loss, p0=guess, bounds=([0, 0, 0], [np.inf, 5, floor]), maxfev=20000)
    rmse = math.sqrt(float(np.mean((model(x, *params) - loss) ** 2)))
    return PowerLawFit(a=float(params[0]), b=float(params[1]), c=float(params[2]), scale=scale, rmse=rmse)


def bends_down(compute, loss, tolerance: float = 0.02) -> bool:
    """Whether the loss falls faster per e-fold of compute over the last two points than over the first two
    (by more than ``tolerance`` nats per e-fold): the curve is concave in log compute, which no power law plus
    a constant is. Needs at least three points; with fewer, ``False``."""
    order = np.argsort(np.asarray(compute, dtype=float))
    log_c = np.log(np.asarray(compute, dtype=float)[order])
    loss = np.asarray(loss, dtype=float)[order]
    if log_c.size < 3:
        return False
    slopes = np.diff(loss) / np.diff(log_c)
    return bool(slopes[-1] < slopes[0] - tolerance)


def interpolate_log_linear(compute, loss, at: float) -> float | None:
    """The loss at compute ``at`` on the straight line, in log compute, between the two measured points around
    it; ``None`` outside the measured range (this reads a curve, it does not extrapolate one). A point within
    1% of an end counts as at that end (the same budget measured twice differs in its FLOPs by rounding)."""
    order = np.argsort(np.asarray(compute, dtype=float))
    log_c = np.log(np.asarray(compute, dtype=float)[order])
    loss = np.asarray(loss, dtype=float)[order]
    x = math.log(at)
    slack = math.log(1.01)
    if log_c.size == 0 or x < log_c[0] - slack or x > log_c[-1] + slack:
        return None
    return float(np.interp(x, log_c, loss))
