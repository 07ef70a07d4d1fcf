"""The statistics of a ``cooldowns`` study: when runs leave the plateau, and what a variant's compute is
worth. The small-sample machinery (exact tests, intervals, equivalence, censored means) is ``small_sample``.

* **Escape time** (the drop's endpoint): the tokens (and FLOPs) until a constant-rate run's validation loss
  is first ``margin`` nats below the unigram entropy. A run that has not got there when it stops is a censored
  observation, so escape times are compared as survival data: Kaplan-Meier curves and medians
  (``scipy.stats.ecdf`` on ``CensoredData``) and the log-rank test, exact by permutation of the seeds.
* **Compute multiplier** (as MUDDFormer reports it): at a variant's point (its loss ``L`` after ``C``
  training FLOPs), the FLOPs BERT needs to reach ``L`` on its curve, divided by ``C``. Above 1, the variant is
  worth more than its compute. Read against BERT's curve averaged over its seeds (``pooled``) or the same
  seed's, only inside BERT's measured curve: a loss outside it is a bound on that seed's multiplier, kept as
  one. The geometric mean over seeds gets a t interval on logs.
* **Gaps**: at each cooldown budget, the difference to BERT at equal tokens (paired by seed, and Welch's
  unpaired), and at equal FLOPs (BERT read off its cooldown endpoints, log-linearly between them, inside
  their range only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from ..utils.records import Record
from .delay import pooled_curve
from .records import BranchUnit, ConstantRun, CurvePoint
from .small_sample import (
    ExactTest,
    Interval,
    Tost,
    censored_geometric_range,
    geometric_mean,
    log_t_interval,
    paired_bootstrap,
    permutation_logrank,
    t_interval,
    unpaired_bootstrap,
    welch_interval,
)

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
    logrank_tokens: ExactTest | None = None  # against the reference arm (the baseline unless said)
    logrank_flops: ExactTest | None = None


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
        if reference is not None and summary is not reference:
            summary.logrank_tokens, summary.logrank_flops = escape_tests(summary, reference)
    return summaries


def escape_tests(a: EscapeSummary, b: EscapeSummary) -> tuple[ExactTest | None, ExactTest | None]:
    """The permutation log-rank test of two arms' escape times, in tokens and in FLOPs."""
    return (
        permutation_logrank((a.tokens, a.run_tokens), (b.tokens, b.run_tokens)),
        permutation_logrank(_in_flops(a), _in_flops(b)),
    )


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
    """A variant's compute multiplier at one point, one value or bound per seed.

    ``reference``: against the same seed's BERT curve (``"same seed"``: shared data order and masks, but
    each ratio carries one BERT seed's noise) or against BERT's curve averaged over its seeds (``"pooled"``).
    A seed whose loss lies outside BERT's curve is censored and kept as a bound: the geometric mean over
    every seed then has a range (``mean_range``), and no interval.
    """

    variant: str
    where: str  # "constant" (a constant-rate evaluation) or "cooldown"
    tokens: int
    per_seed: dict[str, float | None]  # seed -> multiplier; None: censored (a bound below)
    reference: str = "same seed"
    upper_bounds: dict[str, float] = field(default_factory=dict)  # BERT's first point beats it: <= bound
    lower_bounds: dict[str, float] = field(default_factory=dict)  # beyond BERT's lowest loss: >= bound
    mean: float | None = None  # geometric mean over every seed; None where a seed is censored
    mean_range: tuple[float, float] | None = None  # censored: the geometric means the bounds allow
    interval: Interval | None = None  # 95% t on logs (no censored seed)
    bootstrap: Interval | None = None  # percentile bootstrap, only with BOOTSTRAP_MIN_SEEDS seeds
    tost: Tost | None = None  # equivalence against the study's margin (set by the report)

    @property
    def read(self) -> list[float]:
        return [v for v in self.per_seed.values() if v is not None]

    @property
    def censored(self) -> int:
        return len(self.upper_bounds) + len(self.lower_bounds)


def _ratio(loss: float, flops: Sequence[float], losses: Sequence[float], spent: float) -> tuple[str, float]:
    """BERT's FLOPs to ``loss`` over ``spent``: ``("read", value)``; outside BERT's curve a bound,
    ``("below", first-point FLOPs / spent)`` where its first point already beats the loss and ``("above",
    last-point FLOPs / spent)`` where it never reaches it."""
    needed = flops_to_reach(loss, flops, losses)
    if needed is not None:
        return "read", needed / spent
    if loss > losses[0]:
        return "below", flops[0] / spent
    return "above", flops[-1] / spent


