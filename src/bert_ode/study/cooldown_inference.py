"""The sections of a ``cooldowns`` study's report that draw conclusions: the escape tests, delay and
efficiency, the compute multiplier, the gaps to BERT and the summary. Each names its interval's method and
coverage, gives an exact p with the smallest p its sample allows, keeps censored seeds as bounds, and words
its reading no more strongly than that: "equivalent" only from a TOST against the study's margins, "not
shown to differ" otherwise. Each function returns markdown lines; an empty list where there is nothing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from ..utils import markdown
from .config import Equivalence
from .delay import DelaySummary
from .escape import EscapeSummary, Gap, MultiplierPoint, escape_tests
from .small_sample import BOOTSTRAP_MIN_SEEDS, ExactTest, Interval, Tost, holm, tost

# The level at which a p-value or an interval is read as showing a difference.
ALPHA = 0.05


def seeds(count: int) -> str:
    """'1 seed', '3 seeds'."""
    return f"{count} seed" if count == 1 else f"{count} seeds"


def millions(tokens: float | None) -> str:
    return "-" if tokens is None else f"{tokens / 1e6:.2f}M"


def p_cell(test: ExactTest | None) -> str:
    """``0.0043 (min 0.0043)`` for an exact test, ``0.0012 (asymptotic)`` otherwise."""
    if test is None:
        return "-"
    if test.min_p is None:
        return f"{test.p:.2g} (asymptotic)"
    return f"{test.p:.2g} (min {test.min_p:.2g})"


def interval_cell(interval: Interval | None, digits: int = 2, signed: bool = False) -> str:
    if interval is None:
        return ""
    form = f"{{:{'+' if signed else ''}.{digits}f}}"
    return f" [{form.format(interval.low)}, {form.format(interval.high)}]"


# ------------------------------------------------------------------------------------------------------------
# Equivalence
# ------------------------------------------------------------------------------------------------------------


def with_equivalence(
    multipliers: dict[str, list[MultiplierPoint]], gaps: list[Gap], margins: Equivalence
) -> None:
    """Sets the TOST of every uncensored multiplier (on logs, against ``margins.multiplier``) and of every
    paired equal-token gap (against ``+- margins.loss``)."""
    low, high = (math.log(m) for m in margins.multiplier)
    for point in (p for series in multipliers.values() for p in series):
        if point.mean is not None:
            point.tost = tost([math.log(v) for v in point.read], low, high)
    for gap in gaps:
        gap.tost = tost(gap.equal_tokens, -margins.loss, margins.loss)


def margins_line(margins: Equivalence) -> str:
    low, high = margins.multiplier
    when = (
        "set after this study's data were read, so its equivalence tests are post hoc"
        if margins.post_hoc
        else "fixed in the study's config before its data were read"
    )
    return (
        f"Equivalence (TOST at {ALPHA:g}: the 90% t interval inside the margin) is tested against a compute "
        f"multiplier in [{low:.2f}, {high:.2f}] and an equal-token loss difference within ±{margins.loss:g} "
        f'nats, {when}. Where no test shows a difference or an equivalence, the words are "not shown to '
        'differ".'
    )


# ------------------------------------------------------------------------------------------------------------
# Escape
# ------------------------------------------------------------------------------------------------------------


def escape_table(summaries: dict[str, EscapeSummary]) -> list[str]:
    rows = []
    for name, s in summaries.items():
        per_seed = ", ".join(
            f"{seed}: {millions(t) if t is not None else f'> {limit / 1e6:.1f}M'}"
            for seed, t, limit in zip(s.seeds, s.tokens, s.run_tokens, strict=True)
        )
        median = millions(s.median_tokens) if s.median_tokens is not None else "not reached"
        median_flops = f"{s.median_tokens * s.flops_per_token:.3g}" if s.median_tokens is not None else "-"
        row = [f"`{name}`", f"{s.escaped}/{len(s.tokens)}", median, median_flops]
        rows.append([*row, p_cell(s.logrank_tokens), p_cell(s.logrank_flops), per_seed])
    header = ["variant", "escaped", "median tokens (KM)", "median FLOPs", "log-rank p, tokens", "FLOPs"]
    return markdown.table([*header, "per seed"], rows)


def escape_note(baseline: str) -> str:
    return (
        "Tokens until the validation loss is first 1 (then 2) nats below unigram; `> x` is a run that had "
        "not got there when it stopped (censored). Medians are Kaplan-Meier estimates. The log-rank test "
        f"against `{baseline}` is exact: its p is the share of all relabellings of the pooled runs "
        "(C(n + m, n) of them) whose statistic is at least as far from 0, so it cannot go below the "
        "smallest p such a sample allows (`min`, shown beside it: 2/924 = 0.0022 for 6 against 6 seeds); "
        "the asymptotic p is used only where the relabellings are too many to enumerate, and says so."
    )


def matched_section(
    escapes: dict[float, dict[str, EscapeSummary]], pairs: Sequence[tuple[str, str]]
) -> list[str]:
    """The escape of each arm against the arm matched to it in cost (``compute_match``), at every margin:
    whether a later escape is the scheme's or any spending of compute per token."""
    rows = []
    for a, b in pairs:
        for margin, summaries in escapes.items():
            if a in summaries and b in summaries:
                tokens, flops = escape_tests(summaries[a], summaries[b])
                medians = f"{_median(summaries[a])} vs {_median(summaries[b])}"
                counts = f"{len(summaries[a].tokens)} vs {len(summaries[b].tokens)}"
                rows.append(
                    [f"`{a}` vs `{b}`", f"{margin:g}", medians, counts, p_cell(tokens), p_cell(flops)]
                )
    if not rows:
        return []
    header = ["arms", "nats below unigram", "median tokens (KM)", "seeds", "log-rank p, tokens", "FLOPs"]
    return [
        "### Arms of equal cost per token, against each other",
        "",
        "The exact log-rank test between each arm and the one matched to it in compute (`compute_match`).",
        "",
        *markdown.table(header, rows),
        "",
    ]


