"""How an ODE block is solved: frozen settings, one table of backends, one entry point.

``solve(problem, settings)`` integrates ``dy/dt = field(t, y)`` over ``[0, t1]``, ``y`` of shape
``(batch, seq, hidden)``, and returns a ``Solution``: ``y(t1)``, ``SolverStats``, and the multistep history
after the solve (empty for one-step methods). ``SolverSettings`` is built from the config's ``ode_*`` fields
at each call; the backend it names is an entry of ``BACKENDS``: the project's own fixed-step integrator
(``"native"``, ``integrators.integrate_steps``) or an adapter of torchdiffeq, torchode or torchdyn (adaptive
steps, the adjoint, per-sample steps). Which backend runs which method is the torch-free table
``methods.BACKEND_TABLE``; each entry here adds its solve function. The adapters count the field's evaluations
and enforce ``max_nfe``. What each backend offers, and why, is in ``docs/solvers.md``.

The libraries are optional, so each adapter imports its library inside ``try`` in the function that needs it
(the only function-local imports of the model code): a checkpoint's copied model code then loads with
``trust_remote_code=True`` where they are not installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from .integrators import (
    NO_HISTORY,
    AdamsBashforthStep,
    MultistepHistory,
    PredictorCorrectorStep,
    RungeKuttaStep,
    SolverStats,
    StageWeights,
    StepRule,
    VectorField,
    integrate_steps,
)

# The method and backend tables are torch-free (the config reads them); ADJOINT_BACKENDS and BACKEND_METHODS
# stay importable from here, where they were defined before.
from .methods import ADAPTIVE_METHODS, BACKEND_TABLE, check_backend
from .methods import ADJOINT_BACKENDS as ADJOINT_BACKENDS
from .methods import BACKEND_METHODS as BACKEND_METHODS
from .tableaux import MULTISTEP, PREDICTOR_CORRECTORS, TABLEAUX

# The bound on one adaptive solve's evaluations when ode_max_nfe is unset, per unit of depth (a block spans
# one; the continuous-depth block num_hidden_layers). Well-posed blocks need tens to a few hundred.
ADAPTIVE_MAX_NFE_PER_UNIT = 2000

TORCHDYN_INSTALL = (
    "pip install --no-deps torchdyn==1.0.6 && "
    "pip install -c constraints.txt pytorch-lightning torchcde torchsde attrs"
)


class MaxNfeExceeded(RuntimeError):
    """An ODE solve needed more vector-field evaluations than ``config.ode_max_nfe`` allows."""


@dataclass(frozen=True)
class SolverSettings:
    """How to solve: the config's solver fields, resolved once per call (the config may change after
    training)."""

    backend: str = "native"
    method: str = "euler"
    steps: int = 1  # fixed-step methods: equal steps over the whole interval [0, t1]
    interval: float = 1.0  # the time one unit of depth spans (ode_interval)
    rtol: float = 1e-3
    atol: float = 1e-4
    adjoint: bool = False
    max_nfe: int | None = None
    checkpointing: str = "none"
    max_nfe_is_default: bool = False  # the bound is ADAPTIVE_MAX_NFE_PER_UNIT, not the user's ode_max_nfe

    @classmethod
    def from_config(cls, config, depth_units: int = 1) -> SolverSettings:
        """``depth_units``: how many units of depth the block spans; it takes ``ode_steps`` steps per unit."""
        # An adaptive solve is always bounded: a tolerance the block cannot meet must stop with an error, not
        # run for hours. Fixed steps are bounded by their step count.
        default = config.ode_max_nfe is None and config.ode_method in ADAPTIVE_METHODS
        return cls(
            backend=config.ode_backend,
            method=config.ode_method,
            steps=config.ode_steps * depth_units,
            interval=config.ode_interval,
            rtol=config.ode_rtol,
            atol=config.ode_atol,
            adjoint=config.ode_adjoint,
            max_nfe=ADAPTIVE_MAX_NFE_PER_UNIT * depth_units if default else config.ode_max_nfe,
            checkpointing=config.ode_checkpointing,
            max_nfe_is_default=default,
        )

    @property
    def adaptive(self) -> bool:
        return self.method in ADAPTIVE_METHODS


@dataclass(frozen=True)
class OdeProblem:
    """``dy/dt = field(t, y)`` over ``[0, t1]`` from ``y0``, and what a backend needs to know about its block.

    Where ``field`` is an ``nn.Module``, its parameters are the ones the adjoint differentiates.
    """

    field: VectorField
    y0: torch.Tensor  # (batch, seq, hidden)
    t1: float = 1.0
    block: str = "ODE block"  # named in errors, e.g. "encoder.layer.3.attention_ode"
    attention_mask: Any = None  # the attention layers' mask: torchode leaves padding out of its error norm
    stage_weights: StageWeights | None = None  # the gated RK2's learned weights (native backend)
    # Multistep and predictor-corrector methods (native backend): the stream's earlier evaluations, and the
    # block's learned coefficients (ab2-learned: its betas; pcformer: its EMA alpha).
    history: MultistepHistory = NO_HISTORY
    coefficients: torch.Tensor | None = None


class Solution(NamedTuple):
    y: torch.Tensor  # the state at t1
    stats: SolverStats
    history: MultistepHistory = NO_HISTORY  # after the solve (multistep and predictor-corrector methods)


@dataclass(frozen=True)
class Backend:
    """One way to integrate a block: the methods it runs (``methods.BACKEND_TABLE``) and its solve function,
    which returns ``(y, stats)`` or a ``Solution``."""

    methods: Mapping[str, str]  # our method name -> the backend's name for the *same* scheme
    solve: Callable[[OdeProblem, SolverSettings, str], tuple]


def solve(problem: OdeProblem, settings: SolverSettings) -> Solution:
    """Integrates ``problem`` as ``settings`` say, with the backend they name."""
    check_backend(settings.backend, settings.method, settings.adjoint, where=problem.block)
    backend = BACKENDS[settings.backend]
    return Solution(*backend.solve(problem, settings, backend.methods[settings.method]))


def _parameters(field: VectorField) -> tuple[torch.Tensor, ...]:
    """The parameters the adjoint differentiates: a module field's own; a plain function has none."""
    return tuple(field.parameters()) if isinstance(field, nn.Module) else ()


