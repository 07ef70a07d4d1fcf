"""The cooldown report's extra sections against hand counts: passes over the corpus and the train-validation
gap, the learned coefficients' order conditions, the sensitivity arms read against their reference arm, and
the downstream change between budgets on the same seeds, and the warm start's conversions."""

from __future__ import annotations

from bert_ode.pretrain.probes import ProbePoint
from bert_ode.study.config import Variant
from bert_ode.study.cooldown_sections import (
    corpus_section,
    downstream_budgets_section,
    learned_section,
    probes_section,
    reference_arm,
    refinement_section,
    sensitivity_section,
    warm_start_section,
)
from bert_ode.study.records import BranchUnit, ConstantRun, CurvePoint, FinetuneScores, WarmUnit


def _branch(variant, seed, budget, val_loss, train_loss, learned=None):
    return BranchUnit(
        variant=variant,
        seed=seed,
        budget_tokens=budget,
        branched_at_tokens=budget * 9 // 10,
        val_loss=val_loss,
        train_loss=train_loss,
        train_flops=float(budget),
        curve=[],
        mlm_by_ode_steps={},
        learned=learned or {},
    )


def _run(variant, seed, losses):
    curve = [
        CurvePoint(step=i + 1, tokens=(i + 1) * 1_000_000, elapsed_s=0.0, val_loss=loss)
        for i, loss in enumerate(losses)
    ]
    return ConstantRun(
        variant=variant,
        seed=seed,
        model_overrides={},
        escape_only=True,
        tokens=curve[-1].tokens,
        train_flops_per_token=1.0,
        train_seconds=1.0,
        tokens_per_second=1.0,
        unigram_entropy=6.0,
        curve=curve,
        probes=[],
        parameters=1,
    )


def _row(lines, start):
    return next(line for line in lines if line.startswith(start))


def test_passes_and_the_train_validation_gap_by_hand():
    branches = [_branch("bert", 0, 4_000_000, 3.5, 3.2), _branch("bert", 1, 4_000_000, 3.7, 3.2)]
    corpus = {"seq_len": 100, "train_blocks": 10_000, "validation_blocks": 50, "train_tokens": 1_000_000}
    lines = corpus_section(branches, corpus)
    # 4M tokens over a 1M-token corpus: 4 passes; gaps 0.3 and 0.5 -> mean +0.400, std 0.141
    assert _row(lines, "| `bert`") == "| `bert` | 4M | 4.0 | 3.200 | 3.600 | +0.400 ± 0.141 | 2 |"
    assert "1.00M tokens" in "\n".join(lines)
    streamed = corpus_section(branches, None)
    assert _row(streamed, "| `bert`").split(" | ")[2] == "-"
    assert corpus_section([], corpus) == []


def test_learned_coefficients_are_averaged_over_seeds_per_block():
    name = "bert.encoder.layer.1.ffn_ode.coefficients.weight"
    branches = [
        _branch("ab2-learned", 0, 8_000_000, 4.0, 4.0, {name: [1.4, -0.4]}),
        _branch("ab2-learned", 1, 8_000_000, 4.0, 4.0, {name: [1.6, -0.6]}),
        _branch("bert", 0, 8, 4.0, 4.0),
    ]
    lines = learned_section(branches)
    expected = "| `ab2-learned` | 8M | layer 1 ffn | (1.500, -0.500), sum 1.000, beta_1/beta_0 -0.333 | 2 |"
    assert _row(lines, "| `ab2-learned`") == expected
    # In a stream's first block both coefficients multiply one evaluation: only the sum is learned, and the
    # difference stays at its initial 1 (BERT's (1, 0)); no shape is read from it.
    first = "bert.encoder.layer.0.attention_ode.coefficients.weight"
    lines = learned_section([_branch("ab2-learned", 0, 8_000_000, 4.0, 4.0, {first: [0.699, -0.301]})])
    assert _row(lines, "| `ab2-learned`") == (
        "| `ab2-learned` | 8M | layer 0 attention | (0.699, -0.301), sum 0.398; beta_0 - beta_1 1.000 "
        "(not identifiable) | 1 |"
    )
    assert learned_section([_branch("bert", 0, 8, 4.0, 4.0)]) == []