def _median(summary: EscapeSummary) -> str:
    return millions(summary.median_tokens) if summary.median_tokens is not None else "not reached"


# ------------------------------------------------------------------------------------------------------------
# Delay and efficiency
# ------------------------------------------------------------------------------------------------------------


DELAY_NOTE = (
    "Each seed's constant-rate curve past the escape fitted as `L(t) = L_BERT(a (t - δ))`, with `L_BERT` ",
    "BERT's constant-rate curve averaged over its seeds from its escape on: `δ` is a one-time delay in ",
    "tokens (negative: ahead), `a` the efficiency after it (BERT tokens per token; 1: as BERT). Each ",
    "evaluation inside BERT's curve becomes the tokens BERT needs for its loss, and a line through them ",
    "gives `a` (slope) and `δ`; fit RMS is its residual in BERT tokens, mean over seeds. Intervals: 95% t ",
    "over seeds (on logs for `a`). The escape seeds' curves end earlier than the main seeds', so their ",
    "lines cover less of the curve. At `T` tokens the fit makes an arm worth `a (1 - δ / T)` BERT tokens ",
    "per token, and its compute multiplier that over its cost per token against BERT's: counted FLOPs ",
    "(matrix products only) or measured seconds (tokens per second of the constant-rate runs, one ",
    "machine). The last column reads it at the last constant-rate evaluation of the main seeds (no ",
    "further: nothing is extrapolated): the FLOP multiplier the fit makes there (mean over those seeds), ",
    "the one read there against BERT's pooled curve, and the fitted one in wall-clock time. Where the ",
    "first two part, the line summarises a curve that is not a delayed, rescaled BERT curve.",
)


