"""Delay and efficiency: a known delay and efficiency planted in synthetic curves are recovered, and the
multiplier they make at a budget is the one read off the curves."""

from __future__ import annotations

import math

import pytest

from bert_ode.study.delay import delay_summary, pooled_curve, time_ratio, tokens_to_reach
from bert_ode.study.records import ConstantRun, CurvePoint
from bert_ode.utils.device import ComputeInfo

STEP = 200_000  # tokens between evaluations


def bert_loss(tokens: float) -> float:
    """A plateau at 6.2 until 4M tokens, then a decay towards 3 (1 nat below a 6.4 unigram at ~5.4M)."""
    return 3.0 + 3.2 * math.exp(-max(tokens - 4e6, 0.0) / 5e6)


def _run(variant, seed, loss_of, evaluations=110, flops_per_token=1.0, tokens_per_second=1000.0):
    curve = [
        CurvePoint(step=i, tokens=i * STEP, elapsed_s=float(i), val_loss=loss_of(i * STEP))
        for i in range(1, evaluations + 1)
    ]
    return ConstantRun(
        variant=variant,
        seed=seed,
        model_overrides={},
        escape_only=False,
        tokens=curve[-1].tokens,
        train_flops_per_token=flops_per_token,
        train_seconds=1.0,
        tokens_per_second=tokens_per_second,
        unigram_entropy=6.4,
        curve=curve,
        probes=[],
        parameters=1,
        compute=ComputeInfo("fp32", "cpu", "AVX2", False, 2, "test"),
    )


def test_a_planted_delay_and_efficiency_are_recovered():
    delay, efficiency = 2e6, 0.8

    def planted(tokens):
        return bert_loss(efficiency * (tokens - delay))

    runs = [_run("bert", s, lambda t, s=s: bert_loss(t) + (0.01 if s else -0.01)) for s in range(2)]
    runs += [_run("heun", s, planted, flops_per_token=2.0, tokens_per_second=600.0) for s in range(3)]
    summary = delay_summary(runs, "heun", "bert")
    assert len(summary.fits) == 3 and not summary.unfitted
    assert summary.delay == pytest.approx(delay, rel=0.03)
    assert summary.efficiency == pytest.approx(efficiency, rel=0.01)
    assert summary.delay_interval.method == "t" and summary.efficiency_interval.method == "t on logs"
    assert summary.flops_ratio == pytest.approx(2.0) and summary.time_ratio == pytest.approx(1000 / 600)
    # at 20M tokens heun is worth 0.8 * (20 - 2) = 14.4M BERT tokens: 0.72 per token
    assert summary.token_multiplier(20e6) == pytest.approx(0.72, rel=0.02)
    # BERT against itself: no delay, efficiency 1
    itself = delay_summary(runs, "bert", "bert")
    assert itself.efficiency == pytest.approx(1.0, abs=0.01) and abs(itself.delay) < 0.1e6


def test_an_arm_that_never_reaches_berts_curve_is_unfitted_not_guessed():
    runs = [_run("bert", 0, bert_loss), _run("stuck", 0, lambda t: 6.2)]
    summary = delay_summary(runs, "stuck", "bert")
    assert summary.fits == [] and summary.unfitted == [0] and summary.efficiency is None
    assert delay_summary([_run("stuck", 0, lambda t: 6.2)], "stuck", "bert") is None


def test_inverting_a_curve_uses_its_running_minimum_and_never_extrapolates():
    tokens, losses = [1, 2, 3, 4], [5.0, 4.0, 4.5, 3.0]
    assert tokens_to_reach(4.0, tokens, losses) == pytest.approx(2.0)
    assert tokens_to_reach(3.5, tokens, losses) == pytest.approx(3.5)  # 4.0 -> 3.0 between 3 and 4
    assert tokens_to_reach(5.5, tokens, losses) is None and tokens_to_reach(2.0, tokens, losses) is None
    runs = [_run("bert", 0, lambda t: 5.0, evaluations=3), _run("bert", 1, lambda t: 4.0, evaluations=4)]
    assert pooled_curve(runs) == ([200_000, 400_000, 600_000], [4.5, 4.5, 4.5])


def test_measured_time_is_compared_only_on_one_kind_of_machine():
    bert, heun = _run("bert", 0, bert_loss), _run("heun", 0, bert_loss, tokens_per_second=500.0)
    assert time_ratio([heun], [bert]) == pytest.approx(2.0)
    heun.compute = ComputeInfo("bf16", "cpu", "AVX512", True, 2, "test")
    assert time_ratio([heun], [bert]) is None