def _multiplier(
    variant: str, where: str, tokens: int, readings: dict[str, tuple[str, float]], reference: str
) -> MultiplierPoint:
    point = MultiplierPoint(variant=variant, where=where, tokens=tokens, per_seed={}, reference=reference)
    for seed, (kind, value) in readings.items():
        point.per_seed[seed] = value if kind == "read" else None
        if kind == "below":
            point.upper_bounds[seed] = value
        elif kind == "above":
            point.lower_bounds[seed] = value
    if point.censored:
        point.mean_range = censored_geometric_range(
            point.read, list(point.upper_bounds.values()), list(point.lower_bounds.values())
        )
    else:
        point.mean = geometric_mean(point.read)
        point.interval = log_t_interval(point.read)
        point.bootstrap = paired_bootstrap(point.read) if reference == "same seed" else None
    return point


def constant_multipliers(
    runs: list[ConstantRun],
    variant: str,
    baseline: str,
    after_tokens: int,
    every: int = 1,
    pooled: bool = False,
) -> list[MultiplierPoint]:
    """The multiplier at every ``every``-th constant-rate evaluation of ``variant`` past ``after_tokens``
    (BERT's escape), each seed against the same seed's BERT constant-rate curve, or with ``pooled`` against
    BERT's curve averaged over its seeds (every seed of the variant then counts)."""
    bert = {r.seed: r for r in runs if r.variant == baseline and not r.escape_only}
    mine = {
        r.seed: r for r in runs if r.variant == variant and not r.escape_only and (pooled or r.seed in bert)
    }
    if not mine or not bert:
        return []
    pooled_tokens, pooled_losses = pooled_curve(list(bert.values()))
    cost = next(iter(bert.values())).train_flops_per_token
    length = min(len(r.curve) for r in mine.values())
    points = []
    for i in range(0, length, every):
        tokens = next(iter(mine.values())).curve[i].tokens
        if tokens <= after_tokens:
            continue
        readings = {}
        for seed, run in mine.items():
            if pooled:
                flops, losses = [t * cost for t in pooled_tokens], pooled_losses
            else:
                reference = bert[seed]
                flops = [p.tokens * reference.train_flops_per_token for p in reference.curve]
                losses = [p.val_loss for p in reference.curve]
            spent = run.curve[i].tokens * run.train_flops_per_token
            readings[str(seed)] = _ratio(run.curve[i].val_loss, flops, losses, spent)
        points.append(_multiplier(variant, "constant", tokens, readings, "pooled" if pooled else "same seed"))
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


def pooled_endpoints(
    branches: list[BranchUnit], baseline: str, seeds: Sequence[int], escaped_at: dict[int, int] | None = None
) -> tuple[list[float], list[float]]:
    """BERT's cooldown endpoints averaged over ``seeds`` (a seed drawn twice counts twice), at the budgets
    every one of them has and is past its escape at (no reading across any seed's drop)."""
    after = max(((escaped_at or {}).get(seed, 0) for seed in seeds), default=0)
    by_budget: dict[int, dict[int, BranchUnit]] = {}
    for branch in branches:
        if branch.variant == baseline and branch.budget_tokens >= after:
            by_budget.setdefault(branch.budget_tokens, {})[branch.seed] = branch
    flops, losses = [], []
    for budget in sorted(by_budget):
        if all(seed in by_budget[budget] for seed in seeds):
            group = [by_budget[budget][seed] for seed in seeds]
            flops.append(float(np.mean([b.train_flops for b in group])))
            losses.append(float(np.mean([b.val_loss for b in group])))
    return flops, losses


def _pooled_multiplier(branches: list[BranchUnit], baseline: str, escaped_at: dict[int, int] | None):
    """The geometric-mean multiplier of some of a variant's endpoints against BERT's endpoints pooled over
    some of its seeds (either drawn with repeats): the statistic of the unpaired bootstrap."""

    def statistic(endpoints: list[BranchUnit], seeds: list[int]) -> float | None:
        flops, losses = pooled_endpoints(branches, baseline, seeds, escaped_at)
        if not flops:
            return None
        found = [_ratio(b.val_loss, flops, losses, b.train_flops) for b in endpoints]
        return geometric_mean([v for _, v in found]) if all(k == "read" for k, _ in found) else None

    return statistic


