"""The statistics of a ``cooldowns`` study: when runs leave the plateau, and what a variant's compute is
worth.

* **Escape time** (the drop's endpoint): the tokens (and FLOPs) until a constant-rate run's validation loss
  is first ``margin`` nats below the unigram entropy. A run that has not got there when it stops is a censored
  observation, so escape times are compared as survival data: Kaplan-Meier curves and medians
  (``scipy.stats.ecdf`` on ``CensoredData``) and the log-rank test (``scipy.stats.logrank``).
* **Compute multiplier** (as MUDDFormer reports it): at a variant's point (its loss ``L`` after ``C``
  training FLOPs), the FLOPs BERT needs to reach ``L`` on its own curve, divided by ``C``. Above 1, the
  variant is worth more than its compute. Read per seed against the same seed's BERT (same data order and
  masks), only inside BERT's measured curve (never extrapolated: a loss BERT does not reach within its run
  gives no multiplier), with a bootstrap interval over seeds.
* **Gaps**: at each cooldown budget, the paired per-seed difference to BERT at equal tokens, and at equal
  FLOPs (BERT read off its cooldown endpoints, log-linearly between them, inside their range only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from ..utils.metrics import confidence_interval
from ..utils.records import Record
from .records import BranchUnit, ConstantRun, CurvePoint

# The thresholds the escape is read at: 1 nat below unigram (the plateau left), and 2 (well past the drop).
ESCAPE_MARGINS = (1.0, 2.0)


def escape_tokens(curve: Sequence[CurvePoint], unigram: float, margin: float) -> int | None:
    """Tokens at the first evaluation whose validation loss is ``margin`` nats below ``unigram``."""
    return next((point.tokens for point in curve if point.val_loss <= unigram - margin), None)


@dataclass
class EscapeSummary(Record):
    """One variant's escape times at one threshold, in tokens (FLOPs: tokens x its FLOPs per token)."""

    variant: str
    margin: float
    tokens: list[int | None]  # per seed; None: not within the run (censored at ``run_tokens``)
    run_tokens: list[int]
    seeds: list[int]
    flops_per_token: float
    escaped: int  # how many runs escaped
    median_tokens: float | None  # Kaplan-Meier median; None while fewer than half have escaped
    logrank_p_tokens: float | None = None  # against the baseline
    logrank_p_flops: float | None = None


def _censored(times: Sequence[float | None], limits: Sequence[float]) -> stats.CensoredData:
    observed = [t for t in times if t is not None]
    right = [limit for t, limit in zip(times, limits, strict=True) if t is None]
    return stats.CensoredData(uncensored=observed, right=right)


def km_median(times: Sequence[float | None], limits: Sequence[float]) -> float | None:
    """The Kaplan-Meier median: the first time the estimated share not yet escaped is <= 1/2."""
    if not any(t is not None for t in times):
        return None
    survival = stats.ecdf(_censored(times, limits)).sf
    below = np.nonzero(survival.probabilities <= 0.5)[0]
    return float(survival.quantiles[below[0]]) if below.size else None


def logrank_p(a: tuple[list, list], b: tuple[list, list]) -> float | None:
    """Log-rank p-value of two samples of (times, limits); ``None`` where neither has an observed time."""
    if not any(t is not None for t in a[0] + b[0]):
        return None
    return float(stats.logrank(_censored(*a), _censored(*b)).pvalue)


def escape_summaries(runs: list[ConstantRun], baseline: str, margin: float) -> dict[str, EscapeSummary]:
    """Per variant: escape times per seed, the Kaplan-Meier median, the log-rank test against ``baseline`` in
    tokens and in FLOPs (every run of a variant: main and escape seeds alike)."""
    by_variant: dict[str, list[ConstantRun]] = {}
    for run in sorted(runs, key=lambda r: r.seed):
        by_variant.setdefault(run.variant, []).append(run)
    summaries = {}
    for name, group in by_variant.items():
        times = [
            escape_tokens(r.curve, r.unigram_entropy, margin) if r.unigram_entropy else None for r in group
        ]
        limits = [r.tokens for r in group]
        summaries[name] = EscapeSummary(
            variant=name,
            margin=margin,
            tokens=times,
            run_tokens=limits,
            seeds=[r.seed for r in group],
            flops_per_token=group[0].train_flops_per_token,
            escaped=sum(t is not None for t in times),
            median_tokens=km_median(times, limits),
        )
    reference = summaries.get(baseline)
    for summary in summaries.values():
        if reference is None or summary is reference:
            continue
        summary.logrank_p_tokens = logrank_p(
            (summary.tokens, summary.run_tokens), (reference.tokens, reference.run_tokens)
        )
        summary.logrank_p_flops = logrank_p(_in_flops(summary), _in_flops(reference))
    return summaries