def test_a_sensitivity_arm_is_read_against_the_arm_it_changes():
    bert, heun = Variant(name="bert"), Variant(name="heun", model={"ode_method": "heun"})
    deeper = Variant(name="bert-2x-layers", model={"num_hidden_layers": 4}, compute_match="heun")
    half = Variant(name="heun-interval-half", model={"ode_method": "heun", "ode_interval": 0.5}, cooldowns=[])
    slow = Variant(name="bert-half-lr", train={"lr": 2e-3}, cooldowns=[])
    variants = [bert, heun, deeper, half, slow]
    assert reference_arm(half, variants) is heun
    assert reference_arm(slow, variants) is bert

    class Study:  # the two fields the section reads
        cooldowns = [8_000_000]

    Study.variants = variants
    runs = [
        _run("bert", 0, [6.0, 5.5, 4.9]),  # 1 nat below 6.0 at 3M tokens
        _run("bert-half-lr", 0, [6.0, 5.5, 5.2, 5.1, 5.0, 4.0]),  # at 5M
        _run("heun", 0, [6.0, 4.5]),  # at 2M
        _run("heun-interval-half", 0, [6.0, 5.9]),  # not yet: censored at 2M
    ]
    lines = sensitivity_section(runs, Study, margin=1.0)
    expected = "| `bert-half-lr` | lr=0.002 | 0 | 5.00M | `bert`: 3.00M | 1.67 |"
    assert _row(lines, "| `bert-half-lr`") == expected
    assert _row(lines, "| `heun-interval-half`") == (
        "| `heun-interval-half` | ode_interval=0.5 | 0 | > 2.0M | `heun`: 2.00M | - |"
    )


def test_probes_are_read_before_at_and_after_each_escape_by_hand():
    # One run, 1 nat below 6.0 at 3M tokens; probes every 1M, read 1M either side of the escape.
    run = _run("bert", 0, [6.0, 5.5, 4.9, 4.5, 4.0])
    uniform = 2.0
    entropies = {1: [1.8, 1.6], 2: [1.8, 1.2], 3: [1.6, 1.0], 4: [1.4, 0.6], 5: [1.2, 0.4]}
    run.probes = [
        ProbePoint(
            step=m,
            tokens=m * 1_000_000,
            token_cosine=[0.9, 0.5 - m / 20],
            attention_entropy=[h],
            uniform_entropy=uniform,
        )
        for m, h in entropies.items()
    ]
    late = _run("heun", 0, [6.0, 5.9, 5.8, 5.7, 4.9])  # escapes at the last evaluation: no curve after it
    late.probes = run.probes
    lines = probes_section([run, late], margin=1.0, offset=1_000_000)
    # before (2M) / at (3M) / after (4M): cosine 0.4 / 0.35 / 0.3; mean head (1.8+1.2)/4 = 0.75, 0.65, 0.5;
    # lowest head 1.2/2, 1.0/2, 0.6/2.
    assert _row(lines, "| `bert`") == (
        "| `bert` | 1 | 0.400 / 0.350 / 0.300 | 0.750 / 0.650 / 0.500 | 0.600 / 0.500 / 0.300 |"
    )
    assert not any(line.startswith("| `heun`") for line in lines)
    assert probes_section([late], margin=1.0, offset=1_000_000) == []


