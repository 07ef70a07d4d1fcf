"""Every ODE method by name, and which backend runs each: names only, no torch.

The config validates ``ode_method`` / ``ode_backend`` / ``ode_adjoint`` against these tables (a model's config
file imports no torch); ``solvers.BACKENDS`` pairs each entry with its solve function. Adding a backend is one
``BackendMethods`` entry here and its solve function there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .tableaux import FIXED_STEP_METHODS

ADAPTIVE_METHODS = ("dopri5", "bosh3", "tsit5", "adaptive_heun")
ODE_METHODS = (*FIXED_STEP_METHODS, *ADAPTIVE_METHODS)


@dataclass(frozen=True)
class BackendMethods:
    """What one backend offers: the methods it runs and whether its adjoint is wired up."""

    methods: Mapping[str, str]  # our method name -> the backend's name for the *same* scheme
    adjoint: bool = False
    why_no_adjoint: str = ""


# A method is offered where a backend runs the *same* scheme as ours, even where a library has a different
# scheme of that name (torchdiffeq's "rk4" is the 3/8 rule, and its "heun3" is not Kutta's rk3). The multistep
# and predictor-corrector methods carry a history from block to block, which only the native integrator keeps.
BACKEND_TABLE: dict[str, BackendMethods] = {
    "native": BackendMethods(
        {name: name for name in FIXED_STEP_METHODS},
        why_no_adjoint=(
            "the native integrator backpropagates through its steps; ode_checkpointing saves memory"
        ),
    ),
    "torchdiffeq": BackendMethods(
        {
            "euler": "euler",
            "midpoint": "midpoint",
            "heun": "heun2",
            "dopri5": "dopri5",
            "bosh3": "bosh3",
            "adaptive_heun": "adaptive_heun",
        },
        adjoint=True,
    ),
    # The names are torchode's step classes. Its Heun carries an embedded Euler error estimate: with a fixed
    # step it is "heun", with the integral controller it is the Heun-Euler pair that torchdiffeq calls
    # "adaptive_heun".
    "torchode": BackendMethods(
        {"euler": "Euler", "heun": "Heun", "adaptive_heun": "Heun", "dopri5": "Dopri5", "tsit5": "Tsit5"},
        # torchode's BacksolveAdjoint vmaps a per-sample VJP through ``functional_call`` of one module and
        # keeps a per-sample copy of every parameter gradient (batch x parameters of memory).
        why_no_adjoint="torchode's backsolve adjoint keeps per-sample parameter gradients",
    ),
    "torchdyn": BackendMethods(
        {"euler": "euler", "midpoint": "midpoint", "rk4": "rk4", "dopri5": "dopri5", "tsit5": "tsit5"},
        adjoint=True,
    ),
}
ODE_BACKENDS = tuple(BACKEND_TABLE)
ADJOINT_BACKENDS = tuple(name for name, backend in BACKEND_TABLE.items() if backend.adjoint)
# The library backends' tables: what the tests and benchmarks compare with the native integrator.
BACKEND_METHODS: dict[str, dict[str, str]] = {
    name: dict(backend.methods) for name, backend in BACKEND_TABLE.items() if name != "native"
}


def check_backend(backend: str, method: str, adjoint: bool = False, where: str = "") -> None:
    """Raises a ValueError naming the fields unless ``backend`` runs ``method`` (and its adjoint, if asked
    for)."""
    prefix = f"{where}: " if where else ""
    methods = BACKEND_TABLE[backend].methods
    if method not in methods:
        runners = [name for name, entry in BACKEND_TABLE.items() if method in entry.methods]
        raise ValueError(
            f"{prefix}ode_method={method!r} is not run by ode_backend={backend!r}; that backend runs: "
            f"{names(methods)} (ode_method={method!r} runs with ode_backend {names(runners) or 'none'})"
        )
    if adjoint and method not in ADAPTIVE_METHODS:
        # A fixed-step continuous adjoint steps the adjoint equations with the scheme, which evaluates the
        # vector-Jacobian products at other states than backpropagation through the forward steps does
        # (one Euler step: at y1, not y0); rebuilding the states backwards adds only a smaller error
        # (docs/mathematics.md 11.5). Checkpointing gives exact gradients of the fixed-step scheme.
        raise ValueError(
            f"{prefix}ode_adjoint=True needs an adaptive ode_method ({names(ADAPTIVE_METHODS)}), not "
            f"{method!r}: with fixed steps the adjoint's backward steps evaluate the gradient at other "
            "states than the forward steps used, so it is not the gradient of the computed model; for less "
            "memory with fixed steps use ode_checkpointing='block' or 'stage' (exact gradients)"
        )
    if adjoint and not BACKEND_TABLE[backend].adjoint:
        raise ValueError(
            f"{prefix}ode_adjoint=True is supported with ode_backend in {names(ADJOINT_BACKENDS)}, not "
            f"{backend!r} ({BACKEND_TABLE[backend].why_no_adjoint})"
        )


def names(values) -> str:
    """``'a', 'b', 'c'``: allowed values as the error messages list them."""
    return ", ".join(map(repr, values))


__all__ = [
    "ADAPTIVE_METHODS",
    "ADJOINT_BACKENDS",
    "BACKEND_METHODS",
    "BACKEND_TABLE",
    "BackendMethods",
    "ODE_BACKENDS",
    "ODE_METHODS",
    "check_backend",
    "names",
]
