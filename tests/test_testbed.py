"""The testbed's verdict from records: the learning-rate sweep's choice, the controls' intervals and status,
the seeds a multiplier interval needs (against a hand count), the decision, and the study config that holds
the sweep."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from bert_ode.study import testbed
from bert_ode.study.config import load_study
from bert_ode.study.testbed import (
    Losses,
    arm_sweep,
    arm_values,
    loss_control,
    passes_over_data,
    seeds_needed,
)


@pytest.fixture(scope="module")
def config():
    return load_study("testbed")


def _losses(values: dict[tuple[str, int], dict[int, float]]) -> Losses:
    losses = Losses([])
    losses.loss = values
    return losses


def test_the_sweep_variants_are_the_arms_at_each_rate_with_the_sweeps_seeds_and_no_finetuning(config):
    names = {variant.name: variant for variant in config.variants}
    swept = names["bert-L6-lr0.004"]
    assert swept.train == {"lr": 0.004} and swept.seeds == [0] and swept.finetune_at == []
    assert swept.model == names["bert-L6"].model
    assert [name for _, name in config.swept_variants()["strang-L6"]] == [
        "strang-L6-lr0.001",
        "strang-L6-lr0.002",
        "strang-L6-lr0.004",
        "strang-L6-lr0.008",
    ]
    assert config.sweep_budget_of("bert-L6") == 24_000_000  # past the plateau (plateau.md, round 4)
    only = load_study("testbed", {"only": ["bert-L2-lr*"]})
    assert [v.name for v in only.variants if only.selects(v.name)] == [
        f"bert-L2-lr{r}" for r in ("0.001", "0.002", "0.004", "0.008")
    ]
    with pytest.raises(ValueError, match=r"only=\['nothing\*'\] names no variant"):
        load_study("testbed", {"only": ["nothing*"]})


def test_a_sweep_chooses_the_lowest_mean_and_says_when_it_is_at_the_grids_edge(config):
    budget = config.sweep_budget_of("bert-L6")
    table = {0.001: (3.9, 3.8), 0.002: (3.5, 3.6), 0.004: (3.6, 3.7), 0.008: (4.4, 4.0)}
    losses = _losses({(f"bert-L6-lr{r:g}", budget): dict(enumerate(v)) for r, v in table.items()})
    sweep = arm_sweep(config, losses, "bert-L6")
    assert sweep.best_rate == 0.002 and not sweep.at_edge
    assert [row.mean for row in sweep.rows] == pytest.approx([3.85, 3.55, 3.65, 4.2])
    losses.loss[("bert-L6-lr0.001", budget)] = {0: 3.0, 1: 3.1}
    assert arm_sweep(config, losses, "bert-L6").at_edge
    del losses.loss[("bert-L6-lr0.008", budget)]  # a rate not run yet: no choice
    assert arm_sweep(config, losses, "bert-L6").best_rate is None
    assert not arm_sweep(config, losses, "bert-L6").at_edge


def test_an_arm_pools_its_own_seeds_with_the_sweeps_runs_at_its_rate(config):
    budget = config.sweep_budget_of("bert-L6")
    rate = config.recipes.pretrain.train.lr  # bert-L6 trains at the recipe's rate until the sweep sets it
    losses = _losses(
        {
            (f"bert-L6-lr{rate:g}", budget): {0: 3.5, 1: 3.6},
            ("bert-L6-lr0.008", budget): {0: 9.0},  # another rate: not the arm
            ("bert-L6", budget): {2: 3.4},
        }
    )
    assert arm_values(config, losses, "bert-L6", budget) == {0: 3.5, 1: 3.6, 2: 3.4}


def test_a_control_passes_only_when_its_whole_interval_is_a_gain(config):
    budget = config.sweep_budget_of("bert-L6")
    better, worse = [3.50, 3.52, 3.48], [3.70, 3.69, 3.72]
    losses = _losses(
        {("bert-L6", budget): dict(enumerate(better)), ("bert-L4", budget): dict(enumerate(worse))}
    )
    control = loss_control(config, losses, "depth", "6 beats 4", "bert-L6", "bert-L4", budget)
    assert control.status == "pass" and control.gain.low > 0
    assert control.gain_mean == pytest.approx(sum(worse) / 3 - sum(better) / 3)
    # by hand: Welch's interval of mean(worse) - mean(better)
    va, vb = stats.tvar(worse) / 3, stats.tvar(better) / 3
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert control.gain.low == pytest.approx(control.gain_mean - half)
    losses.loss[("bert-L4", budget)] = {0: 3.40, 1: 3.60, 2: 3.55}  # no gain shown
    assert loss_control(config, losses, "depth", "", "bert-L6", "bert-L4", budget).status == "fail"
    losses.loss[("bert-L4", budget)] = {0: 3.70, 1: 3.71}  # two seeds: not read yet
    assert loss_control(config, losses, "depth", "", "bert-L6", "bert-L4", budget).status == "pending"


def test_seeds_needed_is_the_smallest_n_whose_half_width_is_within_ten_percent():
    # by hand, sd 0.1 in log compute: n = 5 gives 2.776 * 0.1 * sqrt(2/5) = 0.1756 > ln 1.1 = 0.0953; n = 10:
    # 2.262 * 0.1 * 0.4472 = 0.1012 > 0.0953; n = 11: 2.228 * 0.1 * 0.4264 = 0.0950 <= 0.0953
    assert seeds_needed(0.1) == 11
    # sd 0.01: n = 2 gives 12.71 * 0.01 * 1 = 0.127 (one degree of freedom); n = 3: 4.303 * 0.01 * 0.816
    assert seeds_needed(0.01) == 3
    assert seeds_needed(10.0) is None


def test_passes_are_stated_for_every_budget_and_for_the_sampled_arm(config):
    passes = passes_over_data(config, 32_000_000)
    assert passes["16,000,000"] == pytest.approx(0.5) and passes["24,000,000"] == pytest.approx(0.75)
    assert passes["24,000,000 (bert-L6-16-passes)"] == pytest.approx(16.0)


def test_without_records_the_decision_says_what_is_pending(config):
    results = testbed.testbed_results(config, [], train_tokens=None)
    assert all(control.status == "pending" for control in results.controls)
    assert results.decision[0].startswith("Not decided: the controls depth 6 vs 4")


def test_a_sweep_that_names_no_variant_or_seeds_outside_the_study_is_refused():
    with pytest.raises(ValueError, match=r"lr_sweep needs variants .* \['nope'\] named no variant"):
        load_study("testbed", {"lr_sweep.variants": ["nope"]})
    with pytest.raises(ValueError, match=r"lr_sweep.seeds=\[7\] must be some of the study's seeds"):
        load_study("testbed", {"lr_sweep.seeds": [7]})
    with pytest.raises(ValueError, match=r"lr_sweep.budget=5 is not a cooldown"):
        load_study("testbed", {"lr_sweep.budget": 5})
    with pytest.raises(
        ValueError, match=r"seeds=\[\] must name at least one .* only for a variant the lr_sweep"
    ):
        load_study("testbed", {"lr_sweep.variants": ["bert-L6"]})  # strang-L6 keeps seeds: [] unswept


def test_a_variants_data_overrides_reach_its_runs(config):
    variant = next(v for v in config.variants if v.name == "bert-L6-16-passes")
    run = config.recipes.pretrain_run(variant, 0, "runs/x")
    assert run.data.max_train_tokens == 1_500_000 and run.model["num_hidden_layers"] == 6
    other = next(v for v in config.variants if v.name == "bert-L6")
    assert config.recipes.pretrain_run(other, 0, "runs/x").data.max_train_tokens is None


def test_the_protocol_check_counts_best_steps_in_the_last_fifth_and_names_the_checkpoint(config):
    results = testbed.testbed_results(config, [], train_tokens=None)

    def run(model: str, best_step: int) -> dict:
        scores = {"accuracy": 0.75}
        checkpoint = "runs/x/final" if model == "pretrained" else "random init (seed 0)"
        return {
            "model": model,
            "checkpoint": checkpoint,
            "learning_rate": 1e-4,
            "epochs": 3.0,
            "best_step": best_step,
            "max_steps": 100,
            "validation": scores,
            "test": scores,
        }

    # 80 of 100 is the last fifth's edge (not in it); 81 is in it
    results.protocol = [run("pretrained", 80), run("random-init", 81)]
    text = "\n".join(testbed.downstream_section(results))
    assert "in the last fifth of training in 1 of 2 settings" in text
    assert "`runs/x/final`" in text
    assert "| random-init | 0.0001 | 3 | 81 / 100 | yes |" in text
