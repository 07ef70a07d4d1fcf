"""Scaling curves: validation loss against training compute, ``L(C) = a * C^(-b) + c``, fitted per variant.

The fit is done in units of ``C / C_min`` (the smallest compute of the variant's points), so ``a`` is the
reducible loss at the smallest budget and the optimiser works on numbers of order one. A three-parameter fit
through a handful of budgets passes close to every point and says little about its own uncertainty: read the
trend between variants (does the gap at equal compute grow or shrink?) from the measured points first and
from the fits second.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from .records import Record


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
    """Least-squares fit of ``a * (C / C_min)^(-b) + c`` with ``a, b >= 0``; needs at least three points."""
    compute, loss = np.asarray(compute, dtype=float), np.asarray(loss, dtype=float)
    if compute.size < 3 or compute.size != loss.size:
        raise ValueError(f"a power-law fit needs >= 3 (compute, loss) points, got {compute.size}")
    if np.any(compute <= 0):
        raise ValueError("compute must be positive")
    scale = float(compute.min())
    x = compute / scale

    def model(x, a, b, c):
        return a * x ** (-b) + c

    guess = (max(loss.max() - loss.min(), 1e-3), 0.5, float(loss.min()) * 0.9)
    with warnings.catch_warnings():
        # Three budgets for three parameters leave no residual to estimate a covariance from; the fit itself
        # is still the least-squares one, and its covariance is not used.
        warnings.simplefilter("ignore", OptimizeWarning)
        params, _ = curve_fit(
            model, x, loss, p0=guess, bounds=([0, 0, -np.inf], [np.inf, 5, np.inf]), maxfev=20000
        )
    rmse = math.sqrt(float(np.mean((model(x, *params) - loss) ** 2)))
    return PowerLawFit(a=float(params[0]), b=float(params[1]), c=float(params[2]), scale=scale, rmse=rmse)