def test_refinement_shows_the_loss_per_step_count_and_the_observed_order():
    def branch(variant, seed, budget, losses):
        unit = _branch(variant, seed, budget, losses[0], losses[0])
        unit.mlm_by_ode_steps = {str(s): {"val_loss": v} for s, v in zip((1, 2, 4), losses, strict=True)}
        return unit

    branches = [
        # Heun on a smooth field: changes 0.04 then 0.01, so order log2(4) = 2; mean of two seeds.
        branch("heun", 0, 24_000_000, [3.00, 3.04, 3.05]),
        branch("heun", 1, 24_000_000, [3.20, 3.24, 3.25]),
        branch("heun", 0, 8_000_000, [5.0, 6.0, 7.0]),  # a smaller budget: not shown
        branch("bert", 0, 48_000_000, [2.0, 2.1, 2.2]),  # beyond the largest budget asked for: not shown
        branch("bert", 0, 24_000_000, [3.0, 3.5, 3.4]),  # changes of opposite signs: no order
    ]
    lines = refinement_section(branches, largest=24_000_000)
    assert _row(lines, "| `heun`") == (
        "| `heun` | 24M | 1 / 2 / 4 | 3.100 / 3.140 / 3.150 | +0.040 / +0.010 | 2.00 | 2 |"
    )
    assert _row(lines, "| `bert`") == (
        "| `bert` | 24M | 1 / 2 / 4 | 3.000 / 3.500 / 3.400 | +0.500 / -0.100 | - | 1 |"
    )
    assert refinement_section([], largest=24_000_000) == []


def _tuned(variant, seed, budget, accuracy):
    branch = _branch(variant, seed, budget, 4.0, 3.9)
    scores = {"accuracy": accuracy}
    branch.finetune = FinetuneScores(main_metric="accuracy", validation=scores, test=scores, by_ode_steps={})
    return branch


def test_downstream_changes_between_budgets_are_paired_by_seed_by_hand():
    branches = [
        _tuned("bert", 0, 24_000_000, 0.60),
        _tuned("bert", 1, 24_000_000, 0.70),
        _tuned("bert", 2, 24_000_000, 0.90),  # no 48M partner: left out of the pairs
        _tuned("bert", 0, 48_000_000, 0.65),
        _tuned("bert", 1, 48_000_000, 0.80),
        _tuned("heun", 0, 24_000_000, 0.70),  # one budget only: no row
        _branch("bert", 0, 16_000_000, 4.5, 4.4),  # not fine-tuned
    ]
    lines = downstream_budgets_section(branches)
    row = _row(lines, "| `bert` |")
    # Deltas +0.05 and +0.10: mean +0.075, s = 0.0354, t(0.975, 1) = 12.706 -> half width 0.318.
    assert row == "| `bert` | 24M -> 48M | 0: +0.050, 1: +0.100 | +0.075 [-0.243, +0.393] |"
    assert not any(line.startswith("| `heun`") for line in lines)
    assert downstream_budgets_section([_tuned("heun", 0, 24_000_000, 0.7)]) == []


def _warm(variant, seed, val_loss, accuracy):
    scores = {"accuracy": accuracy}
    return WarmUnit(
        variant=variant,
        seed=seed,
        model_overrides={},
        parameters=1,
        finetune=FinetuneScores(main_metric="accuracy", validation=scores, test=scores, by_ode_steps={}),
        source="minilm",
        continued_tokens=200_000,
        val_loss=val_loss,
    )


def test_the_warm_start_shows_each_conversions_loss_and_score_per_seed():
    lines = warm_start_section(
        [_warm("minilm-heun", 1, 2.5, 0.90), _warm("minilm", 1, 2.2, 0.94), _warm("minilm", 0, 2.0, 0.92)]
    )
    # minilm: losses 2.0 and 2.2 -> 2.100 ± 0.141; scores 0.92 and 0.94 -> 0.930 ± 0.014; seeds in order.
    assert _row(lines, "| `minilm` |") == (
        "| `minilm` | 0.2M | 0: 2.000, 1: 2.200 | 2.100 ± 0.141 | 0: 0.920, 1: 0.940 | 0.930 ± 0.014 |"
    )
    assert (
        _row(lines, "| `minilm-heun` |") == "| `minilm-heun` | 0.2M | 1: 2.500 | 2.500 | 1: 0.900 | 0.900 |"
    )
    assert warm_start_section([]) == []