def cooldown_multipliers(
    branches: list[BranchUnit],
    variant: str,
    baseline: str,
    escaped_at: dict[int, int] | None = None,
    pooled: bool = False,
) -> list[MultiplierPoint]:
    """The multiplier at each of ``variant``'s cooldown endpoints, against the same seed's BERT endpoints,
    or with ``pooled`` against BERT's endpoints averaged over its seeds (``pooled_endpoints``); only BERT's
    endpoints past its escape with ``escaped_at`` (see ``_endpoints``). A pooled point also gets the
    unpaired bootstrap (both arms' seeds resampled) where each arm has enough seeds for one."""
    bert_seeds = sorted({b.seed for b in branches if b.variant == baseline})
    reference = pooled_endpoints(branches, baseline, bert_seeds, escaped_at) if pooled else None
    points = []
    for budget in sorted({b.budget_tokens for b in branches if b.variant == variant}):
        mine = sorted(
            (b for b in branches if b.variant == variant and b.budget_tokens == budget), key=lambda b: b.seed
        )
        readings = {}
        for branch in mine:
            flops, losses = reference or _endpoints(branches, baseline, branch.seed, escaped_at)
            if flops:
                readings[str(branch.seed)] = _ratio(branch.val_loss, flops, losses, branch.train_flops)
        if not readings:
            continue
        point = _multiplier(variant, "cooldown", budget, readings, "pooled" if pooled else "same seed")
        if pooled and point.mean is not None:
            statistic = _pooled_multiplier(branches, baseline, escaped_at)
            point.bootstrap = unpaired_bootstrap(statistic, mine, bert_seeds)
        points.append(point)
    return points


# ------------------------------------------------------------------------------------------------------------
# Gaps at the cooldown endpoints
# ------------------------------------------------------------------------------------------------------------


@dataclass
class Gap(Record):
    """A variant's difference to BERT at one cooldown budget (positive: behind BERT)."""

    variant: str
    budget_tokens: int
    equal_tokens: list[float] = field(default_factory=list)  # per seed: loss - the same seed's BERT loss
    equal_flops: list[float] = field(default_factory=list)  # per seed: loss - BERT's loss at the same FLOPs
    equal_tokens_interval: Interval | None = None  # 95% paired t of the mean
    equal_flops_interval: Interval | None = None  # 95% paired t
    losses: list[float] = field(default_factory=list)  # the variant's losses, every seed at this budget
    bert_losses: list[float] = field(default_factory=list)  # BERT's, every seed at this budget
    unpaired_interval: Interval | None = None  # Welch's 95% t of the difference of the two means
    tost: Tost | None = None  # equivalence at equal tokens against the study's loss margin (the report)

    @property
    def unpaired(self) -> float | None:
        """The difference of the two arms' mean losses at equal tokens (every seed of each)."""
        if not self.losses or not self.bert_losses:
            return None
        return float(np.mean(self.losses) - np.mean(self.bert_losses))


def gaps(
    branches: list[BranchUnit], variant: str, baseline: str, escaped_at: dict[int, int] | None = None
) -> list[Gap]:
    """Equal-token gaps (paired by seed, and unpaired) and equal-FLOPs gaps (paired) at each of
    ``variant``'s budgets; the equal-FLOPs loss of BERT is read between its endpoints past its escape only,
    with ``escaped_at`` (see ``_endpoints``)."""
    result = []
    for budget in sorted({b.budget_tokens for b in branches if b.variant == variant}):
        gap = Gap(variant=variant, budget_tokens=budget)
        mine = sorted(
            (b for b in branches if b.variant == variant and b.budget_tokens == budget), key=lambda b: b.seed
        )
        gap.losses = [b.val_loss for b in mine]
        gap.bert_losses = [
            b.val_loss
            for b in sorted(branches, key=lambda b: b.seed)
            if b.variant == baseline and b.budget_tokens == budget
        ]
        for branch in mine:
            same = [b for b in branches if b.variant == baseline and b.seed == branch.seed]
            at_tokens = next((b.val_loss for b in same if b.budget_tokens == budget), None)
            if at_tokens is not None:
                gap.equal_tokens.append(branch.val_loss - at_tokens)
            at_flops = loss_at(branch.train_flops, *_endpoints(branches, baseline, branch.seed, escaped_at))
            if at_flops is not None:
                gap.equal_flops.append(branch.val_loss - at_flops)
        gap.equal_tokens_interval = t_interval(gap.equal_tokens)
        gap.equal_flops_interval = t_interval(gap.equal_flops)
        gap.unpaired_interval = welch_interval(gap.losses, gap.bert_losses)
        result.append(gap)
    return result


__all__ = [
    "ESCAPE_MARGINS",
    "EscapeSummary",
    "Gap",
    "MultiplierPoint",
    "constant_multipliers",
    "cooldown_multipliers",
    "escape_summaries",
    "escape_tests",
    "escape_tokens",
    "flops_to_reach",
    "gaps",
    "km_median",
    "loss_at",
    "pooled_endpoints",
]