def _in_flops(summary: EscapeSummary) -> tuple[list, list]:
    scale = summary.flops_per_token
    return (
        [None if t is None else t * scale for t in summary.tokens],
        [limit * scale for limit in summary.run_tokens],
    )


# ------------------------------------------------------------------------------------------------------------
# Compute multiplier
# ------------------------------------------------------------------------------------------------------------


def flops_to_reach(loss: float, flops: Sequence[float], losses: Sequence[float]) -> float | None:
    """The FLOPs at which a curve (``losses`` at increasing ``flops``) first reaches ``loss``, log-linear
    between its points; ``None`` if it never does within its points (no extrapolation)."""
    for i, value in enumerate(losses):
        if value <= loss:
            if i == 0:
                return None if value < loss else float(flops[0])  # below the curve's first point: unknown
            x0, x1, y0, y1 = math.log(flops[i - 1]), math.log(flops[i]), losses[i - 1], value
            return float(math.exp(x0 + (x1 - x0) * (y0 - loss) / (y0 - y1)))
    return None


def loss_at(target: float, flops: Sequence[float], losses: Sequence[float]) -> float | None:
    """A curve's loss at ``target`` FLOPs, linear in log FLOPs between its points; ``None`` outside them."""
    if not flops or target < flops[0] or target > flops[-1]:
        return None
    logs = np.log(np.asarray(flops, dtype=float))
    return float(np.interp(math.log(target), logs, np.asarray(losses, dtype=float)))


@dataclass
class MultiplierPoint(Record):
    """A variant's compute multiplier at one point, over the seeds that have both it and BERT's curve."""

    variant: str
    where: str  # "constant" (a constant-rate evaluation) or "cooldown"
    tokens: int
    per_seed: dict[str, float | None]  # seed -> multiplier; None: BERT's curve does not reach the loss
    mean: float | None = None  # geometric mean over the seeds with a multiplier
    low: float | None = None  # 95% bootstrap interval of the geometric mean
    high: float | None = None
    beyond_bert: int = 0  # seeds whose loss BERT's curve does not reach: the multiplier exceeds its range
    # seeds whose loss BERT's first point already beats: the multiplier is below first-point FLOPs / own FLOPs
    before_bert: int = 0
    upper_bound: float | None = None  # the largest such bound


