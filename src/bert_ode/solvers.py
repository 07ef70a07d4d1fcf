"""Adapters that let the ODE-solver libraries integrate an ODE block: torchdiffeq, torchode and torchdyn.

The project's own fixed-step integrator (``integrators.integrate_fixed``) is the ``"native"`` backend and needs none of
this. Every adapter takes the same vector field ``f(t, y)`` with ``y`` of shape ``(batch, seq, hidden)``, counts its
evaluations, enforces ``ode_max_nfe`` and returns ``(y(t1), SolverStats)``.

The libraries are optional: each is imported inside the function that needs it (inside ``try``), so a checkpoint's
copied model code loads with ``trust_remote_code=True`` where they are not installed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from .integrators import SolverStats

ADAPTIVE_METHODS = ("dopri5", "bosh3", "tsit5", "adaptive_heun")
BACKENDS = ("native", "torchdiffeq", "torchode", "torchdyn")

# Our method name -> the backend's name for the *same* scheme. A method missing from a backend's table is not offered
# there, even where the library has a scheme of that name that differs (torchdiffeq's "rk4" is the 3/8 rule, and its
# "heun3" is not Kutta's rk3). The native backend runs every Butcher tableau of ``tableaux.TABLEAUX``.
BACKEND_METHODS: dict[str, dict[str, str]] = {
    "torchdiffeq": {
        "euler": "euler",
        "midpoint": "midpoint",
        "heun": "heun2",
        "dopri5": "dopri5",
        "bosh3": "bosh3",
        "adaptive_heun": "adaptive_heun",
    },
    # torchode's Heun carries an embedded Euler error estimate: with a fixed step it is "heun", with the integral
    # controller it is the same Heun-Euler pair that torchdiffeq calls "adaptive_heun".
    "torchode": {"euler": "euler", "heun": "heun", "adaptive_heun": "heun", "dopri5": "dopri5", "tsit5": "tsit5"},
    "torchdyn": {"euler": "euler", "midpoint": "midpoint", "rk4": "rk4", "dopri5": "dopri5", "tsit5": "tsit5"},
}
# Backends whose adjoint this project wires up. torchode's BacksolveAdjoint vmaps a per-sample VJP through
# ``functional_call`` of one module and keeps a per-sample copy of every parameter gradient (batch x parameters of
# memory), which neither fits a vector field closing over a layer and an attention mask nor saves memory.
ADJOINT_BACKENDS = ("torchdiffeq", "torchdyn")

TORCHDYN_INSTALL = (
    "pip install --no-deps torchdyn==1.0.6 && pip install -c constraints.txt pytorch-lightning torchcde torchsde attrs"
)


class MaxNfeExceeded(RuntimeError):
    """An ODE solve needed more vector-field evaluations than ``config.ode_max_nfe`` allows."""


class _CountingField:
    """Wraps a vector field: counts its evaluations, stops the solve past ``limit``, and receives torchdiffeq's
    step callbacks."""

    def __init__(self, field: Callable, limit: int | None, block: str):
        self.field, self.limit, self.block = field, limit, block
        self.phase = "forward solve"
        self.nfe = self.steps = self.accepted = self.rejected = 0

    def __call__(self, t, y):
        self.nfe += 1
        if self.limit is not None and self.nfe > self.limit:
            raise MaxNfeExceeded(
                f"{self.block}: the {self.phase} needs more than ode_max_nfe={self.limit} vector-field evaluations; "
                "the block is too stiff for the tolerance (raise ode_rtol / ode_atol), or raise ode_max_nfe"
            )
        return self.field(t, y)

    # torchdiffeq calls these on its ``func`` (forward solve; the adjoint solve calls the *_adjoint ones).
    def callback_step(self, t0, y0, dt):
        self.steps += 1

    def start_backward(self):
        """The adjoint's backward solve gets a budget of its own."""
        self.nfe, self.phase = 0, "adjoint backward solve"


class _AdaptiveCountingField(_CountingField):
    # Only adaptive torchdiffeq solvers call these (and it warns when a fixed-grid solver's func defines them).
    def callback_accept_step(self, t0, y0, dt):
        self.accepted += 1

    def callback_reject_step(self, t0, y0, dt):
        self.rejected += 1


def token_mask_from_attention_mask(attention_mask, batch: int, seq: int) -> torch.Tensor | None:
    """``(batch, seq)`` bool, True at real tokens, from the mask the attention layers get; None when all are real."""
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


