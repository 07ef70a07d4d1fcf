"""What the study's verdicts rest on: the unigram entropy (hand counts), confidence intervals (known data),
the scaling-curve fit (synthetic data with known parameters) and the non-neural downstream baselines."""

from __future__ import annotations

import math

import datasets
import numpy as np
import pytest
import torch
from scipy import stats

from bert_ode.data import unigram_entropy
from bert_ode.data.tasks import TaskData, TaskSpec
from bert_ode.study.baselines import baseline_scores
from bert_ode.study.config import StudyConfig, Variant, WarmStart
from bert_ode.study.records import PretrainUnit, WarmUnit
from bert_ode.study.report_markdown import plain_summary
from bert_ode.study.scaling import bends_down, fit_power_law, interpolate_log_linear
from bert_ode.study.statistics import scaling_summary, summarize_study, tokens_to_trained
from bert_ode.study.verdicts import INCONCLUSIVE
from bert_ode.utils.metrics import confidence_interval


def test_unigram_entropy_matches_a_hand_count():
    special = torch.zeros(10, dtype=torch.bool)
    special[[0, 1]] = True  # e.g. [CLS], [SEP]: never masked, never counted
    blocks = torch.tensor([[0, 5, 5, 7, 1], [0, 5, 7, 9, 1]])  # maskable tokens: 5 x3, 7 x2, 9 x1
    expected = -(3 / 6 * math.log(3 / 6) + 2 / 6 * math.log(2 / 6) + 1 / 6 * math.log(1 / 6))
    assert unigram_entropy(blocks, special) == pytest.approx(expected, abs=1e-12)
    assert unigram_entropy(torch.tensor([[0, 4, 4, 1]]), special) == 0.0  # one word: nothing to guess
    uniform = torch.arange(2, 10).view(2, 4)
    assert unigram_entropy(uniform, special) == pytest.approx(math.log(8))
    with pytest.raises(ValueError, match="no maskable token"):
        unigram_entropy(torch.tensor([[0, 1]]), special)
    # Against reference (training) frequencies, add-one smoothed over the 8 maskable ids: counts 5 x2, 7 x1
    # give p(5) = 3/11, p(7) = 2/11, p(9) = 1/11; the blocks' tokens 5 x3, 7 x2, 9 x1 then cost:
    reference = torch.tensor([[0, 5, 7, 5, 1]])
    cross = -(3 / 6 * math.log(3 / 11) + 2 / 6 * math.log(2 / 11) + 1 / 6 * math.log(1 / 11))
    assert unigram_entropy(blocks, special, reference) == pytest.approx(cross, abs=1e-12)
    assert unigram_entropy(blocks, special, blocks) > unigram_entropy(blocks, special)  # cross >= entropy


def test_confidence_interval_on_known_data():
    values = [0.1, 0.3, 0.2, 0.4]
    low, high = confidence_interval(values)
    mean, sem = np.mean(values), stats.sem(values)
    reference = stats.t.interval(0.95, df=3, loc=mean, scale=sem)
    assert (low, high) == pytest.approx(reference, abs=1e-12)
    assert high - low == pytest.approx(2 * 3.182446305284263 * sem, rel=1e-9)  # t(0.975, 3), tabulated
    assert confidence_interval([1.0, 1.0, 1.0]) == (1.0, 1.0)
    assert confidence_interval([2.0]) == (-math.inf, math.inf)


def test_power_law_fit_recovers_known_parameters():
    compute = np.array([1e12, 4e12, 1.6e13, 6.4e13, 2.56e14])
    a, b, c = 1.8, 0.35, 3.2
    loss = a * (compute / compute.min()) ** (-b) + c
    fit = fit_power_law(compute, loss)
    assert (fit.a, fit.b, fit.c) == pytest.approx((a, b, c), rel=1e-4)
    assert fit.rmse < 1e-6 and fit(compute[2]) == pytest.approx(loss[2], rel=1e-6)
    noisy = loss + np.random.default_rng(0).normal(0, 0.01, loss.size)
    assert fit_power_law(compute, noisy).b == pytest.approx(b, abs=0.1)
    with pytest.raises(ValueError, match=">= 3"):
        fit_power_law(compute[:2], loss[:2])