def delay_section(
    delays: dict[str, DelaySummary], multipliers: dict[str, list[MultiplierPoint]]
) -> list[str]:
    """Per arm: its delay and efficiency against BERT's pooled constant-rate curve, how well the line fits,
    its cost per token (counted and measured), and the FLOP multiplier the fit makes at the last
    constant-rate evaluation beside the one read there (no budget beyond the curves: nothing extrapolated)."""
    rows = []
    for name, d in delays.items():
        if d.efficiency is None:
            continue
        rows.append(
            [
                f"`{name}`",
                f"{len(d.fits)}" + (f" ({len(d.unfitted)} unfitted)" if d.unfitted else ""),
                f"{d.delay / 1e6:+.2f}M" + _millions_interval(d.delay_interval),
                f"{d.efficiency:.2f}" + interval_cell(d.efficiency_interval),
                f"{statistics.mean(f.rms for f in d.fits) / 1e6:.2f}M",
                f"{d.flops_ratio:.2f} / " + (f"{d.time_ratio:.2f}" if d.time_ratio else "-"),
                _check(d, multipliers.get(name, [])),
            ]
        )
    if not rows:
        return []
    header = ["variant", "seeds", "delay δ [95% t]", "efficiency a [95% t on logs]", "fit RMS"]
    header += [
        "cost per token: FLOPs / time",
        "multiplier, last constant-rate evaluation: fitted / read / wall",
    ]
    return [
        "## Delay and efficiency: the multiplier taken apart",
        "",
        "".join(DELAY_NOTE),
        "",
        *markdown.table(header, rows),
        "",
    ]


def _check(delay: DelaySummary, series: list[MultiplierPoint]) -> str:
    """At the last constant-rate evaluation with a pooled reading: the FLOP multiplier ``a (1 - δ / T)`` over
    the cost ratio, mean over the seeds read there, beside the one read, and the fitted one in wall-clock."""
    read = [p for p in series if p.where == "constant" and p.reference == "pooled" and p.mean is not None]
    fitted = [f for f in delay.fits if read and str(f.seed) in read[-1].per_seed]
    if not fitted:
        return "-"
    last = read[-1]
    implied = statistics.mean(f.efficiency * (1 - f.delay / last.tokens) for f in fitted) / delay.flops_ratio
    wall = f"{implied * delay.flops_ratio / delay.time_ratio:.2f}" if delay.time_ratio else "-"
    return f"{implied:.2f} / {last.mean:.2f} / {wall} at {last.tokens / 1e6:.1f}M"


def _millions_interval(interval: Interval | None) -> str:
    return "" if interval is None else f" [{interval.low / 1e6:+.2f}, {interval.high / 1e6:+.2f}]"


# ------------------------------------------------------------------------------------------------------------
# Compute multiplier
# ------------------------------------------------------------------------------------------------------------


def multiplier_value(point: MultiplierPoint | None, per_seed: bool = False) -> str:
    """``0.56 [0.40, 0.79]``; with censored seeds the range of means they allow, ``<= 0.84 (2 read, 1
    <= 0.67)``; a bootstrap interval only where it has the seeds for one; with ``per_seed`` each seed's value
    (or bound) after it."""
    if point is None:
        return "-"
    if per_seed:
        values = [
            f"{seed}: {value:.2f}"
            if value is not None
            else f"{seed}: {'<=' if seed in point.upper_bounds else '>='} "
            f"{point.upper_bounds.get(seed, point.lower_bounds.get(seed)):.2f}"
            for seed, value in point.per_seed.items()
        ]
        return f"{multiplier_value(point)}; {', '.join(values)}"
    if point.mean is None:
        low, high = point.mean_range
        bound = f"<= {high:.2f}" if high < math.inf else (f">= {low:.2f}" if low > 0 else "unbounded")
        notes = [f"{len(point.read)} read"] if point.read else []
        if point.upper_bounds:
            notes.append(f"{len(point.upper_bounds)} <= {_bounds(point.upper_bounds)}")
        if point.lower_bounds:
            notes.append(f"{len(point.lower_bounds)} >= {_bounds(point.lower_bounds)}")
        return f"{bound} ({', '.join(notes)}; no interval)"
    boot = f", bootstrap{interval_cell(point.bootstrap)}" if point.bootstrap else ""
    return f"{point.mean:.2f}{interval_cell(point.interval)}{boot}"


def _bounds(bounds: dict[str, float]) -> str:
    values = sorted({f"{b:.2f}" for b in bounds.values()})
    return values[0] if len(values) == 1 else "/".join(values)