def solve_with_backend(
    field: Callable,
    y: torch.Tensor,
    t1: float,
    steps: int,
    *,
    backend: str,
    method: str,
    rtol: float,
    atol: float,
    adjoint: bool,
    max_nfe: int | None,
    params: Sequence[torch.Tensor] = (),
    attention_mask=None,
    block: str = "ODE block",
) -> tuple[torch.Tensor, SolverStats]:
    """Integrates ``dy/dt = field(t, y)`` over ``[0, t1]`` with a library backend.

    ``steps`` is used by fixed-step methods only; ``params`` are the parameters the field closes over (the adjoint
    computes their gradients); ``attention_mask`` lets torchode leave padding out of its error norm.
    """
    table = BACKEND_METHODS.get(backend)
    if table is None or method not in table:
        supported = ", ".join(map(repr, table)) if table else "none"
        raise ValueError(f"ode_backend={backend!r} does not run ode_method={method!r}; it runs: {supported}")
    if adjoint and backend not in ADJOINT_BACKENDS:
        raise ValueError(f"ode_adjoint=True is supported with ode_backend in {ADJOINT_BACKENDS}, not {backend!r}")
    adaptive = method in ADAPTIVE_METHODS
    counter = (_AdaptiveCountingField if adaptive else _CountingField)(field, max_nfe, block)
    solve = {"torchdiffeq": _solve_torchdiffeq, "torchode": _solve_torchode, "torchdyn": _solve_torchdyn}[backend]
    return solve(counter, y, t1, steps, table[method], adaptive, rtol, atol, adjoint, params, attention_mask)


# ---------------------------------------------------------------------------------------------------------------
# torchdiffeq: batch-coupled steps (one RMS error norm over the whole batch).
# ---------------------------------------------------------------------------------------------------------------


def _solve_torchdiffeq(counter, y, t1, steps, name, adaptive, rtol, atol, adjoint, params, attention_mask):
    try:
        import torchdiffeq
    except ImportError as error:
        raise ImportError("ode_backend='torchdiffeq' needs torchdiffeq: pip install torchdiffeq") from error
    t = torch.tensor([0.0, t1], dtype=y.dtype, device=y.device)
    if adaptive:
        options = {}
    else:
        # An explicit grid: torchdiffeq's step_size grid can add a zero-length step from rounding.
        def grid(func, y0, t):
            return torch.linspace(float(t[0]), float(t[-1]), steps + 1, dtype=t.dtype, device=t.device)

        options = {"grid_constructor": grid}
    kwargs = dict(rtol=rtol, atol=atol, method=name, options=options)
    if adjoint:
        adjoint_options = {"norm": "seminorm"} if adaptive else dict(options)
        wrapper = (_AdaptiveAdjointCountingField if adaptive else _AdjointCountingField)(counter)
        solution = torchdiffeq.odeint_adjoint(
            wrapper,
            y,
            t,
            adjoint_params=tuple(params),
            adjoint_options=adjoint_options,
            **kwargs,
        )
    else:
        solution = torchdiffeq.odeint(counter, y, t, **kwargs)
    stats = SolverStats(
        nfe=counter.nfe,
        steps=counter.accepted if adaptive else counter.steps,
        rejected=counter.rejected,
    )
    return solution[-1], stats


class _AdjointCountingField(nn.Module):
    """torchdiffeq's adjoint calls its func for the backward solve too; the first backward call resets the budget."""

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


# ---------------------------------------------------------------------------------------------------------------
# torchode: every sample has its own step size, accept/reject decision and error norm.
# ---------------------------------------------------------------------------------------------------------------


