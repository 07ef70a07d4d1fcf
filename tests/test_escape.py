"""The statistics of a cooldowns study against hand counts: escape times as censored data (Kaplan-Meier
median, log-rank), the compute multiplier read off BERT's curve without extrapolation, and the paired gaps."""

from __future__ import annotations

import math

import pytest

from bert_ode.study.escape import (
    constant_multipliers,
    cooldown_multipliers,
    escape_summaries,
    escape_tokens,
    flops_to_reach,
    gaps,
    km_median,
    loss_at,
    pooled_endpoints,
)
from bert_ode.study.records import BranchUnit, ConstantRun, CurvePoint


def _curve(losses, step_tokens=100):
    return [
        CurvePoint(step=i + 1, tokens=(i + 1) * step_tokens, elapsed_s=float(i), val_loss=loss)
        for i, loss in enumerate(losses)
    ]


def _run(variant, seed, losses, flops_per_token=1.0, escape_only=False):
    curve = _curve(losses)
    return ConstantRun(
        variant=variant,
        seed=seed,
        model_overrides={},
        escape_only=escape_only,
        tokens=curve[-1].tokens,
        train_flops_per_token=flops_per_token,
        train_seconds=1.0,
        tokens_per_second=1.0,
        unigram_entropy=6.0,
        curve=curve,
        probes=[],
        parameters=1,
    )


def test_escape_is_the_first_evaluation_a_margin_below_unigram():
    curve = _curve([6.2, 5.5, 4.9, 5.1, 3.9])
    assert escape_tokens(curve, 6.0, 1.0) == 300  # 4.9 <= 5.0
    assert escape_tokens(curve, 6.0, 2.0) == 500
    assert escape_tokens(curve, 6.0, 3.0) is None


def test_kaplan_meier_median_by_hand():
    # 3, 5, 7 escape; one run stops at 10 without: survival 3/4, 1/2, 1/4 -> the median is 5
    assert km_median([3, 5, 7, None], [10, 10, 10, 10]) == 5
    assert km_median([3, None, None, None], [10, 10, 10, 10]) is None  # fewer than half escaped
    assert km_median([None, None], [10, 10]) is None


def test_escape_summaries_compare_in_tokens_and_in_flops():
    drop = [6.0, 5.6, 4.8, 4.0]
    runs = [_run("bert", s, drop) for s in range(3)]
    runs += [_run("heun", s, [6.0, 5.6, 5.4, 4.9], flops_per_token=2.0) for s in range(3)]
    summaries = escape_summaries(runs, "bert", margin=1.0)
    assert summaries["bert"].tokens == [300, 300, 300] and summaries["bert"].median_tokens == 300
    heun = summaries["heun"]
    assert heun.tokens == [400, 400, 400] and heun.escaped == 3
    # complete separation of 3 against 3: the exact p is the smallest the sample allows, 2 of C(6, 3) = 20
    assert heun.logrank_tokens.p == pytest.approx(2 / 20) and heun.logrank_tokens.min_p == pytest.approx(0.1)
    assert heun.logrank_tokens.method == "exact permutation" and heun.logrank_flops.p == pytest.approx(0.1)
    assert heun.logrank_tokens.statistic < 0  # fewer escapes than expected early: later


def test_flops_to_reach_interpolates_log_linearly_and_never_extrapolates():
    flops, losses = [100.0, 400.0], [6.0, 4.0]
    assert flops_to_reach(5.0, flops, losses) == pytest.approx(200.0)  # halfway in log FLOPs
    assert flops_to_reach(3.9, flops, losses) is None  # below the curve's lowest point
    assert flops_to_reach(6.0, flops, losses) == pytest.approx(100.0)
    assert loss_at(200.0, flops, losses) == pytest.approx(5.0)
    assert loss_at(50.0, flops, losses) is None and loss_at(800.0, flops, losses) is None


def test_a_variant_that_is_bert_at_twice_the_cost_is_worth_half_its_compute():
    losses = [6.0, 5.5, 4.5, 4.0, 3.8, 3.6]
    runs = [_run("bert", s, losses) for s in range(3)] + [_run("twice", s, losses, 2.0) for s in range(3)]
    points = constant_multipliers(runs, "twice", "bert", after_tokens=200)
    assert [p.tokens for p in points] == [300, 400, 500, 600]
    assert all(p.mean == pytest.approx(0.5) and not p.lower_bounds for p in points)
    pooled = constant_multipliers(runs, "twice", "bert", after_tokens=200, pooled=True)
    assert [p.mean for p in pooled] == pytest.approx([0.5] * 4) and pooled[0].reference == "pooled"
    # A variant better than anything BERT reaches gets no multiplier there, but a lower bound: BERT needs
    # more than its last point's FLOPs (600) for a loss it never reaches, over the variant's 600.
    runs += [_run("better", s, [6.0, 5.5, 4.5, 4.0, 3.8, 3.0]) for s in range(3)]
    last = constant_multipliers(runs, "better", "bert", after_tokens=500)[-1]
    assert last.mean is None and last.lower_bounds == pytest.approx({"0": 1.0, "1": 1.0, "2": 1.0})
    assert last.mean_range == (pytest.approx(1.0), math.inf) and last.interval is None


def _branch(variant, seed, budget, loss, flops_per_token=1.0):
    return BranchUnit(
        variant=variant,
        seed=seed,
        budget_tokens=budget,
        branched_at_tokens=budget * 9 // 10,
        val_loss=loss,
        train_loss=loss,
        train_flops=budget * flops_per_token,
        curve=[],
        mlm_by_ode_steps={},
    )