def _wall(point: MultiplierPoint | None, delay: DelaySummary | None) -> str:
    if point is None or delay is None or not delay.time_ratio:
        return "-"
    scale = delay.flops_ratio / delay.time_ratio
    if point.mean is not None:
        return f"{point.mean * scale:.2f}" + interval_cell(
            None if point.interval is None else _scaled(point.interval, scale)
        )
    low, high = point.mean_range
    return f"<= {high * scale:.2f}" if high < math.inf else "-"


def _scaled(interval: Interval, scale: float) -> Interval:
    return Interval(interval.low * scale, interval.high * scale, interval.method, interval.level, interval.n)


def _tost_cell(result: Tost | None, exp: bool = False) -> str:
    if result is None:
        return "-"
    low, high = (
        (math.exp(v) for v in (result.interval.low, result.interval.high))
        if exp
        else (
            result.interval.low,
            result.interval.high,
        )
    )
    verdict = "equivalent" if result.equivalent else "not shown"
    return f"{verdict} (p = {result.p:.2g}; 90% [{low:.2f}, {high:.2f}])"


def _points(series: list[MultiplierPoint], where: str, reference: str) -> dict[int, MultiplierPoint]:
    return {p.tokens: p for p in series if p.where == where and p.reference == reference}


def multiplier_table(
    multipliers: dict[str, list[MultiplierPoint]], delays: dict[str, DelaySummary]
) -> list[str]:
    """Per arm and cooldown budget (and the last constant-rate evaluation), the multiplier against BERT's
    pooled curve (primary) and the same seed's, the wall-clock multiplier and the equivalence test."""
    rows = []
    for name, series in multipliers.items():
        for where in ("cooldown", "constant"):
            pooled, same = _points(series, where, "pooled"), _points(series, where, "same seed")
            budgets = sorted(set(pooled) | set(same))
            if where == "constant":  # the last constant-rate evaluation with a reading
                budgets = [t for t in budgets if (pooled.get(t) or same.get(t))][-1:]
            for tokens in budgets:
                p, s = pooled.get(tokens), same.get(tokens)
                label = (
                    f"{tokens / 1e6:g}M (cooldown)"
                    if where == "cooldown"
                    else (f"{tokens / 1e6:.1f}M (last constant-rate evaluation)")
                )
                tost_cell = _tost_cell(p.tost if p else None, exp=True)
                wall = _wall(p, delays.get(name))
                rows.append(
                    [
                        f"`{name}`",
                        label,
                        multiplier_value(p, True),
                        multiplier_value(s, True),
                        wall,
                        tost_cell,
                    ]
                )
    header = [
        "variant",
        "where",
        "pooled BERT [95% t on logs]; per seed",
        "same-seed BERT [95% t on logs]; per seed",
    ]
    return markdown.table([*header, "wall-clock (pooled)", "TOST (pooled)"], rows)


def multiplier_note() -> str:
    return (
        "The BERT FLOPs that reach a variant's loss on BERT's curve, divided by the variant's FLOPs: above "
        "1, the variant is worth more than its compute. Read inside BERT's measured curve only, and at the "
        "cooldown endpoints between BERT's endpoints past its escape: nothing is read across the drop. "
        "**Primary: against BERT's curve averaged over its seeds** (pooled). Against the same seed's BERT, "
        "the ratio shares data order and masks, but it also carries that one BERT seed's noise, and BERT's "
        "seeds differ most in when they leave the plateau, which no other arm's same seed shares. A seed "
        "whose loss lies outside BERT's curve is censored, and kept as a bound (`<=`: BERT's first point "
        "already beats it; `>=`: BERT never reaches it): the row shows the largest (or smallest) geometric "
        "mean over all seeds that the bounds allow, and no interval. Otherwise: the geometric mean over "
        "seeds with a 95% t interval on the logs (coverage 95% for log-normal ratios; with 2 seeds its "
        "half-width is 12.7 standard errors). The percentile bootstrap (paired for the same seed, unpaired "
        f"for the pooled curve: both arms' seeds resampled) is shown only with >= {BOOTSTRAP_MIN_SEEDS} "
        "seeds per arm: below that it undercovers (measured on normal samples: 48% at 2 seeds, 75% at 3, "
        "91% at 10), and at 3 seeds or fewer it returns the seed range. Wall-clock: the FLOP multiplier "
        "times the counted FLOPs per token over the measured seconds per token, both against BERT's."
    )