# ------------------------------------------------------------------------------------------------------------
# native: the project's own fixed-step integrator (every scheme of ``tableaux``); the fast path.
# ------------------------------------------------------------------------------------------------------------


def _solve_native(problem: OdeProblem, settings: SolverSettings, name: str) -> Solution:
    rule = _step_rule(problem, name)
    if settings.max_nfe is not None and settings.steps * rule.evaluations > settings.max_nfe:
        raise MaxNfeExceeded(
            f"{problem.block}: {settings.steps} steps of {name!r} need {settings.steps * rule.evaluations} "
            f"vector-field evaluations, more than ode_max_nfe={settings.max_nfe}"
        )
    return Solution(
        *integrate_steps(problem.field, problem.y0, 0.0, problem.t1, settings.steps, rule, problem.history)
    )


def _step_rule(problem: OdeProblem, name: str) -> StepRule:
    if name in MULTISTEP:
        return AdamsBashforthStep(MULTISTEP[name], problem.coefficients)
    if name in PREDICTOR_CORRECTORS:
        scheme = PREDICTOR_CORRECTORS[name]
        alpha = scheme.alpha if problem.coefficients is None else problem.coefficients
        return PredictorCorrectorStep(scheme, alpha)
    return RungeKuttaStep(TABLEAUX[name], problem.stage_weights)


# ------------------------------------------------------------------------------------------------------------
# Counting the library backends' evaluations (they do not all report them) and bounding them.
# ------------------------------------------------------------------------------------------------------------


class _CountingField:
    """Wraps a vector field: counts its evaluations, stops the solve past ``limit``, and receives
    torchdiffeq's step callbacks."""

    def __init__(self, field: VectorField, limit: int | None, block: str, default_limit: bool = False):
        self.field, self.limit, self.block, self.default_limit = field, limit, block, default_limit
        self.phase = "forward solve"
        self.nfe = self.steps = self.accepted = self.rejected = 0

    def __call__(self, t, y):
        self.nfe += 1
        if self.limit is not None and self.nfe > self.limit:
            bound = (
                f"{self.limit} vector-field evaluations (the default bound of an adaptive solve with "
                "ode_max_nfe unset)"
                if self.default_limit
                else f"ode_max_nfe={self.limit} vector-field evaluations"
            )
            raise MaxNfeExceeded(
                f"{self.block}: the {self.phase} needs more than {bound}; the block is too stiff for the "
                "tolerance (raise ode_rtol / ode_atol), or set a larger ode_max_nfe"
            )
        return self.field(t, y)

    # torchdiffeq calls these on its ``func`` (forward solve; the adjoint solve calls the *_adjoint ones).
    def callback_step(self, t0, y0, dt):
        self.steps += 1

    def start_backward(self):
        """The adjoint's backward solve gets a budget of its own."""
        self.nfe, self.phase = 0, "adjoint backward solve"