def test_cooldown_multipliers_and_gaps_at_equal_tokens_and_equal_flops():
    branches = []
    for seed, shift in enumerate([0.0, 0.1, -0.1]):
        branches += [_branch("bert", seed, b, loss + shift) for b, loss in ((8, 5.0), (16, 4.0), (32, 3.5))]
        branches += [_branch("heun", seed, b, loss + shift, 2.0) for b, loss in ((8, 4.5), (16, 3.5))]
    (at8, at16) = gaps(branches, "heun", "bert")
    assert at8.equal_tokens == pytest.approx([-0.5] * 3) and at16.equal_tokens == pytest.approx([-0.5] * 3)
    # at equal FLOPs heun's 8M-token point (16 units of FLOPs) meets BERT's 16M point: 4.5 - 4.0
    assert at8.equal_flops == pytest.approx([0.5] * 3) and at16.equal_flops == pytest.approx([0.0] * 3)
    interval = at8.equal_tokens_interval
    assert interval.low == pytest.approx(-0.5) and interval.high == pytest.approx(-0.5)
    assert interval.method == "t" and interval.n == 3
    # unpaired: heun's mean 4.5 against BERT's 5.0 over the same three seeds
    assert at8.unpaired == pytest.approx(-0.5) and at8.unpaired_interval.method == "Welch t"
    multipliers = cooldown_multipliers(branches, "heun", "bert")
    # heun's 4.5 at 16 FLOPs; BERT reaches 4.5 at sqrt(8 * 16) ~ 11.3 FLOPs (log-linear): 0.707
    assert multipliers[0].mean == pytest.approx(math.sqrt(8 * 16) / 16)
    assert multipliers[1].mean == pytest.approx(32 / 32)  # heun's 3.5 is BERT's at 32
    assert multipliers[0].interval.method == "t on logs" and multipliers[0].bootstrap is None  # 3 seeds


def test_multipliers_against_berts_curve_pooled_over_its_seeds_by_hand():
    # BERT's seeds 0 and 1 at 8 and 16 FLOPs: 5.2/4.2 and 4.8/3.8 -> pooled 5.0 and 4.0
    branches = [_branch("bert", 0, 8, 5.2), _branch("bert", 0, 16, 4.2)]
    branches += [_branch("bert", 1, 8, 4.8), _branch("bert", 1, 16, 3.8)]
    branches += [_branch("heun", 0, 8, 4.5, 2.0), _branch("heun", 1, 8, 4.5, 2.0)]
    assert pooled_endpoints(branches, "bert", [0, 1]) == ([8.0, 16.0], [5.0, 4.0])
    # seed 1 escaped at 10: its 8-FLOPs endpoint is on the plateau, so the pooled curve starts at 16
    assert pooled_endpoints(branches, "bert", [0, 1], {0: 0, 1: 10}) == ([16.0], [4.0])
    (point,) = cooldown_multipliers(branches, "heun", "bert", pooled=True)
    # 4.5 is halfway between 5.0 and 4.0: sqrt(8 * 16) FLOPs of BERT's, over heun's 16
    assert point.per_seed == pytest.approx({"0": math.sqrt(128) / 16, "1": math.sqrt(128) / 16})
    assert point.reference == "pooled"
    (same,) = cooldown_multipliers(branches, "heun", "bert")
    # against its own seed: seed 0's 4.5 is 0.7 of the way from 5.2 to 4.2, seed 1's 4.5 0.3 of 4.8-3.8
    assert same.per_seed["0"] == pytest.approx(8 * 2**0.7 / 16)
    assert same.per_seed["1"] == pytest.approx(8 * 2**0.3 / 16)


def test_a_censored_seed_is_kept_as_a_bound_never_dropped():
    branches = [_branch("bert", s, b, loss) for s in range(3) for b, loss in ((8, 5.0), (16, 4.0))]
    branches += [_branch("worse", 0, 8, 4.5, 2.0), _branch("worse", 1, 8, 4.0, 2.0)]
    branches += [_branch("worse", 2, 8, 5.5, 2.0)]  # above BERT's first point: <= 8 / 16
    (point,) = cooldown_multipliers(branches, "worse", "bert")
    assert point.per_seed["2"] is None and point.upper_bounds == pytest.approx({"2": 0.5})
    # no mean over the two seeds read: the range of three-seed geometric means the bound allows
    read = [math.sqrt(128) / 16, 16 / 16]
    assert point.mean is None and point.interval is None
    assert point.mean_range == (0.0, pytest.approx((read[0] * read[1] * 0.5) ** (1 / 3)))


def test_nothing_is_read_across_berts_drop():
    # BERT leaves its plateau at 10 tokens: its endpoint at 8 is on the plateau, 16 and 32 past the drop
    branches = [_branch("bert", 0, b, loss) for b, loss in ((8, 5.0), (16, 4.0), (32, 3.5))]
    branches += [_branch("heun", 0, b, loss, 1.5) for b, loss in ((8, 4.5), (16, 3.6))]
    escaped = {0: 10}
    at8, at16 = gaps(branches, "heun", "bert", escaped)
    # heun's 8-token endpoint (12 FLOPs) falls between BERT's 8 (plateau) and 16: not read
    assert at8.equal_tokens == pytest.approx([-0.5]) and at8.equal_flops == []
    # its 16-token endpoint (24 FLOPs) lies between BERT's 16 and 32, both past the drop: read
    assert at16.equal_flops == pytest.approx([3.6 - (4.0 - 0.5 * math.log(24 / 16) / math.log(2))])
    first, second = cooldown_multipliers(branches, "heun", "bert", escaped)
    assert first.mean is None and len(first.upper_bounds) == 1  # 4.5: above BERT's first point past the drop
    assert second.mean == pytest.approx(2 ** ((4.0 - 3.6) / 0.5) * 16 / 24)
    # without the escape the plateau endpoint is used, as before
    assert gaps(branches, "heun", "bert")[0].equal_flops