# ------------------------------------------------------------------------------------------------------------
# Gaps
# ------------------------------------------------------------------------------------------------------------


def gap_table(gaps: list[Gap]) -> list[str]:
    rows = []
    for gap in gaps:
        paired = _mean_cell(gap.equal_tokens, gap.equal_tokens_interval)
        unpaired = "-"
        if gap.unpaired is not None:
            unpaired = f"{gap.unpaired:+.3f}{interval_cell(gap.unpaired_interval, 3, signed=True)}"
        flops = _mean_cell(gap.equal_flops, gap.equal_flops_interval)
        tost_cell = "-"
        if gap.tost is not None:
            verdict = "equivalent" if gap.tost.equivalent else "not shown"
            tost_cell = f"{verdict} (p = {gap.tost.p:.2g})"
        budget = f"{gap.budget_tokens / 1e6:g}M"
        counts = f"{len(gap.losses)} vs {len(gap.bert_losses)}"
        rows.append([f"`{gap.variant}`", budget, paired, unpaired, tost_cell, flops, counts])
    header = [
        "variant",
        "budget",
        "Δ equal tokens, paired [95% t]",
        "unpaired [95% Welch t]",
        "TOST (paired)",
    ]
    return markdown.table([*header, "Δ equal FLOPs, paired [95% t]", "seeds"], rows)


def _mean_cell(values: list[float], interval: Interval | None) -> str:
    if not values:
        return "-"
    return f"{statistics.mean(values):+.3f}{interval_cell(interval, 3, signed=True)}"


# ------------------------------------------------------------------------------------------------------------
# Summary
# ------------------------------------------------------------------------------------------------------------


def summary_section(
    escapes: dict[str, EscapeSummary],
    multipliers: dict[str, list[MultiplierPoint]],
    gaps: list[Gap],
    delays: dict[str, DelaySummary],
    baseline: str,
    margins: Equivalence,
) -> list[str]:
    """One row per primary variant: its escape against BERT's, delay and efficiency, the pooled multiplier
    at its largest cooldown (and wall-clock), its equal-token gap there, and a reading worded as strongly as
    the tests allow."""
    rows = []
    tested = [n for n in multipliers if escapes.get(n) and escapes[n].logrank_tokens]
    adjusted = dict(zip(tested, holm([escapes[n].logrank_tokens.p for n in tested]), strict=True))
    for name, series in multipliers.items():
        pooled = [p for p in series if p.where == "cooldown" and p.reference == "pooled"]
        point = pooled[-1] if pooled else None
        gap = next((g for g in reversed(gaps) if g.variant == name and g.equal_tokens), None)
        escape, delay = escapes.get(name), delays.get(name)
        multiplier = f"{multiplier_value(point)} at {point.tokens / 1e6:g}M" if point else "-"
        rows.append(
            [
                f"`{name}`",
                _escape_cell(escape, escapes.get(baseline)),
                _delay_cell(delay),
                multiplier,
                _wall(point, delay),
                _gap_cell(gap),
                reading(escape, point, gap, margins, adjusted.get(name), len(tested)),
            ]
        )
    if not rows:
        return []
    header = ["variant", "escape (1 nat), median vs BERT", "delay, efficiency", "compute multiplier"]
    header += ["wall-clock", "Δ loss at equal tokens", "reading"]
    return [
        "## Summary",
        "",
        "Each variant against BERT: the Kaplan-Meier median of the tokens to 1 nat below unigram (exact "
        "log-rank p, with the smallest p the sample allows), the delay `δ` and efficiency `a` past the "
        "escape (95% t), the compute multiplier at its largest cooldown against BERT's pooled curve (95% t "
        "on logs; above 1: worth more than its compute) and wall-clock, and the paired equal-token gap there "
        "(95% t; positive: behind BERT). An escape p is per comparison; the reading also gives it after "
        "Holm's correction over the arms in this table (one family), and calls an escape later or earlier "
        "only where both are below 0.05. " + margins_line(margins),
        "",
        *markdown.table(header, rows),
        "",
    ]