class _AdaptiveCountingField(_CountingField):
    # Only adaptive torchdiffeq solvers call these (and it warns when a fixed-grid solver's func defines
    # them).
    def callback_accept_step(self, t0, y0, dt):
        self.accepted += 1

    def callback_reject_step(self, t0, y0, dt):
        self.rejected += 1


def _counting(problem: OdeProblem, settings: SolverSettings) -> _CountingField:
    counter_class = _AdaptiveCountingField if settings.adaptive else _CountingField
    return counter_class(problem.field, settings.max_nfe, problem.block, settings.max_nfe_is_default)


def token_mask_from_attention_mask(attention_mask, batch: int, seq: int) -> torch.Tensor | None:
    """``(batch, seq)`` bool, True at real tokens, from the mask the attention layers get; None when all are
    real."""
    if not isinstance(attention_mask, torch.Tensor):
        return None  # no padding, or a mask type (flex BlockMask) we do not read
    if attention_mask.dim() == 2:
        mask = attention_mask.bool()
    elif attention_mask.dim() == 4 and attention_mask.shape[-1] == seq:
        # (batch, 1, query, key): a key is real if any query may attend to it
        valid = attention_mask if attention_mask.dtype == torch.bool else attention_mask == 0
        mask = valid[:, 0].any(dim=1)
    else:
        return None
    if mask.shape != (batch, seq):
        mask = mask.expand(batch, seq) if mask.shape[0] == 1 else None
    return mask