def test_scaling_reads_gaps_off_the_measured_curve_and_spots_a_plateau_escape():
    # Between (1e12, 6.0) and (1e14, 4.0), 1e13 lies half way in log compute: 5.0. No extrapolation, except
    # for the 1% a budget's FLOPs move by rounding.
    assert interpolate_log_linear([1e14, 1e12], [4.0, 6.0], 1e13) == pytest.approx(5.0)
    assert interpolate_log_linear([1e12, 1e14], [6.0, 4.0], 1e15) is None
    assert interpolate_log_linear([1e12, 1e14], [6.0, 4.0], 0.5e12) is None
    assert interpolate_log_linear([1e12, 1e14], [6.0, 4.0], 1.005e14) == pytest.approx(4.0)
    # A power law plus a constant is convex in log compute; a plateau escape (the loss a logistic in log C,
    # before its midpoint) falls faster at each larger budget. The bounded fit keeps a loss-like asymptote.
    compute = np.geomspace(1e12, 1e14, 4)
    assert not bends_down(compute, 1.8 * (compute / 1e12) ** -0.35 + 3.2)
    escape = 6.4 - 2.5 / (1 + np.exp(-(np.log(compute) - np.log(3e14))))
    assert bends_down(compute, escape) and not bends_down(compute[:2], escape[:2])
    fit = fit_power_law(compute, escape)
    assert 0 <= fit.c <= escape.min() and fit.b >= 0

    # BERT's curve holds every run of its architecture: `bert-2x-tokens` adds BERT at twice each budget.
    def run(variant, budget, factor, flops, loss, overrides=None):
        return _unit(
            variant, 0, loss, 6.5, 0.5, model_overrides=overrides or {}, budget_tokens=budget,
            tokens=budget * factor, train_flops=flops,
        )  # fmt: skip

    heun = {"ode_method": "heun"}
    records = [
        run("bert", 1_000_000, 1, 1e12, 6.0),
        run("bert", 4_000_000, 1, 4e12, 5.0),
        run("bert-2x-tokens", 1_000_000, 2, 2e12, 5.5),
        run("bert-2x-tokens", 4_000_000, 2, 8e12, 4.0),
        run("heun", 1_000_000, 1, 2e12, 5.7, heun),
        run("heun", 4_000_000, 1, 8e12, 4.6, heun),
        run("heun", 16_000_000, 1, 32e12, 4.1, heun),
    ]
    scaling, reference, sources = scaling_summary(records, "bert")
    assert sources == ["bert", "bert-2x-tokens"]
    assert [(p.budget_tokens, p.train_flops, p.val_loss.mean) for p in reference.points] == [
        (1_000_000, 1e12, 6.0), (2_000_000, 2e12, 5.5), (4_000_000, 4e12, 5.0), (8_000_000, 8e12, 4.0)
    ]  # fmt: skip
    assert reference.bends_down  # per e-fold: -0.72, -0.72, -1.44 nats
    # heun at 2e12 and 8e12 FLOPs meets BERT's measured points; at 32e12 BERT was never measured and its
    # fit cannot stand in for it (the curve bends down): unknown, not invented.
    assert scaling["heun"].gap_to_baseline[:2] == pytest.approx([0.2, 0.6])
    assert scaling["heun"].gap_to_baseline[2] is None


def test_tokens_until_a_run_is_one_nat_below_word_frequencies():
    curve = [
        {"step": 1, "tokens": 100, "elapsed_s": 1.0, "val_loss": 6.2},
        {"step": 2, "tokens": 200, "elapsed_s": 2.0, "val_loss": 5.6},
        {"step": 3, "tokens": 300, "elapsed_s": 3.0, "val_loss": 5.4},  # 6.4 - 1: the first at the bar
        {"step": 4, "tokens": 400, "elapsed_s": 4.0, "val_loss": 5.5},
    ]
    assert tokens_to_trained(_unit("bert", 0, 5.5, 6.4, 0.5, curve=curve)) == 300
    assert tokens_to_trained(_unit("bert", 0, 5.5, 6.3, 0.5, curve=curve)) is None  # never 1 nat below
    assert tokens_to_trained(_unit("bert", 0, 5.5, None, 0.5, curve=curve)) is None  # entropy unknown


def _task(train, test, num_labels=2) -> TaskData:
    def split(rows):
        return datasets.Dataset.from_dict({"text": [t for t, _ in rows], "label": [y for _, y in rows]})

    spec = TaskSpec("toy", ("text",), num_labels, ("accuracy",), "accuracy")
    return TaskData(
        spec=spec,
        splits={"train": split(train), "validation": split(test), "test": split(test)},
        source="toy",
    )