def _escape_cell(escape: EscapeSummary | None, bert: EscapeSummary | None) -> str:
    if escape is None or bert is None:
        return "-"
    test = escape.logrank_tokens
    p = ""
    if test is not None:
        p = f"; p = {test.p:.2g}" + (f", min {test.min_p:.2g}" if test.min_p is not None else " (asymptotic)")
    return f"{_median(escape)} vs {_median(bert)} ({len(escape.tokens)} vs {len(bert.tokens)} seeds{p})"


def _delay_cell(delay: DelaySummary | None) -> str:
    if delay is None or delay.efficiency is None:
        return "-"
    return (
        f"δ {delay.delay / 1e6:+.2f}M{_millions_interval(delay.delay_interval)}, "
        f"a {delay.efficiency:.2f}{interval_cell(delay.efficiency_interval)}"
    )


def _gap_cell(gap: Gap | None) -> str:
    if gap is None:
        return "-"
    mean = statistics.mean(gap.equal_tokens)
    interval = interval_cell(gap.equal_tokens_interval, 3, signed=True)
    return f"{mean:+.3f}{interval} at {gap.budget_tokens / 1e6:g}M ({seeds(len(gap.equal_tokens))})"


def reading(
    escape: EscapeSummary | None,
    point: MultiplierPoint | None,
    gap: Gap | None,
    margins: Equivalence,
    adjusted: float | None = None,
    family: int = 1,
) -> str:
    """The words each test allows: a difference where its interval (or exact p, also after Holm's correction
    to ``adjusted`` over a ``family`` of arms) shows one, "equivalent" where its TOST does, "not shown to
    differ" otherwise."""
    parts = []
    test = escape.logrank_tokens if escape else None
    if test is not None:
        adjusted = test.p if adjusted is None else adjusted
        holm_note = f", Holm over {family} arms {adjusted:.2g}" if family > 1 else ""
        direction = "later" if test.statistic < 0 else "earlier"  # fewer escapes than expected early: later
        if test.p < ALPHA and adjusted < ALPHA:
            parts.append(f"escapes {direction} (p = {test.p:.2g}{holm_note})")
        elif test.p < ALPHA:
            parts.append(f"escapes {direction} at p = {test.p:.2g}, not after correction{holm_note}")
        else:
            parts.append("escape not shown to differ")
    if point is not None:
        parts.append(_multiplier_reading(point, margins))
    if gap is not None and gap.equal_tokens_interval is not None:
        interval = gap.equal_tokens_interval
        if interval.low > 0:
            parts.append("behind BERT at equal tokens")
        elif interval.high < 0:
            parts.append("ahead of BERT at equal tokens")
        elif gap.tost is not None and gap.tost.equivalent:
            parts.append(f"equivalent to BERT at equal tokens (±{margins.loss:g} nats)")
        else:
            parts.append(f"not shown to differ from BERT at equal tokens ({seeds(len(gap.equal_tokens))})")
    return "; ".join(parts) or "too few seeds to read"


def _multiplier_reading(point: MultiplierPoint, margins: Equivalence) -> str:
    if point.mean is None:
        low, high = point.mean_range
        if high < 1:
            return f"multiplier at most {high:.2f} with its censored seeds (no interval)"
        return "multiplier not read: censored seeds"
    if point.interval is None:
        return "multiplier from one seed: no interval"
    if point.interval.high < 1:
        return "worth less than its compute"
    if point.interval.low > 1:
        return "worth more than its compute"
    if point.tost is not None and point.tost.equivalent:
        low, high = margins.multiplier
        return f"worth its compute within [{low:.2f}, {high:.2f}]"
    return "multiplier not shown to differ from 1"


__all__ = [
    "ALPHA",
    "delay_section",
    "escape_note",
    "escape_table",
    "gap_table",
    "margins_line",
    "matched_section",
    "multiplier_note",
    "multiplier_table",
    "multiplier_value",
    "reading",
    "seeds",
    "summary_section",
    "with_equivalence",
]