def _optional_library(name: str):
    """The solver library ``name`` (torchdiffeq, torchode), imported when its backend first runs."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise ImportError(f"ode_backend={name!r} needs {name}: pip install {name}") from error


# ------------------------------------------------------------------------------------------------------------
# torchdiffeq: batch-coupled steps (one RMS error norm over the whole batch).
# ------------------------------------------------------------------------------------------------------------


def _solve_torchdiffeq(
    problem: OdeProblem, settings: SolverSettings, name: str
) -> tuple[torch.Tensor, SolverStats]:
    torchdiffeq = _optional_library("torchdiffeq")
    counter, adaptive, y0 = _counting(problem, settings), settings.adaptive, problem.y0
    t = torch.tensor([0.0, problem.t1], dtype=y0.dtype, device=y0.device)
    # Fixed steps on an explicit grid: torchdiffeq's step_size grid can add a zero-length step from rounding.
    options = {} if adaptive else {"grid_constructor": _uniform_grid(settings.steps)}
    kwargs = dict(rtol=settings.rtol, atol=settings.atol, method=name, options=options)
    if settings.adjoint:
        wrapper = (_AdaptiveAdjointCountingField if adaptive else _AdjointCountingField)(counter)
        adjoint_options = {"norm": "seminorm"} if adaptive else dict(options)
        solution = torchdiffeq.odeint_adjoint(
            wrapper,
            y0,
            t,
            adjoint_params=_parameters(problem.field),
            adjoint_options=adjoint_options,
            **kwargs,
        )
    else:
        solution = torchdiffeq.odeint(counter, y0, t, **kwargs)
    steps = counter.accepted if adaptive else counter.steps
    return solution[-1], SolverStats(nfe=counter.nfe, steps=steps, rejected=counter.rejected)


def _uniform_grid(steps: int):
    def grid(func, y0, t):
        return torch.linspace(float(t[0]), float(t[-1]), steps + 1, dtype=t.dtype, device=t.device)

    return grid


class _AdjointCountingField(nn.Module):
    """torchdiffeq's adjoint calls its func for the backward solve too; the first backward call resets the
    budget."""

    def __init__(self, counter: _CountingField):
        super().__init__()
        self.counter = counter
        self.backward_started = False

    def forward(self, t, y):
        if not self.backward_started and torch.is_grad_enabled():
            # The forward solve of odeint_adjoint runs under no_grad; the backward's evaluations need grad.
            self.backward_started = True
            self.counter.start_backward()
        return self.counter(t, y)

    def callback_step(self, t0, y0, dt):
        self.counter.callback_step(t0, y0, dt)


class _AdaptiveAdjointCountingField(_AdjointCountingField):
    def callback_accept_step(self, t0, y0, dt):
        self.counter.callback_accept_step(t0, y0, dt)

    def callback_reject_step(self, t0, y0, dt):
        self.counter.callback_reject_step(t0, y0, dt)


# ------------------------------------------------------------------------------------------------------------
# torchode: every sample has its own step size, accept/reject decision and error norm.
# ------------------------------------------------------------------------------------------------------------


def _solve_torchode(
    problem: OdeProblem, settings: SolverSettings, name: str
) -> tuple[torch.Tensor, SolverStats]:
    torchode = _optional_library("torchode")
    counter, y0 = _counting(problem, settings), problem.y0
    shape, batch = y0.shape, y0.shape[0]

    def flat_field(t, y_flat):  # torchode's state is (batch, features); its t is (batch,)
        return counter(t, y_flat.view(shape)).reshape(batch, -1)

    term = torchode.ODETerm(flat_field)
    step_method = getattr(torchode, name)(term=term)
    # Time in float64: a float32 clock can fall short of t1 by one ulp after a few steps and take an extra
    # step.
    time = dict(dtype=torch.float64, device=y0.device)
    if settings.adaptive:
        norm = _masked_rms_norm(
            token_mask_from_attention_mask(problem.attention_mask, batch, shape[1]), shape
        )
        controller = torchode.IntegralController(atol=settings.atol, rtol=settings.rtol, term=term, norm=norm)
        dt0 = None
    else:
        controller = torchode.FixedStepController()
        dt0 = torch.full((batch,), problem.t1 / settings.steps, **time)
    ivp = torchode.InitialValueProblem(
        y0=y0.reshape(batch, -1),
        t_start=torch.zeros(batch, **time),
        t_end=torch.full((batch,), problem.t1, **time),
    )
    solution = torchode.AutoDiffAdjoint(step_method, controller).solve(ivp, dt0=dt0)
    if not bool((solution.status == torchode.Status.SUCCESS.value).all()):
        raise RuntimeError(f"{problem.block}: torchode stopped with status {solution.status.tolist()}")
    return solution.ys[:, -1].view(shape), _torchode_stats(solution.stats, step_method, counter.nfe)


def _torchode_stats(stats: dict, step_method, nfe: int) -> SolverStats:
    n_steps, n_accepted = stats["n_steps"], stats["n_accepted"]
    # Every batched call evaluates all samples, so the per-sample cost is what the sample's own steps needed:
    # the evaluations before the first step plus the evaluations of each step it attempted.
    per_step = _evaluations_per_step(step_method)
    initial = nfe - int(n_steps.max()) * per_step
    return SolverStats(
        nfe=nfe,
        steps=int(n_accepted.max()),
        rejected=int((n_steps - n_accepted).max()),
        nfe_per_sample=(initial + n_steps * per_step).cpu(),
        steps_per_sample=n_accepted.cpu(),
        rejected_per_sample=(n_steps - n_accepted).cpu(),
    )


def _evaluations_per_step(step_method) -> int:
    tableau = getattr(step_method, "tableau", None)
    if tableau is None:
        return 1  # Euler
    return tableau.n_stages - int(tableau.is_fsal())  # a first-same-as-last stage is reused by the next step


def _masked_rms_norm(token_mask: torch.Tensor | None, shape: torch.Size):
    """A per-sample RMS error norm over real tokens only, so padding never shrinks a sample's steps."""
    batch, seq, hidden = shape
    if token_mask is None:
        weights = None
    else:
        weights = token_mask.to(torch.float32)  # (batch, seq)
        counts = weights.sum(-1).clamp_min(1.0) * hidden

    def norm(error: torch.Tensor) -> torch.Tensor:  # (batch, seq * hidden) -> (batch,)
        squares = error.view(batch, seq, hidden).square().sum(-1)  # (batch, seq)
        if weights is None:
            return torch.sqrt(squares.sum(-1) / (seq * hidden))
        return torch.sqrt((squares * weights.to(squares.dtype)).sum(-1) / counts.to(squares.dtype))

    return norm


