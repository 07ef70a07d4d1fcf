"""The small-sample statistics against hand counts and scipy: the exact log-rank test by enumeration, t and
Welch intervals on known values, TOST on toys with a known answer, censored geometric means, and the rule
that keeps the percentile bootstrap away from a handful of seeds."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from bert_ode.study.small_sample import (
    BOOTSTRAP_MIN_SEEDS,
    censored_geometric_range,
    holm,
    log_t_interval,
    paired_bootstrap,
    permutation_logrank,
    t_interval,
    tost,
    unpaired_bootstrap,
    welch_interval,
)


def _censored(times, limits):
    return stats.CensoredData(
        uncensored=[t for t in times if t is not None],
        right=[m for t, m in zip(times, limits, strict=True) if t is None],
    )


def test_the_exact_log_rank_p_of_a_3_against_3_toy_is_its_enumeration():
    a = ([1.0, 3.0, None], [9.0, 9.0, 6.0])  # the third run censored at 6
    b = ([2.0, 4.0, 5.0], [9.0, 9.0, 9.0])
    pooled = list(zip(*a, strict=True)) + list(zip(*b, strict=True))
    observed = stats.logrank(_censored(*a), _censored(*b)).statistic
    # every split of the 6 runs into 3 and 3, its statistic by scipy: the share at least as extreme
    null = []
    for chosen in itertools.combinations(range(6), 3):
        first = [pooled[i] for i in chosen]
        second = [pooled[i] for i in range(6) if i not in chosen]
        sample = [_censored([t for t, _ in s], [m for _, m in s]) for s in (first, second)]
        null.append(abs(stats.logrank(*sample).statistic))
    expected = sum(z >= abs(observed) - 1e-9 for z in null) / 20
    test = permutation_logrank(a, b)
    assert test.relabellings == 20 and test.method == "exact permutation"
    assert test.statistic == pytest.approx(observed)
    assert test.p == pytest.approx(expected)
    assert test.min_p == pytest.approx(sum(z >= max(null) - 1e-9 for z in null) / 20)


def test_complete_separation_gives_the_smallest_p_the_sample_allows_not_less():
    early, late = ([1, 2, 3, 4, 5, 6], [20] * 6), ([7, 8, 9, 10, 11, 12], [20] * 6)
    test = permutation_logrank(early, late)
    assert test.p == pytest.approx(2 / 924) and test.min_p == pytest.approx(2 / 924)
    asymptotic = stats.logrank(_censored(*early), _censored(*late)).pvalue
    assert asymptotic < test.min_p  # what the chi-square approximation would have claimed
    same = permutation_logrank(early, early)
    assert same.p == pytest.approx(1.0)
    assert permutation_logrank(([None], [5]), ([None], [5])) is None  # no escape at all: no test


def test_beyond_the_enumeration_limit_the_asymptotic_p_says_so():
    a, b = ([1, 3, 5, 7], [9] * 4), ([2, 4, None, None], [9] * 4)
    test = permutation_logrank(a, b, limit=10)
    assert test.method == "asymptotic" and test.min_p is None and test.relabellings == 70
    assert test.p == pytest.approx(stats.logrank(_censored(*a), _censored(*b)).pvalue)


def test_t_intervals_on_known_values():
    interval = t_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, t(0.975, 2) = 4.302653
    half = 4.302653 / math.sqrt(3)
    assert (interval.low, interval.high) == (
        pytest.approx(2 - half, abs=1e-6),
        pytest.approx(2 + half, abs=1e-6),
    )
    assert interval.method == "t" and interval.level == 0.95 and interval.n == 3
    assert t_interval([1.0]) is None
    ratios = log_t_interval([1.0, math.e, math.e**2])  # logs 0, 1, 2
    assert ratios.low == pytest.approx(math.exp(1 - half), rel=1e-6) and ratios.method == "t on logs"
    assert ratios.high == pytest.approx(math.exp(1 + half), rel=1e-6)


def test_the_welch_interval_is_scipys():
    a, b = [3.1, 3.4, 3.0, 3.6], [3.9, 3.5, 4.4]
    expected = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    interval = welch_interval(a, b)
    assert (interval.low, interval.high) == (pytest.approx(expected.low), pytest.approx(expected.high))
    assert welch_interval([1.0], b) is None


def test_tost_on_toys_with_a_known_answer():
    close = [-0.1, 0.0, 0.1]  # mean 0, se 0.1 / sqrt(3), margin +-1: equivalent
    result = tost(close, -1.0, 1.0)
    expected = stats.ttest_1samp(close, -1.0, alternative="greater").pvalue  # both sides alike
    assert result.equivalent and result.p == pytest.approx(expected)
    assert result.interval.level == pytest.approx(0.90)
    wide = [-0.9, 0.0, 0.9]  # the 90% interval reaches past +-1: not shown equivalent, not a difference
    result = tost(wide, -1.0, 1.0)
    assert not result.equivalent and result.interval.low < -1.0 < 1.0 < result.interval.high
    assert not tost([0.5, 0.6, 0.55], -0.1, 0.1).equivalent  # clearly outside the margin
    assert tost([0.2], -1.0, 1.0) is None


def test_holms_adjustment_by_hand():
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1: 0.03, 0.06, 0.04 -> running maximum 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0]) and holm([]) == []


def test_a_censored_seed_makes_a_range_of_geometric_means():
    # two seeds read (0.9, 0.8), one only known to be <= 0.67: the mean is at most (0.9 * 0.8 * 0.67)^(1/3)
    low, high = censored_geometric_range([0.9, 0.8], below=[0.67])
    assert low == 0.0 and high == pytest.approx(0.4824 ** (1 / 3))
    low, high = censored_geometric_range([2.0], above=[0.5])  # one >= 0.5: at least 1, no upper limit
    assert low == pytest.approx(1.0) and high == math.inf
    assert censored_geometric_range([2.0, 0.5]) == (pytest.approx(1.0), pytest.approx(1.0))


def test_the_bootstrap_is_kept_away_from_a_handful_of_seeds():
    three = [0.5, 0.6, 0.7]
    assert paired_bootstrap(three) is None  # with 3 seeds it would return their range
    many = list(np.random.default_rng(0).lognormal(0.0, 0.2, size=BOOTSTRAP_MIN_SEEDS + 2))
    interval = paired_bootstrap(many)
    assert min(many) < interval.low < interval.high < max(many)
    assert interval.method == "percentile bootstrap (paired)"

    def mean_difference(a, b):
        return float(np.mean(a) - np.mean(b))

    assert unpaired_bootstrap(mean_difference, three, many) is None
    both = unpaired_bootstrap(mean_difference, many, [m + 1 for m in many])
    assert both.low < -1 < both.high and both.method == "percentile bootstrap (unpaired)"
