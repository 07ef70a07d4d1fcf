"""The report's conclusions are worded no more strongly than its tests: a difference where an interval or
an exact p shows one, "equivalent" only from a TOST against the study's margin, "not shown to differ"
otherwise; censored seeds appear as bounds, never as a mean over the seeds that happened to be read."""

from __future__ import annotations

import math

from bert_ode.study.config import Equivalence
from bert_ode.study.cooldown_inference import (
    multiplier_value,
    p_cell,
    reading,
    summary_section,
    with_equivalence,
)
from bert_ode.study.escape import EscapeSummary, Gap, MultiplierPoint
from bert_ode.study.small_sample import ExactTest, log_t_interval, permutation_logrank, t_interval

MARGINS = Equivalence(multiplier=[0.9, 1.11], loss=0.1)


def _escape(name, times, bert_times=None):
    summary = EscapeSummary(
        variant=name,
        margin=1.0,
        tokens=times,
        run_tokens=[16_000_000] * len(times),
        seeds=list(range(len(times))),
        flops_per_token=1.0,
        escaped=len(times),
        median_tokens=sorted(times)[len(times) // 2],
    )
    if bert_times is not None:
        summary.logrank_tokens = permutation_logrank(
            (times, summary.run_tokens), (bert_times, [16_000_000] * len(bert_times))
        )
    return summary


def _point(values, name="heun"):
    point = MultiplierPoint(
        variant=name,
        where="cooldown",
        tokens=24_000_000,
        per_seed={str(i): v for i, v in enumerate(values)},
        reference="pooled",
        mean=math.exp(sum(math.log(v) for v in values) / len(values)),
        interval=log_t_interval(values),
    )
    return point


def _gap(values, name="heun"):
    return Gap(
        variant=name,
        budget_tokens=24_000_000,
        equal_tokens=values,
        equal_tokens_interval=t_interval(values),
    )


def test_each_reading_is_as_strong_as_its_test_and_no_stronger():
    bert = [8e6, 8.2e6, 8.4e6, 8.1e6, 8.3e6, 8.5e6]
    later = _escape("heun", [9e6, 9.2e6, 9.4e6, 9.1e6, 9.3e6, 9.5e6], bert)  # complete separation
    alike = _escape("strang", [8.05e6, 8.25e6, 8.45e6, 8.15e6, 8.35e6, 8.55e6], bert)
    behind, worth_less = _gap([0.3, 0.35, 0.4]), _point([0.5, 0.55, 0.6])
    wide_gap, wide = _gap([0.3, -0.4, 0.1]), _point([0.7, 1.3, 1.0])
    same_gap, same = _gap([0.01, -0.01, 0.0]), _point([0.99, 1.01, 1.0])
    with_equivalence({"a": [worth_less, wide, same]}, [behind, wide_gap, same_gap], MARGINS)
    assert reading(later, worth_less, behind, MARGINS) == (
        "escapes later (p = 0.0022); worth less than its compute; behind BERT at equal tokens"
    )
    assert reading(alike, wide, wide_gap, MARGINS) == (
        "escape not shown to differ; multiplier not shown to differ from 1; not shown to differ from BERT "
        "at equal tokens (3 seeds)"
    )
    assert reading(None, same, same_gap, MARGINS) == (
        "worth its compute within [0.90, 1.11]; equivalent to BERT at equal tokens (±0.1 nats)"
    )
    assert "tie" not in reading(alike, wide, wide_gap, MARGINS)
    # one of several arms: a p below 0.05 that Holm's correction lifts above it is said to be so
    assert reading(later, None, None, MARGINS, adjusted=0.015, family=7) == (
        "escapes later (p = 0.0022, Holm over 7 arms 0.015)"
    )
    assert reading(later, None, None, MARGINS, adjusted=0.2, family=7) == (
        "escapes later at p = 0.0022, not after correction, Holm over 7 arms 0.2"
    )


def test_a_censored_multiplier_is_a_bound_with_no_interval():
    point = MultiplierPoint(
        variant="ab2-learned",
        where="cooldown",
        tokens=24_000_000,
        per_seed={"0": 0.99, "1": 0.9, "2": None},
        upper_bounds={"2": 0.67},
        mean_range=(0.0, (0.99 * 0.9 * 0.67) ** (1 / 3)),
    )
    assert multiplier_value(point) == "<= 0.84 (2 read, 1 <= 0.67; no interval)"
    assert (
        reading(None, point, None, MARGINS) == "multiplier at most 0.84 with its censored seeds (no interval)"
    )
    point.mean_range = (0.0, 1.2)
    assert reading(None, point, None, MARGINS) == "multiplier not read: censored seeds"


def test_exact_and_asymptotic_p_values_say_which_they_are():
    assert p_cell(
        ExactTest(p=0.0043, min_p=0.0043, statistic=-3.2, method="exact permutation", relabellings=924)
    ) == ("0.0043 (min 0.0043)")
    assert p_cell(
        ExactTest(p=0.0012, min_p=None, statistic=-3.2, method="asymptotic", relabellings=10**6)
    ) == ("0.0012 (asymptotic)")


def test_the_summary_names_its_methods_and_margins():
    escapes = {"bert": _escape("bert", [8e6] * 3), "heun": _escape("heun", [9e6] * 3, [8e6] * 3)}
    multipliers = {"heun": [_point([0.5, 0.55, 0.6])]}
    gaps = [_gap([0.3, 0.35, 0.4])]
    lines = summary_section(escapes, multipliers, gaps, {}, "bert", Equivalence(post_hoc=True))
    text = "\n".join(lines)
    assert "exact log-rank p" in text and "95% t on logs" in text and "post hoc" in text
    row = next(line for line in lines if line.startswith("| `heun`"))
    assert "0.55 [" in row and "; p = 0.1, min 0.1)" in row and "+0.350 [" in row
    assert "Holm" in text


def test_the_delay_section_reads_the_fit_at_the_last_evaluation_beside_the_multiplier_read_there():
    from bert_ode.study.cooldown_inference import delay_section
    from bert_ode.study.delay import DelayFit, DelaySummary

    fits = [
        DelayFit(seed=s, delay=2e6, efficiency=0.9, points=20, first_tokens=1, last_tokens=2) for s in (0, 1)
    ]
    summary = DelaySummary(
        variant="heun", fits=fits, delay=2e6, efficiency=0.9, flops_ratio=2.0, time_ratio=1.6
    )
    summary.delay_interval, summary.efficiency_interval = (
        t_interval([1.9e6, 2.1e6]),
        log_t_interval([0.85, 0.95]),
    )
    read = _point([0.4, 0.42])
    read.where, read.tokens = "constant", 20_000_000
    row = next(
        line for line in delay_section({"heun": summary}, {"heun": [read]}) if line.startswith("| `heun`")
    )
    # 0.9 * (1 - 2 / 20) / 2 = 0.405 fitted; read 0.41; in wall-clock time 0.405 * 2 / 1.6 = 0.51
    assert row.endswith("| 2.00 / 1.60 | 0.41 / 0.41 / 0.51 at 20.0M |")
    assert "| +2.00M [" in row and "| 0.90 [" in row