# ------------------------------------------------------------------------------------------------------------
# torchdyn: batch-coupled steps; its NeuralODE machinery is a LightningModule, so we use its solvers directly.
# ------------------------------------------------------------------------------------------------------------


def torchdyn_available() -> tuple[bool, str]:
    """Whether torchdyn imports here, and if not, why and how to install it."""
    try:
        import torchdyn.numerics  # noqa: F401
    except Exception as error:  # torchdyn fails with ModuleNotFoundError of its undeclared dependencies too
        return (
            False,
            f"torchdyn is not importable ({type(error).__name__}: {error}); install: {TORCHDYN_INSTALL}",
        )
    return True, ""


def _solve_torchdyn(
    problem: OdeProblem, settings: SolverSettings, name: str
) -> tuple[torch.Tensor, SolverStats]:
    try:
        from torchdyn.core import ODEProblem
        from torchdyn.numerics import odeint as torchdyn_odeint
        from torchdyn.numerics.solvers.ode import str_to_solver
    except ImportError as error:
        raise ImportError(
            f"ode_backend='torchdyn' needs torchdyn and its dependencies: {TORCHDYN_INSTALL}"
        ) from error
    counter, y0, t1 = _counting(problem, settings), problem.y0, problem.t1
    solver = str_to_solver(name, y0.dtype)
    step_times = _record_step_times(solver)
    if settings.adaptive:
        t_span = torch.tensor([0.0, t1], dtype=y0.dtype, device=y0.device)
        tolerances = dict(atol=settings.atol, rtol=settings.rtol)
    else:
        t_span = torch.linspace(0.0, t1, settings.steps + 1, dtype=y0.dtype, device=y0.device)
        tolerances = dict(atol=1e-3, rtol=1e-3)  # torchdyn warns unless a fixed-step solver gets its defaults
    if settings.adjoint:
        module = _TorchdynField(counter, [p for p in _parameters(problem.field) if p.requires_grad])
        adjoint_tolerances = {f"{key}_adjoint": value for key, value in tolerances.items()}
        ode = ODEProblem(module, solver=solver, sensitivity="adjoint", **tolerances, **adjoint_tolerances)
        _, solution = ode.odeint(y0, t_span)
    else:
        _, solution = torchdyn_odeint(counter, y0, t_span, solver, **tolerances)
    attempted = len(step_times)
    accepted = len(set(step_times)) if settings.adaptive else attempted
    stats = SolverStats(nfe=counter.nfe, steps=accepted, rejected=attempted - accepted)
    if settings.adjoint:
        counter.start_backward()
    return solution[-1], stats


def _record_step_times(solver) -> list[float]:
    """torchdyn does not report steps; a step was accepted exactly when the next one starts at a later
    time."""
    step_times: list[float] = []
    solver_step = solver.step

    def counted_step(f, x, t, dt, k1=None, args=None):
        step_times.append(float(t.detach()) if isinstance(t, torch.Tensor) else float(t))
        return solver_step(f, x, t, dt, k1=k1, args=args)

    solver.step = counted_step
    return step_times


class _TorchdynField(nn.Module):
    """torchdyn's adjoint takes the parameters from the vector field module: these are the block's own
    parameters (the same tensors, registered again), and only those the field uses (torchdyn's adjoint
    mis-sizes the gradient of a parameter the field does not use)."""

    def __init__(self, counter: _CountingField, params: list[nn.Parameter]):
        super().__init__()
        self.counter = counter
        self.block_params = nn.ParameterList(params)

    def forward(self, t, x, args=None):
        return self.counter(t, x)


# ------------------------------------------------------------------------------------------------------------
# The backends: each entry of the torch-free ``methods.BACKEND_TABLE`` with its solve function.
# ------------------------------------------------------------------------------------------------------------

_SOLVE_FUNCTIONS = {
    "native": _solve_native,
    "torchdiffeq": _solve_torchdiffeq,
    "torchode": _solve_torchode,
    "torchdyn": _solve_torchdyn,
}
BACKENDS: dict[str, Backend] = {
    name: Backend(entry.methods, _SOLVE_FUNCTIONS[name]) for name, entry in BACKEND_TABLE.items()
}