def _solve_torchode(counter, y, t1, steps, name, adaptive, rtol, atol, adjoint, params, attention_mask):
    try:
        import torchode
    except ImportError as error:
        raise ImportError("ode_backend='torchode' needs torchode: pip install torchode") from error
    shape, batch = y.shape, y.shape[0]

    def flat_field(t, y_flat):  # torchode's state is (batch, features); its t is (batch,)
        return counter(t, y_flat.view(shape)).reshape(batch, -1)

    term = torchode.ODETerm(flat_field)
    step_method = {"euler": torchode.Euler, "heun": torchode.Heun, "dopri5": torchode.Dopri5, "tsit5": torchode.Tsit5}[
        name
    ](term=term)
    # Time in float64: a float32 clock can fall short of t1 by one ulp after a few steps and take an extra step.
    time = dict(dtype=torch.float64, device=y.device)
    if adaptive:
        norm = _masked_rms_norm(token_mask_from_attention_mask(attention_mask, batch, shape[1]), shape)
        controller = torchode.IntegralController(atol=atol, rtol=rtol, term=term, norm=norm)
        dt0 = None
    else:
        controller = torchode.FixedStepController()
        dt0 = torch.full((batch,), t1 / steps, **time)
    solver = torchode.AutoDiffAdjoint(step_method, controller)
    problem = torchode.InitialValueProblem(
        y0=y.reshape(batch, -1), t_start=torch.zeros(batch, **time), t_end=torch.full((batch,), float(t1), **time)
    )
    solution = solver.solve(problem, dt0=dt0)
    if not bool((solution.status == torchode.Status.SUCCESS.value).all()):
        raise RuntimeError(f"{counter.block}: torchode stopped with status {solution.status.tolist()}")
    n_steps, n_accepted = solution.stats["n_steps"], solution.stats["n_accepted"]
    # Every batched call evaluates all samples, so the per-sample cost is what the sample's own steps needed: the
    # evaluations before the first step plus the evaluations of each step it attempted.
    per_step = _evaluations_per_step(step_method)
    initial = counter.nfe - int(n_steps.max()) * per_step
    stats = SolverStats(
        nfe=counter.nfe,
        steps=int(n_accepted.max()),
        rejected=int((n_steps - n_accepted).max()),
        nfe_per_sample=(initial + n_steps * per_step).cpu(),
        steps_per_sample=n_accepted.cpu(),
        rejected_per_sample=(n_steps - n_accepted).cpu(),
    )
    return solution.ys[:, -1].view(shape), stats


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


# ---------------------------------------------------------------------------------------------------------------
# torchdyn: batch-coupled steps; its NeuralODE machinery is a LightningModule, so we use its solvers directly.
# ---------------------------------------------------------------------------------------------------------------


def torchdyn_available() -> tuple[bool, str]:
    """Whether torchdyn imports here, and if not, why and how to install it."""
    try:
        import torchdyn.numerics  # noqa: F401
    except Exception as error:  # torchdyn fails with ModuleNotFoundError of its undeclared dependencies too
        return False, f"torchdyn is not importable ({type(error).__name__}: {error}); install: {TORCHDYN_INSTALL}"
    return True, ""


def _solve_torchdyn(counter, y, t1, steps, name, adaptive, rtol, atol, adjoint, params, attention_mask):
    try:
        from torchdyn.core import ODEProblem
        from torchdyn.numerics import odeint as torchdyn_odeint
        from torchdyn.numerics.solvers.ode import str_to_solver
    except ImportError as error:
        raise ImportError(f"ode_backend='torchdyn' needs torchdyn and its dependencies: {TORCHDYN_INSTALL}") from error
    solver = str_to_solver(name, y.dtype)
    step_times: list[float] = []
    solver_step = solver.step

    def counted_step(f, x, t, dt, k1=None, args=None):
        # torchdyn does not report steps; a step was accepted exactly when the next one starts at a later time.
        step_times.append(float(t.detach()) if isinstance(t, torch.Tensor) else float(t))
        return solver_step(f, x, t, dt, k1=k1, args=args)

    solver.step = counted_step
    if adaptive:
        t_span = torch.tensor([0.0, t1], dtype=y.dtype, device=y.device)
        tolerances = dict(atol=atol, rtol=rtol)
    else:
        t_span = torch.linspace(0.0, t1, steps + 1, dtype=y.dtype, device=y.device)
        tolerances = dict(atol=1e-3, rtol=1e-3)  # torchdyn warns unless a fixed-step solver gets its defaults
    if adjoint:
        trainable = [p for p in params if p.requires_grad]
        module = _TorchdynField(counter, trainable)
        adjoint_tolerances = {f"{key}_adjoint": value for key, value in tolerances.items()}
        problem = ODEProblem(module, solver=solver, sensitivity="adjoint", **tolerances, **adjoint_tolerances)
        _, solution = problem.odeint(y, t_span)
    else:
        _, solution = torchdyn_odeint(counter, y, t_span, solver, **tolerances)
    attempted = len(step_times)
    accepted = len(set(step_times)) if adaptive else attempted
    stats = SolverStats(nfe=counter.nfe, steps=accepted, rejected=attempted - accepted)
    if adjoint:
        counter.start_backward()
    return solution[-1], stats


class _TorchdynField(nn.Module):
    """torchdyn's adjoint takes the parameters from the vector field module: these are the block's own parameters
    (the same tensors, registered again), and only those the field uses (torchdyn's adjoint mis-sizes the gradient
    of a parameter the field does not use)."""

    def __init__(self, counter: _CountingField, params: Sequence[nn.Parameter]):
        super().__init__()
        self.counter = counter
        self.block_params = nn.ParameterList(params)

    def forward(self, t, x, args=None):
        return self.counter(t, x)