def test_non_neural_baselines_on_a_task_words_decide():
    train = [
        ("great fun film", 1),
        ("wonderful great acting", 1),
        ("boring dull plot", 0),
        ("dull awful film", 0),
        ("great wonderful", 1),
        ("awful boring", 0),
        ("fun great", 1),
    ]
    test = [("great acting", 1), ("boring film", 0), ("wonderful fun", 1), ("awful plot", 0)]
    scores = baseline_scores(_task(train, test))
    assert scores["tfidf-logreg"]["test"]["accuracy"] == 1.0  # the words alone decide this task
    assert scores["majority"]["test"]["accuracy"] == 0.5  # always "1", the larger training class
    assert set(scores["majority"]) == {"validation", "test"}


def _finetune_scores(scores: dict) -> dict:
    return {
        "main_metric": "accuracy",
        "validation": scores,
        "test": scores,
        "by_ode_steps": {},
        "finetune_seconds": 1.0,
    }


def _unit(
    variant: str, seed: int, val_loss: float, unigram: float, accuracy: float, **changes
) -> PretrainUnit:
    scores = {"accuracy": accuracy, "nfe": 4.0}
    return PretrainUnit.from_dict(
        changes
        | {
            "variant": variant,
            "seed": seed,
            "model_overrides": {},
            "parameters": 1,
            "compute_match": None,
            "run_dir": "x",
            "steps": 1,
            "tokens": 1,
            "train_seconds": 1.0,
            "tokens_per_second": 1.0,
            "val_loss": val_loss,
            "val_ppl": math.exp(val_loss),
            "nfe_per_forward": 4,
            "train_flops_per_token": 1.0,
            "train_flops": 1.0,
            "curve": [],
            "mlm_by_ode_steps": {},
            "unigram_entropy": unigram,
            "finetune": _finetune_scores(scores),
        }
        | changes
    )


@pytest.mark.parametrize(("bert_loss", "trained"), [(5.40, False), (5.29, True), (4.0, True)])
def test_verdicts_only_for_models_trained_beyond_word_frequencies(bert_loss, trained):
    unigram = 6.31  # the baseline (mean over seeds: bert_loss + 0.01) must reach 5.31 before any verdict
    records = [_unit("bert", seed, bert_loss + 0.01 * seed, unigram, 0.5) for seed in range(3)]
    records += [_unit("heun", seed, bert_loss - 0.5 + 0.01 * seed, unigram, 0.9) for seed in range(3)]
    config = StudyConfig(variants=[Variant("bert"), Variant("heun", {"ode_method": "heun"})])
    summary = summarize_study(records, config)
    heun = summary.pretrain["heun"]
    assert summary.unigram_entropy == unigram
    assert heun.below_unigram.mean == pytest.approx(unigram - (bert_loss - 0.5 + 0.01))
    assert (heun.verdict_val_loss, heun.verdict_test) == (("win", "win") if trained else (INCONCLUSIVE,) * 2)
    # The paired differences (-0.5 every seed) and their interval are reported either way.
    assert heun.paired_delta_val_loss.mean == pytest.approx(-0.5)
    assert heun.paired_delta_val_loss_ci95 == pytest.approx([-0.5, -0.5])
    text = "\n".join(plain_summary(summary, config))
    assert ("Inconclusive: not trained beyond word frequencies" in text) is not trained


@pytest.mark.parametrize(
    ("bert_loss", "heun_gap", "expected"),
    [
        (5.40, -0.5, "**Finding**: none; BERT's validation loss is only 0.90 nats below"),
        (
            4.00,
            -0.5,
            "`heun` against BERT in MLM loss at equal tokens: **win** (3.510 ± 0.010 vs 4.010 ± 0.010)",
        ),
        (4.00, +0.5, "`heun` against BERT in MLM loss at equal tokens: **loss**"),
        (4.00, 0.001, "**Finding**: no comparison was shown to differ (1 judged, over 3 seed(s) each"),
    ],
)
def test_the_report_opens_with_one_sentence_saying_what_was_found(bert_loss, heun_gap, expected):
    from bert_ode.study.report_markdown import headline

    unigram = 6.31
    records = [_unit("bert", seed, bert_loss + 0.01 * seed, unigram, 0.5) for seed in range(3)]
    records += [_unit("heun", seed, bert_loss + heun_gap + 0.01 * seed, unigram, 0.5) for seed in range(3)]
    config = StudyConfig(variants=[Variant("bert"), Variant("heun", {"ode_method": "heun"})])
    sentence = headline(summarize_study(records, config), config)
    assert expected in sentence and "\n" not in sentence
    if bert_loss < 5.31:  # judged: it says how strong (seeds, the rule) and how far from word frequencies
        assert (
            "not a significance test" in sentence and "BERT is 2.30 nats below word frequencies" in sentence
        )
    assert (
        headline(summarize_study([], config), config)
        == "**Finding**: none yet; the baseline has no finished run."
    )