def bootstrap_interval(values: Sequence[float], rounds: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the geometric mean of ``values`` (resampled over seeds)."""
    logs = np.log(np.asarray(values, dtype=float))
    rng = np.random.default_rng(seed)
    means = logs[rng.integers(0, logs.size, size=(rounds, logs.size))].mean(axis=1)
    return float(np.exp(np.percentile(means, 2.5))), float(np.exp(np.percentile(means, 97.5)))


def _multiplier(
    variant: str, where: str, tokens: int, per_seed: dict[str, float | None], bounds: list[float]
) -> MultiplierPoint:
    """``per_seed``: the multiplier, or None where BERT's curve does not bracket the loss; ``bounds``: for the
    seeds whose loss BERT's first point already beats, first-point FLOPs / own FLOPs (upper bounds)."""
    point = MultiplierPoint(variant=variant, where=where, tokens=tokens, per_seed=per_seed)
    values = [v for v in per_seed.values() if v is not None]
    point.before_bert = len(bounds)
    point.upper_bound = max(bounds) if bounds else None
    point.beyond_bert = sum(v is None for v in per_seed.values()) - len(bounds)
    if values:
        point.mean = float(np.exp(np.mean(np.log(values))))
        point.low, point.high = bootstrap_interval(values) if len(values) > 1 else (None, None)
    return point


def constant_multipliers(
    runs: list[ConstantRun], variant: str, baseline: str, after_tokens: int, every: int = 1
) -> list[MultiplierPoint]:
    """The multiplier at every ``every``-th constant-rate evaluation of ``variant`` past ``after_tokens``
    (BERT's escape), each seed against the same seed's BERT constant-rate curve."""
    bert = {r.seed: r for r in runs if r.variant == baseline and not r.escape_only}
    mine = {r.seed: r for r in runs if r.variant == variant and not r.escape_only and r.seed in bert}
    if not mine:
        return []
    length = min(len(r.curve) for r in mine.values())
    points = []
    for i in range(0, length, every):
        tokens = next(iter(mine.values())).curve[i].tokens
        if tokens <= after_tokens:
            continue
        per_seed, bounds = {}, []
        for seed, run in mine.items():
            reference = bert[seed]
            flops = [p.tokens * reference.train_flops_per_token for p in reference.curve]
            losses = [p.val_loss for p in reference.curve]
            spent = run.curve[i].tokens * run.train_flops_per_token
            per_seed[str(seed)] = _ratio(run.curve[i].val_loss, flops, losses, spent, bounds)
        points.append(_multiplier(variant, "constant", tokens, per_seed, bounds))
    return points


def _endpoints(
    branches: list[BranchUnit], variant: str, seed: int, escaped_at: dict[int, int] | None = None
) -> tuple[list[float], list[float]]:
    """``variant``'s cooldown endpoints (FLOPs, loss) for ``seed``; with ``escaped_at`` (seed -> tokens when
    that seed's constant-rate run left the plateau) only those past it: a reading between an endpoint on the
    plateau and one past the drop would interpolate across the drop, where the curve is unknown."""
    after = (escaped_at or {}).get(seed, 0)
    mine = sorted(
        (b for b in branches if b.variant == variant and b.seed == seed and b.budget_tokens >= after),
        key=lambda b: b.train_flops,
    )
    return [b.train_flops for b in mine], [b.val_loss for b in mine]


def _ratio(loss: float, flops: list[float], losses: list[float], spent: float, bounds: list) -> float | None:
    """BERT's FLOPs to ``loss`` over ``spent``; None outside BERT's curve, where a loss its first point
    already beats adds the upper bound first-point FLOPs / ``spent`` to ``bounds``."""
    needed = flops_to_reach(loss, flops, losses)
    if needed is None and loss > losses[0]:
        bounds.append(flops[0] / spent)
    return None if needed is None else needed / spent


def cooldown_multipliers(
    branches: list[BranchUnit], variant: str, baseline: str, escaped_at: dict[int, int] | None = None
) -> list[MultiplierPoint]:
    """The multiplier at each of ``variant``'s cooldown endpoints, against BERT's cooldown endpoints (those
    past BERT's escape, with ``escaped_at``: see ``_endpoints``)."""
    points = []
    for budget in sorted({b.budget_tokens for b in branches if b.variant == variant}):
        per_seed, bounds = {}, []
        for branch in (b for b in branches if b.variant == variant and b.budget_tokens == budget):
            flops, losses = _endpoints(branches, baseline, branch.seed, escaped_at)
            if flops:
                per_seed[str(branch.seed)] = _ratio(
                    branch.val_loss, flops, losses, branch.train_flops, bounds
                )
        if per_seed:
            points.append(_multiplier(variant, "cooldown", budget, per_seed, bounds))
    return points


# ------------------------------------------------------------------------------------------------------------
# Gaps at the cooldown endpoints
# ------------------------------------------------------------------------------------------------------------


@dataclass
class Gap(Record):
    """A variant's paired per-seed difference to BERT at one cooldown budget (positive: behind BERT)."""

    variant: str
    budget_tokens: int
    equal_tokens: list[float] = field(default_factory=list)  # per seed: loss - BERT's loss at the same tokens
    equal_flops: list[float] = field(default_factory=list)  # per seed: loss - BERT's loss at the same FLOPs
    equal_tokens_interval: tuple[float, float] | None = None  # 95% paired-t interval of the mean
    equal_flops_interval: tuple[float, float] | None = None


def gaps(
    branches: list[BranchUnit], variant: str, baseline: str, escaped_at: dict[int, int] | None = None
) -> list[Gap]:
    """Equal-token and equal-FLOPs gaps at each of ``variant``'s budgets, seed by seed; the equal-FLOPs loss
    of BERT is read between its endpoints past its escape only, with ``escaped_at`` (see ``_endpoints``)."""
    result = []
    for budget in sorted({b.budget_tokens for b in branches if b.variant == variant}):
        gap = Gap(variant=variant, budget_tokens=budget)
        for branch in sorted(
            (b for b in branches if b.variant == variant and b.budget_tokens == budget), key=lambda b: b.seed
        ):
            same = [b for b in branches if b.variant == baseline and b.seed == branch.seed]
            at_tokens = next((b.val_loss for b in same if b.budget_tokens == budget), None)
            if at_tokens is not None:
                gap.equal_tokens.append(branch.val_loss - at_tokens)
            at_flops = loss_at(branch.train_flops, *_endpoints(branches, baseline, branch.seed, escaped_at))
            if at_flops is not None:
                gap.equal_flops.append(branch.val_loss - at_flops)
        if len(gap.equal_tokens) > 1:
            gap.equal_tokens_interval = confidence_interval(gap.equal_tokens)
        if len(gap.equal_flops) > 1:
            gap.equal_flops_interval = confidence_interval(gap.equal_flops)
        result.append(gap)
    return result


__all__ = [
    "ESCAPE_MARGINS",
    "EscapeSummary",
    "Gap",
    "MultiplierPoint",
    "bootstrap_interval",
    "constant_multipliers",
    "cooldown_multipliers",
    "escape_summaries",
    "escape_tokens",
    "flops_to_reach",
    "gaps",
    "km_median",
    "logrank_p",
    "loss_at",
]
