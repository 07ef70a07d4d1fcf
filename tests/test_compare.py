"""The comparison study: config checking, the decision rule, and one tiny end-to-end study that resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from bert_ode.cli import main
from bert_ode.finetune import FinetuneConfig
from bert_ode.pretrain import PretrainConfig, pretrain
from bert_ode.study import Variant, compare, load_study
from bert_ode.study.compare import StudyUnitsFailed
from bert_ode.study.verdicts import INCONCLUSIVE, verdict


def _stats(mean, std, n=3):
    return {"mean": mean, "std": std, "min": mean - std, "max": mean + std, "n": n}


def test_decision_rule_needs_the_difference_to_exceed_the_seed_spread():
    base = _stats(0.80, 0.02)
    assert verdict(_stats(0.85, 0.02), base, lower_is_better=False) == "win"
    # 0.03 <= 0.02 + 0.02: within the seed spread
    assert verdict(_stats(0.83, 0.02), base, lower_is_better=False) == "not shown to differ"
    assert verdict(_stats(0.70, 0.01), base, lower_is_better=False) == "loss"
    # For a loss, lower is better: a lower mean is the win.
    assert verdict(_stats(2.0, 0.01), _stats(2.5, 0.01), lower_is_better=True) == "win"
    assert verdict(_stats(2.0, 0.0, n=1), _stats(2.5, 0.0, n=1), lower_is_better=True) == "win (1 seed)"


def _write_study(tmp_path, **changes) -> str:
    study = {
        "name": "tiny",
        "pretrain": "smoke",
        "pretrain_overrides": {
            "train.budget_tokens": 16384,
            "train.batch_size": 8,
            "train.eval_every": 4,
            "train.eval_blocks": 8,
            "train.progress_bar": False,
            "tokenizer.vocab_size": 600,
            "data.builtin": "austen",
            "model.hidden_size": 32,
            "model.num_attention_heads": 2,
            "model.intermediate_size": 64,
            "data.seq_len": 64,
            "model.max_position_embeddings": 64,
        },
        "seeds": [0, 1],
        "variants": [
            {"name": "bert"},
            {"name": "heun", "model": {"ode_method": "heun"}},
            {"name": "bert-2x", "model": {"num_hidden_layers": 4}, "compute_match": "heun"},
        ],
        "finetune": {"epochs": 1, "max_train_examples": 40, "max_eval_examples": 40, "max_seq_length": 64},
        "elasticity_steps": [1, 2],
        "runs_dir": str(tmp_path / "runs"),
        "report_dir": str(tmp_path / "reports"),
    }
    study.update(changes)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return str(path)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"baseline": "nope"}, "baseline='nope'"),
        ({"variants": [{"name": "bert", "modle": {}}]}, "unknown key(s) ['modle']"),
        ({"variants": [{"name": "bert"}, {"name": "bert"}]}, "unique"),
        ({"variants": [{"name": "bert", "model": {"ode_method": "rk5"}}]}, "ode_method='rk5'"),
        ({"finetune": {"epoch": 1}}, "epoch"),
        ({"seeds": []}, "seeds"),
        ({"equivalence": {"multiplier": [1.1, 0.9]}}, "equivalence.multiplier=[1.1, 0.9] must be"),
        ({"equivalence": {"loss": 0}}, "loss"),
    ],
)
def test_bad_study_configs_are_clear_errors(tmp_path, change, message):
    with pytest.raises(ValueError) as error:
        load_study(_write_study(tmp_path, **change))
    assert message in str(error.value)


def test_every_units_config_derives_from_the_recipes_resolved_once(tmp_path):
    study = load_study(_write_study(tmp_path))
    recipes = study.recipes
    assert study.recipes is recipes  # resolved once
    heun = next(variant for variant in study.variants if variant.name == "heun")
    run = recipes.pretrain_run(heun, seed=1, output_dir=tmp_path / "unit", budget=1000, lr=3e-3)
    assert isinstance(run, PretrainConfig)
    assert (run.model["ode_method"], run.model["hidden_size"]) == ("heun", 32)
    assert (run.train.seed, run.train.budget_tokens, run.train.max_steps, run.train.lr) == (
        1,
        1000,
        None,
        3e-3,
    )
    assert run.train.output_dir == str(tmp_path / "unit")
    assert "ode_method" not in recipes.pretrain.model  # deriving a unit leaves the recipe as it was
    tuned = recipes.finetune_run("some-hub-model", seed=2, progress=False)
    assert isinstance(tuned, FinetuneConfig)
    assert (tuned.checkpoint, tuned.seeds, tuned.epochs, tuned.eval_ode_steps) == (
        "some-hub-model",
        [2],
        1,
        [1, 2],
    )
    assert tuned.output_dir is None and recipes.finetune.checkpoint is None
    with pytest.raises(ValueError, match="ode_method='rk5'"):
        recipes.pretrain_run(Variant("bad", model={"ode_method": "rk5"}), seed=0, output_dir=tmp_path / "x")


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="study 'nope' not found.*presets: cpu, gpu, smoke"):
        load_study("nope")


def test_the_cpu_and_gpu_studies_share_the_protocol():
    """The gpu preset is the cpu study at BERT-base scale: warmup-stable-decay cooldowns off one constant-rate
    run, one rate and one warmup in tokens for every arm, BERT twice as far, a FLOP-matched deeper BERT,
    continued pretraining in the warm start."""
    for name in ("cpu", "gpu"):
        study = load_study(name)
        assert len(study.cooldowns) >= 3 and study.seeds == [0, 1, 2] and not study.budgets
        recipe = study.recipes.pretrain.train
        assert recipe.warmup_tokens and all(
            "lr" not in v.train or v.name.endswith("half-lr") for v in study.variants
        )
        bert = next(v for v in study.variants if v.name == "bert")
        assert max(study.cooldowns_of(bert)) == 2 * max(study.cooldowns)
        assert any(v.compute_match == "heun" and v.model.get("num_hidden_layers") for v in study.variants)
        assert study.warm_start is not None and study.warm_start.continue_tokens


def test_a_variant_runs_its_own_seeds_only_in_a_cooldowns_study(tmp_path):
    study = load_study("cpu")
    arms = {v.name: v for v in study.variants}
    assert [s for s in study.seeds if arms["heun-half-lr"].runs_seed(s)] == [0]
    assert [s for s in study.seeds if arms["bert"].runs_seed(s)] == [0, 1, 2]
    cooldowns = {"cooldowns": [8192], "escape_tokens": 4096}
    with pytest.raises(ValueError, match=r"variant 'bert': seeds=\[5\] must name at least one of the"):
        load_study(_write_study(tmp_path, variants=[{"name": "bert", "seeds": [5]}], **cooldowns))
    with pytest.raises(ValueError, match="variant 'bert': cooldowns, escape and seeds need the study's"):
        load_study(_write_study(tmp_path, variants=[{"name": "bert", "seeds": [0]}]))


def test_the_warm_start_runs_its_own_seeds_or_the_studys(tmp_path):
    assert load_study("cpu").warm_seeds() == [0, 1]  # the seeds that fit the cpu study's 8 hours
    warm = {"checkpoint": "minilm", "variants": [{"name": "minilm"}]}
    assert load_study(_write_study(tmp_path, warm_start=warm)).warm_seeds() == [0, 1]  # the study's
    assert load_study(_write_study(tmp_path, warm_start={**warm, "seeds": [1]})).warm_seeds() == [1]
    for seeds in ([], [0, 7]):
        with pytest.raises(ValueError, match=r"warm_start.seeds=.* must name at least one of the study"):
            load_study(_write_study(tmp_path, warm_start={**warm, "seeds": seeds}))


@pytest.mark.slow
def test_tiny_study_end_to_end_and_resume(tmp_path, capsys):
    path = _write_study(tmp_path)
    report_dir = compare(path, progress=False, command="pytest")
    report = (report_dir / "report.md").read_text()
    results = json.loads((report_dir / "results.json").read_text())
    records = results["records"]
    pinned = json.loads((tmp_path / "runs" / "tiny" / "records" / "study.json").read_text())["precision"]
    assert f"pretraining: {pinned} on cpu" in report
    assert sorted((r["variant"], r["seed"]) for r in records) == [
        ("bert", 0),
        ("bert", 1),
        ("bert-2x", 0),
        ("bert-2x", 1),
        ("heun", 0),
        ("heun", 1),
    ]
    by_name = {(r["variant"], r["seed"]): r for r in records}
    # Heun evaluates every vector field twice: twice the NFE, about twice the counted FLOPs of BERT.
    assert by_name[("heun", 0)]["nfe_per_forward"] == 2 * by_name[("bert", 0)]["nfe_per_forward"]
    ratio = by_name[("heun", 0)]["train_flops"] / by_name[("bert", 0)]["train_flops"]
    assert 1.5 < ratio < 2.1
    # Depth elasticity: the MLM loss was measured at 1 and 2 steps; euler with 2 steps is not euler with 1.
    assert set(by_name[("bert", 0)]["mlm_by_ode_steps"]) == {"1", "2"}
    for record in records:
        assert record["val_loss"] > 0 and record["curve"], record["variant"]
        assert 0.0 <= record["finetune"]["test"]["accuracy"] <= 1.0
        # Each record carries the config it ran with, and how it computed: in the precision the study pinned.
        assert record["compute"]["precision"] == record["finetune"]["compute"]["precision"] == pinned
        assert record["config"]["train"]["seed"] == record["seed"]
        assert record["config"]["model"] == {**record["config"]["model"], **record["model_overrides"]}
    summary = results["summary"]["pretrain"]
    # Verdicts only for models that learned more than word frequencies (1 nat below the unigram entropy).
    unigram, base_loss = results["summary"]["unigram_entropy"], summary["bert"]["val_loss"]["mean"]
    assert unigram > 0 and summary["bert"]["below_unigram"]["mean"] == pytest.approx(unigram - base_loss)
    assert f"only word frequencies, learned on the training data) is **{unigram:.3f}" in report
    expected = {"win", "loss", "not shown to differ"} if base_loss <= unigram - 1.0 else {INCONCLUSIVE}
    # Downstream baselines without pretraining, on the same splits, in the summary and the report.
    baselines = results["summary"]["downstream_baselines"]
    assert set(baselines) == {"majority", "tfidf-logreg"}
    assert all(0.0 <= baselines[b]["test"]["accuracy"] <= 1.0 for b in baselines)
    assert "## Downstream baselines without pretraining" in report
    assert summary["heun"]["verdict_val_loss"] in expected
    assert "verdict_vs_bert-2x" in summary["heun"]
    for plot in ("val_loss_vs_tokens.png", "val_loss_vs_flops.png", "downstream.png", "elasticity.png"):
        assert (report_dir / plot).stat().st_size > 1000
    assert "Decision rule" in report and "`heun`" in report

    # Run again: every unit is reused from its record, nothing is retrained.
    before = {p: p.stat().st_mtime for p in (tmp_path / "runs" / "tiny" / "records").iterdir()}
    assert main(["compare", "--preset", path, "--no-progress"]) == 0
    after = {p: p.stat().st_mtime for p in (tmp_path / "runs" / "tiny" / "records").iterdir()}
    assert before == after
    assert "report:" in capsys.readouterr().out


@pytest.mark.slow
def test_budgets_learning_rate_sweep_and_scaling(tmp_path):
    # 8 x 64 = 512 tokens a step: budgets of 4, 16 and 64 steps; BERT on 2x tokens matches heun in compute.
    path = _write_study(
        tmp_path,
        variants=[
            {"name": "bert"},
            {"name": "heun", "model": {"ode_method": "heun"}},
            {"name": "bert-2x-tokens", "tokens_factor": 2.0, "compute_match": "heun"},
        ],
        budgets=[2048, 8192, 32768],
        small_budget_seeds=[0],
        sweep_lrs=[1e-3, 4e-3],
        sweep_budget=8192,
        elasticity_steps=[1],
    )
    report_dir = compare(path, progress=False, command="pytest")
    results = json.loads((report_dir / "results.json").read_text())
    runs = [(r["variant"], r["budget_tokens"], r["seed"], r["tokens"]) for r in results["records"]]
    # Seeds: both at the largest budget, the first only below it; tokens: the budget x tokens_factor.
    assert sorted(runs) == sorted(
        [
            (v, b, s, b * (2 if v == "bert-2x-tokens" else 1))
            for v in ("bert", "heun", "bert-2x-tokens")
            for b, seeds in ((2048, [0]), (8192, [0]), (32768, [0, 1]))
            for s in seeds
        ]
    )
    summary = results["summary"]
    # Each variant trained at the swept rate of lowest validation loss, at every budget.
    sweep = summary["sweep"]
    assert set(sweep) == {"bert", "heun", "bert-2x-tokens"} and all(
        set(v) == {"0.001", "0.004"} for v in sweep.values()
    )
    assert all(record["val_loss"] > 0 for record in results["records"])  # reused sweep runs too
    swept = sorted(path.name for path in (tmp_path / "runs" / "tiny" / "sweep").iterdir())
    assert len(swept) == 6 and all("--tokens-8192--" in name for name in swept)  # at sweep_budget
    for record in results["records"]:
        losses = sweep[record["variant"]]
        assert f"{record['lr']:g}" == min(losses, key=losses.get)
    # The main tables are at the largest budget; the scaling section has every budget, a fit and the gaps.
    assert (
        summary["pretrain"]["bert"]["tokens"] == 32768 and summary["pretrain"]["bert"]["val_loss"]["n"] == 2
    )
    scaling = summary["scaling"]
    assert [p["budget_tokens"] for p in scaling["heun"]["points"]] == [2048, 8192, 32768]
    assert scaling["bert"]["fit"] is not None and len(scaling["heun"]["gap_to_baseline"]) == 3
    flops = [p["train_flops"] for p in scaling["bert"]["points"]]
    assert flops[1] == pytest.approx(4 * flops[0], rel=0.01) and flops[2] == pytest.approx(
        16 * flops[0], rel=0.01
    )
    report = (report_dir / "report.md").read_text()
    for section in (
        "## Scaling: validation loss against training compute",
        "## Learning-rate sweep",
        "scaling.png",
    ):
        assert section in report
    assert "minus BERT at equal FLOPs" in report
    assert "written by hand" not in report
    # A hand-written reading beside the report is kept when the report is written again (units reused).
    (report_dir / "reading.md").write_text("BERT's curve bends down.\n")
    compare(path, progress=False, command="pytest")
    again = (report_dir / "report.md").read_text()
    assert "## Reading the figures (written by hand)\n\nBERT's curve bends down.\n" in again
    assert again.index("## Reading the figures") < again.index("## Pretraining")
    assert "## Leaving the plateau: tokens until the validation loss is 1 nat below unigram" in report
    assert all(len(row["tokens_to_trained"]) == 2 for row in summary["pretrain"].values())
    assert (
        "- Scaling: loss minus BERT's at equal training FLOPs, smallest to largest budget: `heun` " in report
    )
    # BERT on 2x the tokens is BERT at twice each budget: its runs join BERT's measured curve.
    assert summary["baseline_curve_from"] == ["bert", "bert-2x-tokens"]
    assert [p["budget_tokens"] for p in summary["baseline_curve"]["points"]] == [
        2048, 4096, 8192, 16384, 32768, 65536
    ]  # fmt: skip
    assert (report_dir / "scaling.png").is_file()
    # Downstream accuracy at every budget: the first seed's own record below the largest budget.
    heun_small = next(r for r in results["records"] if r["variant"] == "heun" and r["budget_tokens"] == 2048)
    accuracy = heun_small["finetune"]["test"]["accuracy"]
    assert scaling["heun"]["points"][0]["test"]["mean"] == pytest.approx(accuracy)
    assert scaling["heun"]["points"][2]["test"]["n"] == 2
    table = report[report.index("Downstream test accuracy at each budget") :]
    assert "| variant | 0.002048M tokens | 0.008192M tokens | 0.032768M tokens |" in table
    assert f"| `heun` | {accuracy:.3f} | " in table


def test_bad_budget_configs_are_clear_errors(tmp_path):
    for changes, message in (
        ({"budgets": [1000, 1000]}, "must be distinct token counts"),
        ({"budgets": [0]}, "must be distinct token counts >= 1"),
        ({"sweep_lrs": [0.0]}, "must be learning rates > 0"),
        ({"variants": [{"name": "bert", "tokens_factor": 2.0}]}, "tokens_factor=2.0 needs budgets"),
        ({"small_budget_seeds": []}, "small_budget_seeds must name at least one seed"),
        ({"budgets": [1000, 4000], "sweep_budget": 2000}, "sweep_budget=2000 must be one of budgets"),
    ):
        with pytest.raises(ValueError, match=message):
            load_study(_write_study(tmp_path, **changes))


def test_warm_start_conversions_get_the_same_mlm_head(tmp_path):
    # A BERT without an MLM head (as the real MiniLM): every conversion's fresh head must start identically.
    from transformers import BertConfig, BertModel

    from bert_ode import BertOdeForMaskedLM
    from bert_ode.pretrain.data import seed_for

    BertModel(
        BertConfig(
            vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37
        )
    ).save_pretrained(tmp_path / "bert")
    heads = []
    for overrides in ({}, {"ode_method": "heun"}, {"ode_method": "rk2-gated"}):
        torch.manual_seed(seed_for(0, "init"))  # what pretraining does before from_bert
        model = BertOdeForMaskedLM.from_bert(tmp_path / "bert", **overrides)
        heads.append({k: v.clone() for k, v in model.cls.state_dict().items()})
    for other in heads[1:]:
        assert other.keys() == heads[0].keys()
        for key in heads[0]:
            torch.testing.assert_close(other[key], heads[0][key], rtol=0, atol=0, msg=key)


@pytest.mark.slow
def test_warm_start_continues_pretraining_before_fine_tuning(tmp_path):
    # A warm-start study alone (the main job's kind): nothing pretrained from scratch, no tokenizer trained.
    source = tmp_path / "source"
    overrides = yaml.safe_load(Path(_write_study(tmp_path)).read_text())["pretrain_overrides"]
    pretrain("smoke", {**overrides, "train.output_dir": str(source), "train.budget_tokens": 2048})
    path = _write_study(
        tmp_path,
        variants=[],
        seeds=[0, 1],
        pretrain_overrides={**overrides, "train.budget_tokens": 2048},
        warm_start={
            "checkpoint": str(source / "final"),
            "continue_tokens": 1024,
            "pretrain_overrides": {
                "data.builtin": "austen",
                "data.seq_len": 64,
                "train.batch_size": 8,
                "train.eval_blocks": 8,
                "train.progress_bar": False,
            },
            "variants": [{"name": "plain"}, {"name": "heun", "model": {"ode_method": "heun"}}],
        },
        elasticity_steps=[1],
    )
    report_dir = compare(path, progress=False, command="pytest")
    results = json.loads((report_dir / "results.json").read_text())
    warm = {(r["variant"], r["seed"]): r for r in results["records"] if r["kind"] == "warm"}
    assert set(warm) == {(name, seed) for name in ("plain", "heun") for seed in (0, 1)}
    assert not [r for r in results["records"] if r["kind"] != "warm"]
    assert not (tmp_path / "runs" / "tiny" / "tokenizer").exists()  # the checkpoint's tokenizer is kept
    for record in warm.values():
        assert record["continued_tokens"] == 1024 and record["val_loss"] > 0
        assert record["unigram_entropy"] > 0  # of the blocks the loss is scored on
    continued = tmp_path / "runs" / "tiny" / "warm" / "heun" / "seed-0" / "final"
    assert json.loads((continued / "config.json").read_text())["ode_method"] == "heun"
    summary = results["summary"]["warm"]
    plain, heun = summary["plain"], summary["heun"]
    # 2,048 tokens leave the source on the plateau: its conversions' losses get no verdict, their scores do
    assert plain["val_loss"]["mean"] > plain["unigram_entropy"] - 1.0
    assert heun["verdict_val_loss"] == INCONCLUSIVE and heun["verdict_test"] in {
        "win",
        "loss",
        "not shown to differ",
    }
    text = (report_dir / "report.md").read_text()
    assert "then 1,024 tokens of MLM pretraining" in text
    assert "**Finding**: none; BERT's validation loss is only" in text.splitlines()[2]


def test_a_cooldowns_study_branches_every_budget_off_one_constant_rate_run_and_resumes(tmp_path, capsys):
    budgets = [8192, 16384]  # 16 and 32 steps of 8 blocks of 64 tokens
    path = _write_study(
        tmp_path,
        seeds=[0],
        variants=[
            {"name": "bert", "cooldowns": [*budgets, 32768]},  # BERT twice as far
            {"name": "heun", "model": {"ode_method": "heun"}, "escape": True},
            {"name": "bert-half-lr", "train": {"lr": 5.0e-3}, "cooldowns": []},  # a sensitivity arm
        ],
        cooldowns=budgets,
        cooldown_fraction=0.25,
        finetune_at=[16384],
        escape_seeds=[1],
        escape_tokens=4096,
        random_init_seeds=[0],
        pretrain_overrides={
            **yaml.safe_load(Path(_write_study(tmp_path)).read_text())["pretrain_overrides"],
            "train.warmup_tokens": 1024,
            "train.probe_blocks": 2,
        },
    )
    report_dir = compare(path, progress=False, command="pytest")
    records = json.loads((report_dir / "results.json").read_text())["records"]
    constant = {(r["variant"], r["seed"]): r for r in records if r["kind"] == "constant"}
    branches = {(r["variant"], r["budget_tokens"]): r for r in records if r["kind"] == "branch"}
    assert set(constant) == {("bert", 0), ("heun", 0), ("heun", 1), ("bert-half-lr", 0)}
    half = constant[("bert-half-lr", 0)]
    assert half["escape_only"] and half["tokens"] == 4096 and half["config"]["train"]["lr"] == 5.0e-3
    assert set(branches) == {
        ("bert", 8192),
        ("bert", 16384),
        ("bert", 32768),
        ("heun", 8192),
        ("heun", 16384),
    }
    # the constant-rate run stops where its last cooldown begins; an escape seed runs to escape_tokens
    assert constant[("bert", 0)]["tokens"] == 48 * 512 and constant[("heun", 1)]["tokens"] == 4096
    assert constant[("heun", 1)]["escape_only"] and not constant[("heun", 0)]["escape_only"]
    assert constant[("heun", 0)]["probes"] and constant[("heun", 0)]["curve"]
    for (_, budget), branch in branches.items():
        assert branch["branched_at_tokens"] == (3 * budget // 4 // 512) * 512
        assert branch["config"]["train"]["schedule"] == "wsd"
        assert (branch["finetune"] is not None) == (budget == 16384)
    # Heun counts about twice BERT's FLOPs per token
    ratio = constant[("heun", 0)]["train_flops_per_token"] / constant[("bert", 0)]["train_flops_per_token"]
    assert 1.5 < ratio < 2.1
    report = (report_dir / "report.md").read_text()
    results = json.loads((report_dir / "results.json").read_text())
    assert "## Leaving the plateau: escape times" in report and "## Compute multiplier" in report
    control = [r for r in records if r["kind"] == "control"]
    assert [r["seed"] for r in control] == [0] and 0 <= control[0]["finetune"]["test"]["accuracy"] <= 1
    assert "`random-init` (random initialisation, no pretraining)" in report
    assert "tfidf-logreg (first 64 tokens) (no pretraining)" in report
    assert results["escape"]["1"]["heun"]["seeds"] == [0, 1]  # the main seed and the escape seed
    assert [g["budget_tokens"] for g in results["gaps"] if g["variant"] == "heun"] == budgets
    corpus = results["corpus"]  # counted from the packed training split, passes in the report
    assert corpus["train_tokens"] == corpus["train_blocks"] * corpus["seq_len"] > 0
    assert "## Passes over the corpus and the train-validation gap" in report
    assert "| `bert-half-lr` | lr=0.005 | 0 |" in report and "`bert`: " in report  # read against bert
    assert "## Refinement: each endpoint evaluated with more steps" in report  # 1, 2, 4 steps per block
    # at the study's largest budget, not BERT's own further one
    assert "| `bert` | 0.016384M | 1 / 2 |" in report and "| `bert` | 0.032768M | 1 / 2 |" not in report
    for plot in (
        "constant_vs_tokens.png",
        "constant_vs_flops.png",
        "constant_by_variant.png",
        "escape_km_1nat.png",
        "cooldown_endpoints.png",
        "downstream.png",
    ):
        assert (report_dir / plot).stat().st_size > 1000 and f"]({plot})" in report

    assert "written by hand" not in report
    # Run again: every unit is reused from its record, nothing is retrained, and a hand-written reading
    # beside the report is included after the summary.
    (report_dir / "reading.md").write_text("Heun escapes later.\n")
    before = {p: p.stat().st_mtime for p in (tmp_path / "runs" / "tiny" / "records").iterdir()}
    compare(path, progress=False, command="pytest")
    assert before == {p: p.stat().st_mtime for p in (tmp_path / "runs" / "tiny" / "records").iterdir()}
    again = (report_dir / "report.md").read_text()
    assert "## Reading the figures (written by hand)\n\nHeun escapes later.\n" in again
    assert again.index("## Summary") < again.index("## Reading the figures") < again.index("## Leaving")
    # A record made under another recipe never stands in for this one's run: that unit fails, naming the
    # change, and nothing else is touched.
    original = Path(path).read_text()
    study = yaml.safe_load(original)
    study["variants"][2]["train"]["lr"] = 2.5e-3
    Path(path).write_text(yaml.safe_dump(study))
    capsys.readouterr()
    with pytest.raises(StudyUnitsFailed, match=r"1 unit\(s\) failed"):
        compare(path, progress=False, command="pytest")
    err = capsys.readouterr().err
    assert "bert-half-lr (0) FAILED: ValueError: " in err and err.count("FAILED") == 1
    assert "another recipe (train.lr 0.005 -> 0.0025)" in err
    assert before == {p: p.stat().st_mtime for p in (tmp_path / "runs" / "tiny" / "records").iterdir()}
    Path(path).write_text(original)
    compare(path, progress=False, command="pytest")
    # --report-only: nothing runs; where the records folder is gone (a committed report on another machine),
    # the records kept in results.json give the same report, and without either it is one clear error.
    (tmp_path / "runs" / "tiny" / "records").rename(tmp_path / "records-elsewhere")
    recipe = (report_dir / "pretrain_config.yaml").read_text()
    compare(path, progress=False, command="pytest", report_only=True)
    assert (report_dir / "pretrain_config.yaml").read_text() == recipe  # the resolved recipe is kept

    def without_timing(text):  # the invocation line says how long each invocation took
        return [line for line in text.splitlines() if not line.startswith("Generated by")]

    assert without_timing((report_dir / "report.md").read_text()) == without_timing(again)
    assert not (tmp_path / "runs" / "tiny" / "records").exists()  # nothing ran, nothing was written there
    (report_dir / "results.json").unlink()
    with pytest.raises(ValueError, match="--report-only: no finished records in .* run the study first"):
        compare(path, progress=False, command="pytest", report_only=True)


def test_a_study_whose_units_fail_exits_non_zero_naming_each_failure(tmp_path, capsys, monkeypatch):
    import bert_ode.study.runner as runner

    def broken(*args, **kwargs):
        raise ValueError("the corpus is gone")

    monkeypatch.setattr(runner, "pretrain", broken)
    path = _write_study(
        tmp_path, seeds=[0], variants=[{"name": "bert"}, {"name": "heun", "model": {"ode_method": "heun"}}]
    )
    assert main(["compare", "--preset", path, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "2 unit(s) failed" in err and "Traceback" not in err
    assert "  bert (seed 0): ValueError: the corpus is gone" in err and "  heun (seed 0): ValueError" in err
    report = (tmp_path / "reports" / "tiny" / "report.md").read_text()
    assert "**Failed**" in report and "the corpus is gone" in report