def _warm(variant: str, seed: int, val_loss: float, accuracy: float) -> WarmUnit:
    scores = {"accuracy": accuracy}
    return WarmUnit.from_dict(
        {
            "variant": variant,
            "seed": seed,
            "model_overrides": {},
            "parameters": 1,
            "source": "tiny-bert",
            "continued_tokens": 1000,
            "val_loss": val_loss,
            "unigram_entropy": 6.0,
            "finetune": _finetune_scores(scores),
        }
    )


@pytest.mark.parametrize(("bert_loss", "expected"), [(5.5, INCONCLUSIVE), (4.5, "loss")])
def test_a_warm_start_study_judges_its_conversions_against_the_bert_itself(bert_loss, expected):
    from bert_ode.study.report_markdown import headline

    records = [_warm("bert", seed, bert_loss + 0.01 * seed, 0.8) for seed in range(3)]
    records += [_warm("heun", seed, bert_loss + 0.3 + 0.01 * seed, 0.8 + 0.001 * seed) for seed in range(3)]
    config = StudyConfig(
        variants=[],
        warm_start=WarmStart(checkpoint="tiny-bert", variants=[Variant("bert"), Variant("heun")]),
    )
    summary = summarize_study(records[::-1], config)  # read in any order: `bert` is the reference
    assert list(summary.warm) == ["bert", "heun"]
    heun = summary.warm["heun"]
    assert (heun.verdict_val_loss, heun.verdict_test) == (expected, "not shown to differ")
    assert summary.warm["bert"].unigram_entropy == 6.0
    sentence = headline(summary, config)
    if expected == INCONCLUSIVE:  # 0.49 nats below word frequencies: no finding, whatever the gaps
        assert sentence.startswith("**Finding**: none; BERT's validation loss is only 0.49 nats below")
    else:
        assert "`heun` against `bert` in MLM loss after equal continued tokens: **loss** (4.810" in sentence
        assert "over 3 seed(s) each" in sentence and "BERT is 1.49 nats below word frequencies" in sentence
        assert "the other 1 comparison(s) were not shown to differ" in sentence


def test_the_report_flags_sweep_near_ties_and_says_how_sure_a_trend_is():
    from types import SimpleNamespace

    from bert_ode.study.report_markdown import _sweep_table, _trend_sentence
    from bert_ode.utils.metrics import SeedStats

    sweep = {"bert": {0.002: 5.680, 0.004: 5.665, 0.008: 5.896}, "heun": {0.002: 5.60, 0.004: 5.70}}
    text = "\n".join(_sweep_table(SimpleNamespace(sweep=sweep)))
    assert "`bert` (0.004 by 0.015 over 0.002)" in text and "`heun` (" not in text  # 0.10 apart: no tie

    def point(flops, mean, std=0.0, n=1):
        stats = SeedStats(median=mean, mean=mean, std=std, min=mean, max=mean, n=n)
        return SimpleNamespace(train_flops=flops, val_loss=stats)

    base = SimpleNamespace(points=[point(1, 6.0), point(4, 5.0), point(16, 4.0, 0.01, 3)])
    shrinking = SimpleNamespace(
        points=[point(2, 6.0), point(8, 5.0), point(32, 4.0, 0.01, 3)],
        gap_to_baseline=[0.5, 0.2, 0.05],
        fit=None,
    )
    (line,) = _trend_sentence("heun", shrinking, base)
    assert "+0.500, +0.200, +0.050*" in line  # the last point lies beyond BERT's largest: extrapolated
    assert "**shrinks**" in line and "exceeds the seed spread at the largest budget (0.020)" in line
    noisy = SimpleNamespace(
        points=[point(2, 6.0), point(32, 4.0, 0.2, 3)], gap_to_baseline=[0.10, 0.05], fit=None
    )
    (line,) = _trend_sentence("heun", noisy, base)
    assert "within the seed spread" in line and "low confidence" in line
    overtaking = SimpleNamespace(
        points=[point(2, 6.0), point(32, 4.0, 0.2, 3)], gap_to_baseline=[0.019, -0.060], fit=None
    )
    (line,) = _trend_sentence("strang", overtaking, base)  # smaller in size at first, but now ahead of BERT
    assert "**changes sign: from behind BERT to ahead**" in line and "the change (-0.079)" in line
