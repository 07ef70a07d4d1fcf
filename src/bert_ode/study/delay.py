"""Delay and efficiency: a compute multiplier read as the two things it mixes.

A multiplier at one budget mixes a one-time delay (an arm that leaves the plateau later) with how fast it
learns after it, so it moves with the budget. Past the escape, each seed's constant-rate curve is fitted as

    L_v(t) = L_B(a (t - delta))

with ``L_B`` BERT's constant-rate curve pooled over its seeds: ``delta`` is the delay in tokens and ``a`` the
efficiency after it (BERT tokens per token). Inverting ``L_B`` turns each of the arm's evaluations into the
tokens BERT needs for that loss, ``t_B = a t - a delta``, a straight line: ``a`` and ``delta`` come from its
least-squares fit. The token multiplier at a budget ``T`` is then ``a (1 - delta / T)``; times BERT's cost per
token over the arm's (counted FLOPs or measured seconds), the compute or wall-clock multiplier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..utils.records import Record
from .records import ConstantRun
from .small_sample import Interval, geometric_mean, log_t_interval, t_interval

# Fewest evaluations inside BERT's curve for a fit.
MIN_FIT_POINTS = 3


def pooled_curve(runs: Sequence[ConstantRun]) -> tuple[list[int], list[float]]:
    """The mean validation loss over ``runs`` at each evaluation they all have (their evaluations fall at the
    same tokens: one recipe, one evaluation interval)."""
    length = min(len(r.curve) for r in runs)
    tokens = [runs[0].curve[i].tokens for i in range(length)]
    losses = [float(np.mean([r.curve[i].val_loss for r in runs])) for i in range(length)]
    return tokens, losses


def tokens_to_reach(loss: float, tokens: Sequence[float], losses: Sequence[float]) -> float | None:
    """The tokens at which a curve's running minimum first reaches ``loss``, linear between evaluations;
    ``None`` outside the curve (above its first loss or below its lowest)."""
    best = np.minimum.accumulate(np.asarray(losses, dtype=float))
    if loss > best[0] or loss < best[-1]:
        return None
    i = int(np.argmax(best <= loss))
    if i == 0:
        return float(tokens[0])
    x0, x1, y0, y1 = tokens[i - 1], tokens[i], best[i - 1], best[i]
    return float(x0 + (x1 - x0) * (y0 - loss) / (y0 - y1))


@dataclass
class DelayFit(Record):
    """One seed's fit: ``delay`` tokens, ``efficiency`` BERT tokens per token after it."""

    seed: int
    delay: float
    efficiency: float
    points: int  # evaluations inside BERT's curve that the line is fitted to
    first_tokens: int  # the first and last of them
    last_tokens: int
    rms: float = 0.0  # root-mean-square residual of the line, in BERT tokens


def fit_delay(
    tokens: Sequence[int],
    losses: Sequence[float],
    reference: tuple[Sequence[int], Sequence[float]],
    seed: int,
) -> DelayFit | None:
    """The delay and efficiency of one curve against ``reference`` (BERT's curve past its escape); ``None``
    with fewer than ``MIN_FIT_POINTS`` evaluations inside it."""
    pairs = [(t, tokens_to_reach(loss, *reference)) for t, loss in zip(tokens, losses, strict=True)]
    pairs = [(t, b) for t, b in pairs if b is not None]
    if len(pairs) < MIN_FIT_POINTS:
        return None
    mine, bert = np.array(pairs, dtype=float).T
    slope, intercept = np.polyfit(mine, bert, 1)
    residual = bert - (slope * mine + intercept)
    if slope <= 0:
        return None  # no forward progress on BERT's curve: neither a delay nor an efficiency
    return DelayFit(
        seed=seed,
        delay=float(-intercept / slope),
        efficiency=float(slope),
        points=len(pairs),
        first_tokens=int(mine[0]),
        last_tokens=int(mine[-1]),
        rms=float(np.sqrt(np.mean(residual**2))),
    )


@dataclass
class DelaySummary(Record):
    """An arm's delay and efficiency over its seeds, with what they make of its multiplier."""

    variant: str
    fits: list[DelayFit] = field(default_factory=list)
    unfitted: list[int] = field(default_factory=list)  # seeds with too little curve inside BERT's
    delay: float | None = None  # mean over seeds, tokens
    delay_interval: Interval | None = None  # t
    efficiency: float | None = None  # geometric mean over seeds
    efficiency_interval: Interval | None = None  # t on logs
    flops_ratio: float | None = None  # the arm's counted FLOPs per token over BERT's
    time_ratio: float | None = (
        None  # its measured seconds per token over BERT's (same machine); None: unknown
    )

    def token_multiplier(self, budget: float) -> float | None:
        """``a (1 - delta / T)``: BERT tokens per token at a budget of ``T`` tokens."""
        if self.efficiency is None or self.delay is None:
            return None
        return self.efficiency * (1 - self.delay / budget)


def delay_summary(
    runs: list[ConstantRun], variant: str, baseline: str, unigram_margin: float = 1.0
) -> DelaySummary | None:
    """Every ``variant`` run (main and escape seeds) fitted against BERT's main seeds' pooled constant-rate
    curve from its escape (``unigram_margin`` nats below unigram) on; ``None`` without both."""
    bert = [r for r in runs if r.variant == baseline and not r.escape_only and r.unigram_entropy]
    mine = sorted((r for r in runs if r.variant == variant), key=lambda r: r.seed)
    if not bert or not mine:
        return None
    tokens, losses = pooled_curve(bert)
    bar = bert[0].unigram_entropy - unigram_margin
    start = next((i for i, loss in enumerate(losses) if loss <= bar), None)
    if start is None:
        return None  # BERT has not left the plateau: nothing to read against
    reference = (tokens[start:], losses[start:])
    summary = DelaySummary(variant=variant)
    for run in mine:
        fit = fit_delay([p.tokens for p in run.curve], [p.val_loss for p in run.curve], reference, run.seed)
        if fit is None:
            summary.unfitted.append(run.seed)
        else:
            summary.fits.append(fit)
    if summary.fits:
        delays, efficiencies = [f.delay for f in summary.fits], [f.efficiency for f in summary.fits]
        summary.delay, summary.delay_interval = float(np.mean(delays)), t_interval(delays)
        summary.efficiency, summary.efficiency_interval = (
            geometric_mean(efficiencies),
            log_t_interval(efficiencies),
        )
    summary.flops_ratio = mine[0].train_flops_per_token / bert[0].train_flops_per_token
    summary.time_ratio = time_ratio(mine, [r for r in runs if r.variant == baseline])
    return summary


def time_ratio(mine: Sequence[ConstantRun], bert: Sequence[ConstantRun]) -> float | None:
    """Mean measured seconds per token of ``mine`` over BERT's, where every run computed on one kind of
    machine (the same precision, device and processor); ``None`` otherwise."""
    machines = {(r.compute.describe(), r.compute.cpu) if r.compute else None for r in [*mine, *bert]}
    if len(machines) != 1 or None in machines:
        return None
    seconds = [float(np.mean([1 / r.tokens_per_second for r in group])) for group in (mine, bert)]
    return seconds[0] / seconds[1]


__all__ = [
    "DelayFit",
    "DelaySummary",
    "delay_summary",
    "fit_delay",
    "pooled_curve",
    "time_ratio",
    "tokens_to_reach",
]
