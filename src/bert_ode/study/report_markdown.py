"""``report.md`` of a study: the protocol, plain sentences on what the figures show, the tables, the plots.

One function per section; each takes the ``StudySummary`` (``report.py``) and returns lines.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

from ..utils import markdown
from .config import StudyConfig
from .records import PretrainSummary, Stats, StudySummary
from .verdicts import INCONCLUSIVE, TRAINED_MARGIN, trained_beyond_unigram


def mean_std(stats: Stats, digits: int = 3) -> str:
    """A figure over seeds as ``mean ± std`` (the mean alone for one seed); ``-`` without a finished seed."""
    if stats is None:
        return "-"
    if stats.n == 1:
        return markdown.fmt(stats.mean, digits)
    return f"{markdown.fmt(stats.mean, digits)} ± {markdown.fmt(stats.std, digits)}"


def delta_with_ci(stats: Stats, interval: list[float] | None) -> str:
    """A paired difference as ``mean ± std [95% CI low, high]``."""
    if stats is None:
        return "-"
    if interval is None or stats.n < 2:
        return mean_std(stats)
    return f"{mean_std(stats)} [{interval[0]:+.3f}, {interval[1]:+.3f}]"


def _mean(stats: Stats) -> float:
    return (stats.mean if stats is not None else None) or 0.0


def _describe(overrides: dict, tokens_factor: float = 1.0) -> str:
    """A variant's model in words: its overrides (plain BERT without any) and its share of the tokens."""
    model = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "BERT (euler, 1 step)"
    return model if tokens_factor == 1.0 else f"{model}, {tokens_factor:g}x the tokens"


def _tokens_factor(config: StudyConfig, name: str) -> float:
    return next((v.tokens_factor for v in config.variants if v.name == name), 1.0)


def _ode_variants(summary: StudySummary, config: StudyConfig) -> dict[str, PretrainSummary]:
    """The variants judged against BERT at equal parameters: all but the baseline and the compute matches."""
    return {
        name: row
        for name, row in summary.pretrain.items()
        if name != config.baseline and not row.compute_match
    }


# ------------------------------------------------------------------------------------------------------------
# Summary sentences
# ------------------------------------------------------------------------------------------------------------


def _verdict_sentences(summary: StudySummary, config: StudyConfig) -> list[str]:
    metric, lines = summary.metric, []
    by_loss: dict[str, list[str]] = {}
    by_test: dict[str, list[str]] = {}
    for name, row in _ode_variants(summary, config).items():
        by_loss.setdefault(row.verdict_val_loss, []).append(
            f"`{name}` ({mean_std(row.val_loss)}, {_mean(row.nfe_per_forward):.0f} evaluations per forward)"
        )
        by_test.setdefault(row.verdict_test, []).append(f"`{name}` ({mean_std(row.test)})")
    for verdict_name, entries in sorted(by_loss.items()):
        lines.append(
            f"- Equal parameters, equal tokens, MLM loss — **{verdict_name}** against BERT: "
            f"{', '.join(entries)}."
        )
    for verdict_name, entries in sorted(by_test.items()):
        lines.append(
            f"- Equal parameters, downstream test {metric} — **{verdict_name}** against BERT: "
            f"{', '.join(entries)}."
        )
    return lines


def _equal_compute_sentences(summary: StudySummary, config: StudyConfig) -> list[str]:
    lines = []
    for name, row in summary.pretrain.items():
        for other_name, verdicts in row.verdicts_vs.items():
            other = summary.pretrain[other_name]
            lines.append(
                f"- Equal compute: `{name}` against `{other_name}` "
                f"({_describe(other.model_overrides, _tokens_factor(config, other_name))}, "
                f"{_mean(other.train_flops):.2e} vs {_mean(row.train_flops):.2e} training FLOPs): MLM loss "
                f"**{verdicts.val_loss}** ({mean_std(row.val_loss)} vs {mean_std(other.val_loss)}), test "
                f"{summary.metric} **{verdicts.test}** ({mean_std(row.test)} vs {mean_std(other.test)})."
            )
    return lines


def _warm_sentence(summary: StudySummary) -> list[str]:
    if not summary.warm:
        return []
    (first, bert), *others = summary.warm.items()
    conversions = "".join(f"; `{name}` {mean_std(row.test)} (**{row.verdict_test}**)" for name, row in others)
    lines = [
        f"- Warm start from the pretrained BERT: `{first}` (the BERT itself) reaches test "
        f"{summary.metric} {mean_std(bert.test)}{conversions}."
    ]
    if bert.val_loss is not None and bert.continued_tokens:
        unigram = (
            f" ({bert.unigram_entropy - bert.val_loss.mean:.2f} nats below the unigram entropy of its "
            f"validation blocks, {bert.unigram_entropy:.3f})"
            if bert.unigram_entropy is not None
            else ""
        )
        losses = "".join(
            f"; `{name}` {mean_std(row.val_loss)} (**{row.verdict_val_loss}**)" for name, row in others
        )
        lines.append(
            f"- Validation MLM loss after {bert.continued_tokens:,} continued tokens: `{first}` "
            f"{mean_std(bert.val_loss)}{unigram}{losses}."
        )
    return lines


def _elasticity_sentence(summary: StudySummary) -> list[str]:
    entries = []
    for name, row in summary.pretrain.items():
        by_steps = row.mlm_by_ode_steps
        trained = str(row.model_overrides.get("ode_steps", 1))
        if len(by_steps) > 1 and trained in by_steps:
            others = [f"{s} steps {by_steps[s].mean:.3f}" for s in by_steps if s != trained]
            entries.append(
                f"`{name}` (trained {trained}: {by_steps[trained].mean:.3f}; " + ", ".join(others) + ")"
            )
    if not entries:
        return []
    return ["- Depth elasticity (validation MLM loss at other step counts): " + "; ".join(entries) + "."]


def _scaling_sentence(summary: StudySummary, config: StudyConfig) -> list[str]:
    """Each variant's gap to BERT at equal FLOPs at its smallest and largest budget (section "Scaling")."""
    entries = []
    for name, row in summary.scaling.items():
        gaps = [g for g in row.gap_to_baseline if g is not None]
        if name == config.baseline or name in summary.baseline_curve_from or len(gaps) < 2:
            continue
        entries.append(f"`{name}` {gaps[0]:+.3f} -> {gaps[-1]:+.3f} (**{_trend(gaps)}**)")
    if not entries:
        return []
    bend = (
        " BERT's curve bends down (the loss falls faster at each larger budget: still leaving the plateau), "
        "so no power-law exponent is quoted and the trend rests on the measured points."
        if summary.baseline_curve is not None and summary.baseline_curve.bends_down
        else ""
    )
    return [
        "- Scaling: loss minus BERT's at equal training FLOPs, smallest to largest budget: "
        + "; ".join(entries)
        + "."
        + bend
    ]


def _unigram_sentence(summary: StudySummary, base: PretrainSummary) -> list[str]:
    """How far the baseline is from a model that knows only word frequencies; whether verdicts are given."""
    unigram = summary.unigram_entropy
    if unigram is None:
        return []
    below = unigram - base.val_loss.mean if base.val_loss is not None else None
    line = (
        "- The validation set's unigram entropy (the MLM loss of a model that knows only word frequencies, "
        f"learned on the training data) is **{unigram:.3f} nats**; the baseline is {below:.3f} nats below it."
    )
    if not trained_beyond_unigram(base, unigram):
        line += (
            f" **{INCONCLUSIVE[0].upper() + INCONCLUSIVE[1:]}**: the baseline is less than "
            f"{TRAINED_MARGIN:g} nat below word frequencies, so no verdict between variants is given; the "
            "tables show the figures only."
        )
    return [line]


def _bag_of_words_sentence(summary: StudySummary) -> list[str]:
    """Which pretrained variants beat TF-IDF + logistic regression, a model that needs no pretraining."""
    tfidf = (summary.downstream_baselines or {}).get("tfidf-logreg", {}).get("test", {}).get(summary.metric)
    if tfidf is None or not summary.pretrain:
        return []
    beaten = [
        f"`{n}` ({mean_std(r.test)})" for n, r in summary.pretrain.items() if r.test and r.test.mean > tfidf
    ]
    not_beaten = [
        f"`{n}` ({mean_std(r.test)})" for n, r in summary.pretrain.items() if r.test and r.test.mean <= tfidf
    ]
    line = (
        "- Downstream, against TF-IDF + logistic regression (no pretraining, test "
        f"{summary.metric} {tfidf:.3f}):"
    )
    if beaten:
        line += f" beaten by {', '.join(beaten)};"
    if not_beaten:
        line += (
            f" **not beaten** by {', '.join(not_beaten)}: these encoders add nothing a bag of words lacks;"
        )
    return [line.rstrip(";") + "."]


def plain_summary(summary: StudySummary, config: StudyConfig) -> list[str]:
    """Sentences that say what the figures show, negative results included."""
    base = summary.pretrain.get(config.baseline)
    if base is None:
        return _warm_sentence(summary) or ["The baseline has no finished run yet."]
    return [
        *_unigram_sentence(summary, base),
        f"- Baseline `{config.baseline}`: validation MLM loss {mean_std(base.val_loss)}, "
        f"test {summary.metric} {mean_std(base.test)} over {base.val_loss.n if base.val_loss else 0} "
        "seed(s).",
        *_verdict_sentences(summary, config),
        *_bag_of_words_sentence(summary),
        *_equal_compute_sentences(summary, config),
        *_scaling_sentence(summary, config),
        *_warm_sentence(summary),
        *_elasticity_sentence(summary),
    ]


def _judged(summary: StudySummary, config: StudyConfig) -> list[tuple[str, str, str]]:
    """Every comparison the study judged: (verdict, what was compared, its figures), equal tokens first."""
    judged = []
    for name, row in _ode_variants(summary, config).items():
        judged.append(
            (
                row.verdict_val_loss,
                f"`{name}` against BERT in MLM loss at equal tokens",
                f"{mean_std(row.val_loss)} vs {mean_std(summary.pretrain[config.baseline].val_loss)}",
            )
        )
    for name, row in summary.pretrain.items():
        for other_name, verdicts in row.verdicts_vs.items():
            judged.append(
                (
                    verdicts.val_loss,
                    f"`{name}` against `{other_name}` in MLM loss at equal compute",
                    f"{mean_std(row.val_loss)} vs {mean_std(summary.pretrain[other_name].val_loss)}",
                )
            )
    return [entry for entry in judged if entry[0] not in (None, "n/a")]


def _warm_judged(summary: StudySummary) -> list[tuple[str, str, str]]:
    """The warm start's comparisons: each conversion against the first (the BERT itself)."""
    (reference_name, reference), *others = summary.warm.items()
    judged = []
    for name, row in others:
        judged.append(
            (
                row.verdict_val_loss,
                f"`{name}` against `{reference_name}` in MLM loss after equal continued tokens",
                f"{mean_std(row.val_loss)} vs {mean_std(reference.val_loss)}",
            )
        )
        judged.append(
            (
                row.verdict_test,
                f"`{name}` against `{reference_name}` in test {summary.metric}",
                f"{mean_std(row.test)} vs {mean_std(reference.test)}",
            )
        )
    return [entry for entry in judged if entry[0] not in (None, "n/a")]


def headline(summary: StudySummary, config: StudyConfig) -> str:
    """The report's first sentence: what the study found and how strong that is."""
    base = summary.pretrain.get(config.baseline)
    if base is None and summary.warm:  # a warm-start study: conversions of one pretrained BERT
        base = next(iter(summary.warm.values()))
        unigram, judged, seeds = base.unigram_entropy, _warm_judged(summary), len(base.seeds)
    elif base is None or base.val_loss is None:
        return "**Finding**: none yet; the baseline has no finished run."
    else:
        unigram, judged, seeds = summary.unigram_entropy, _judged(summary, config), base.val_loss.n
    below = "(unigram entropy not recorded)"
    if base.val_loss is not None and unigram is not None:
        below = f"{unigram - base.val_loss.mean:.2f} nats below"
        if base.val_loss.mean > unigram - TRAINED_MARGIN:
            return (
                f"**Finding**: none; BERT's validation loss is only {below} the word-frequency model (a "
                f"verdict needs {TRAINED_MARGIN:g} nat), so this run shows the pipeline, not an answer."
            )
    decided = [entry for entry in judged if entry[0].startswith(("win", "loss"))]
    strength = (
        f"over {seeds} seed(s) each, by the screening rule that a difference must exceed the sum of the two "
        f"seed standard deviations (not a significance test); BERT is {below} word frequencies"
    )
    if not decided:
        return (
            f"**Finding**: no comparison was shown to differ ({len(judged)} judged, {strength}); this says "
            "the differences are smaller than the seed spread here, not that the schemes are equivalent."
        )
    found = "; ".join(f"{what}: **{verdict}** ({figures})" for verdict, what, figures in decided)
    rest = len(judged) - len(decided)
    others = f"; the other {rest} comparison(s) were not shown to differ" if rest else ""
    return f"**Finding** ({strength}): {found}{others}."


# ------------------------------------------------------------------------------------------------------------
# Sections
# ------------------------------------------------------------------------------------------------------------


def _header(
    config: StudyConfig, command: str, machine: dict, wall_seconds: float, summary: StudySummary
) -> list[str]:
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"# bert-ode study `{config.name}`: does ODE-BERT beat BERT?",
        "",
        headline(summary, config),
        "",
        f"Generated {generated} by `{command}` ({wall_seconds / 60:.1f} min of this invocation; "
        "finished units are reused when a study is re-run).",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, torch threads {machine['torch_threads']}, "
        f"GPU: {machine['gpu'] or 'none'}; Python {machine['python']}, torch {machine['torch']}.",
        "",
        "How the units computed (precision, device, CPU capability, threads, processor): "
        + ("; ".join(f"{where} ({count})" for where, count in summary.compute.items()) or "no unit yet")
        + ".",
        "",
        _protocol(config),
    ]


def _protocol(config: StudyConfig) -> str:
    ft = dict(config.finetune)
    task = ft.get("task", "bbc-news")
    warm = config.warm_start
    if config.variants or warm is None:
        opening = (
            f"Protocol: every variant is pretrained from scratch with the recipe `{config.pretrain}` "
            f"(+ `{config.pretrain_overrides}`; full config in `pretrain_config.yaml`), the same data, "
            f"tokenizer and token budget, for seeds {config.seeds}; then fine-tuned on `{task}` with one "
            f"hyperparameter set (`{ft}`), model selection on the validation split, test scored once."
        )
    else:
        continued = (
            f"continues MLM pretraining for {warm.continue_tokens:,} tokens with the recipe "
            f"`{warm.pretrain}` (+ `{warm.pretrain_overrides}`), the same tokens, data order and masks for "
            "every conversion of a seed, and is then"
            if warm.continue_tokens
            else "is"
        )
        opening = (
            f"Protocol: nothing is pretrained from scratch. The pretrained BERT `{warm.checkpoint}` is "
            f"converted to each scheme (the first conversion is the BERT itself); each conversion, for seeds "
            f"{config.warm_seeds()}, {continued} fine-tuned on `{task}` with one hyperparameter set "
            f"(`{ft}`), model selection on the validation split, test scored once."
        )
    return (
        opening + " Figures are mean ± standard deviation over seeds. **Decision rule**: a difference is a "
        "win or a loss only when the difference of means exceeds the sum of the two standard deviations; "
        "otherwise it is not shown to differ. The paired Δ columns give the per-seed difference to BERT "
        "(same seed: same data order and masks), mean ± std over seeds and, in brackets, the 95% paired-t "
        "confidence interval of its mean. **No verdict** is given while BERT's validation loss is less than "
        f"{TRAINED_MARGIN:g} nat below the validation set's unigram entropy (the loss of knowing word "
        "frequencies alone): such models have not learned language."
    )


def _summary_section(summary: StudySummary, config: StudyConfig, failures: list[dict]) -> list[str]:
    return [
        "## Summary",
        "",
        *plain_summary(summary, config),
        *[
            f"- **Failed** (not in the tables; re-running the study retries it): `{f['variant']}` "
            f"seed {f['seed']}: {f['error']}"
            for f in failures
        ],
    ]


def _pretrain_table(summary: StudySummary, config: StudyConfig) -> list[str]:
    if not summary.pretrain:
        return []  # a warm-start study: nothing pretrained from scratch
    metric = summary.metric
    header = [
        "variant",
        "model",
        "params",
        "val MLM loss",
        "below unigram",
        "val ppl",
        f"test {metric}",
        "train s",
        "tokens/s",
        "train FLOPs",
        "NFE/forward",
        "vs BERT (loss / test)",
        "paired Δ loss",
        f"paired Δ {metric}",
    ]
    rows = []
    for name, row in summary.pretrain.items():
        versus = "baseline" if name == config.baseline else f"{row.verdict_val_loss} / {row.verdict_test}"
        if row.compute_match:
            versus += f" (compute match for `{row.compute_match}`)"
        flops = f"{row.train_flops.mean:.2e}" if row.train_flops is not None else "-"
        rows.append(
            [
                f"`{name}`",
                _describe(row.model_overrides, _tokens_factor(config, name)),
                f"{row.parameters / 1e6:.2f}M",
                mean_std(row.val_loss),
                mean_std(row.below_unigram),
                mean_std(row.val_ppl, 1),
                mean_std(row.test),
                mean_std(row.train_seconds, 0),
                mean_std(row.tokens_per_second, 0),
                flops,
                mean_std(row.nfe_per_forward, 1),
                versus,
                delta_with_ci(row.paired_delta_val_loss, row.paired_delta_val_loss_ci95),
                delta_with_ci(row.paired_delta_test, row.paired_delta_test_ci95),
            ]
        )
    return ["## Pretraining (equal parameters and equal compute)", "", *markdown.table(header, rows)]


def _plateau_table(summary: StudySummary) -> list[str]:
    """Per variant and seed: tokens until the validation loss was TRAINED_MARGIN below word frequencies."""
    by_variant = {
        name: dict(zip(row.seeds, row.tokens_to_trained, strict=False))
        for name, row in summary.pretrain.items()
        if row.tokens_to_trained
    }
    if summary.unigram_entropy is None or not by_variant:
        return []
    seeds = sorted({seed for by_seed in by_variant.values() for seed in by_seed})

    def cell(name: str, seed: int) -> str:
        if seed not in by_variant[name]:
            return "-"
        tokens = by_variant[name][seed]
        budget = summary.pretrain[name].tokens / 1e6
        return f"{tokens / 1e6:.1f}M" if tokens is not None else f"not within {budget:.1f}M"

    rows = [[f"`{name}`", *[cell(name, seed) for seed in seeds]] for name in by_variant]
    return [
        "",
        f"## Leaving the plateau: tokens until the validation loss is {TRAINED_MARGIN:g} nat below unigram",
        "",
        "Read off each run's validation curve (every `eval_every` steps). The loss leaves the word-frequency "
        "plateau abruptly, so a run that has not left it by the end of its budget scores far worse than one "
        "that has, and a difference between variants at one budget is largely a difference in when this "
        "happens.",
        "",
        *markdown.table(["variant", *[f"seed {seed}" for seed in seeds]], rows),
    ]


def _baselines_table(summary: StudySummary) -> list[str]:
    """The downstream scores of models that need no pretraining, on the same splits."""
    baselines = summary.downstream_baselines or {}
    if not baselines or summary.metric is None:
        return []
    names = {"majority": "majority class", "tfidf-logreg": "TF-IDF (word 1-2 grams) + logistic regression"}
    rows = [
        [names.get(name, name), by_split["validation"][summary.metric], by_split["test"][summary.metric]]
        for name, by_split in baselines.items()
    ]
    header = ["baseline (no pretraining)", f"validation {summary.metric}", f"test {summary.metric}"]
    return [
        "",
        "## Downstream baselines without pretraining (same splits)",
        "",
        *markdown.table(header, rows),
    ]


# A sweep's winner closer than this to the runner-up was chosen by noise as much as by the rate (one seed).
SWEEP_NEAR_TIE = 0.05


def _sweep_table(summary: StudySummary) -> list[str]:
    """Validation loss of every variant at every swept learning rate (sweep budget, first seed), and which
    choices were near-ties."""
    if not summary.sweep:
        return []
    rates = sorted({lr for by_lr in summary.sweep.values() for lr in by_lr}, key=float)
    rows, near_ties = [], []
    for name, by_lr in summary.sweep.items():
        scored = sorted((loss, lr) for lr, loss in by_lr.items() if loss is not None)
        best = scored[0][1] if scored else None
        cells = [
            "-"
            if lr not in by_lr or by_lr[lr] is None
            else f"{by_lr[lr]:.3f}" + (" (best)" if lr == best else "")
            for lr in rates
        ]
        rows.append([f"`{name}`", *cells])
        if len(scored) > 1 and scored[1][0] - scored[0][0] < SWEEP_NEAR_TIE:
            near_ties.append(
                f"`{name}` ({scored[0][1]} by {scored[1][0] - scored[0][0]:.3f} over {scored[1][1]})"
            )
    header = ["variant", *[f"lr {lr}" for lr in rates]]
    text = "Validation MLM loss at the sweep budget, first seed; every variant then trains at its best."
    lines = ["", "## Learning-rate sweep", "", text, "", *markdown.table(header, rows)]
    if near_ties:
        lines += [
            "",
            f"Near-ties (best rate less than {SWEEP_NEAR_TIE} nats ahead of the next, with one seed): "
            + "; ".join(near_ties)
            + ". At these budgets such a choice is noise as much as signal, and the best rate at the largest "
            "budget can differ.",
        ]
    return lines


def _trend(gaps: list[float]) -> str:
    """Whether a gap to the baseline (at equal FLOPs) moves toward zero as compute grows."""
    if len(gaps) < 2:
        return "one point: no trend"
    if gaps[0] * gaps[-1] < 0:  # "grows" or "shrinks" in size would hide that the variant overtook BERT
        return "changes sign: " + ("from behind BERT to ahead" if gaps[0] > 0 else "from ahead to behind")
    sizes = [abs(g) for g in gaps]
    steps = list(zip(sizes, sizes[1:], strict=False))  # neighbours: one pair fewer than points
    steady = all(b <= a for a, b in steps) or all(b >= a for a, b in steps)
    direction = "shrinks" if sizes[-1] < sizes[0] else "grows"
    return direction if steady else f"{direction} overall, not monotonically"


def _fit_cell(row) -> str:
    fit = row.fit
    if fit is None:
        return "-"
    cell = f"a={fit.a:.2f}, b={fit.b:.2f}, c={fit.c:.2f} (rmse {fit.rmse:.3f})"
    return cell + "; bends down: no power law yet" if row.bends_down else cell


def _scaling_section(summary: StudySummary, config: StudyConfig) -> list[str]:
    """Loss against FLOPs per variant and budget, the fitted curves, and the trend of each gap to BERT."""
    if not summary.scaling:
        return []
    budgets = sorted({p.budget_tokens for row in summary.scaling.values() for p in row.points})
    header = [
        "variant",
        *[f"{b / 1e6:g}M tokens: loss (FLOPs)" for b in budgets],
        "fit L(C) = a (C/C0)^-b + c",
    ]
    rows, trends = [], []
    base = summary.baseline_curve
    for name, row in summary.scaling.items():
        by_budget = {p.budget_tokens: p for p in row.points}
        cells = [
            f"{mean_std(by_budget[b].val_loss)} ({by_budget[b].train_flops:.1e})" if b in by_budget else "-"
            for b in budgets
        ]
        rows.append([f"`{name}`", *cells, _fit_cell(row)])
        if name != config.baseline and name not in summary.baseline_curve_from:  # not BERT's own points
            trends += _trend_sentence(name, row, base)
    lines = [
        "",
        "## Scaling: validation loss against training compute",
        "",
        *markdown.table(header, rows),
        "",
    ]
    if base is not None:
        sources = ", ".join(f"`{name}`" for name in summary.baseline_curve_from)
        lines += [
            "BERT at equal FLOPs is read off BERT's measured curve: every run with its architecture "
            f"({sources}), {len(base.points)} points from {base.points[0].train_flops:.1e} to "
            f"{base.points[-1].train_flops:.1e} FLOPs, joined by straight lines in log FLOPs; beyond them, "
            "off its fit, and only where the fit describes the points.",
            "",
        ]
    if any(row.bends_down for row in summary.scaling.values()):
        lines += [
            "**Bends down**: the loss falls faster per e-fold of compute at the larger budgets than at the "
            "smaller ones. A power law plus a constant always does the opposite, so these budgets are still "
            "leaving the unigram plateau: the fitted exponents and asymptotes estimate nothing, and the "
            "trend below rests on the measured points alone.",
            "",
        ]
    note = (
        "A gap marked * is read off BERT's fitted curve beyond its largest measured point (extrapolated); "
        "n/a: beyond BERT's measured compute where its fit cannot be trusted. Smaller budgets have the seeds "
        "of `small_budget_seeds`; the trend's confidence compares the gap's change with the seed spread at "
        "the largest budget."
    )
    return [*lines, *trends, "", note, *_downstream_by_budget(summary, budgets)]


def _downstream_by_budget(summary: StudySummary, budgets: list[int]) -> list[str]:
    """Test accuracy (the main metric) of every variant at every budget: whether a better MLM loss shows
    downstream under the study's one fine-tuning protocol."""
    rows = []
    for name, row in summary.scaling.items():
        by_budget = {p.budget_tokens: p.test for p in row.points}
        if not any(by_budget.values()):
            continue
        rows.append([f"`{name}`", *[mean_std(by_budget.get(b)) for b in budgets]])
    if not rows:
        return []
    header = ["variant", *[f"{b / 1e6:g}M tokens" for b in budgets]]
    return [
        "",
        f"Downstream test {summary.metric} at each budget (the same fine-tuning protocol at every budget):",
        "",
        *markdown.table(header, rows),
    ]


def _trend_sentence(name: str, row, base) -> list[str]:
    """The gap of one variant to BERT at equal FLOPs, budget by budget, its trend and how sure it is."""
    if base is None or not any(g is not None for g in row.gap_to_baseline):
        return []
    base_max = max(p.train_flops for p in base.points)
    listed = ", ".join(
        "n/a" if g is None else f"{g:+.3f}" + ("*" if p.train_flops > 1.01 * base_max else "")
        for p, g in zip(row.points, row.gap_to_baseline, strict=False)
    )
    pairs = [(p, g) for p, g in zip(row.points, row.gap_to_baseline, strict=False) if g is not None]
    gaps = [g for _, g in pairs]
    # The change in the gap's size, or in the gap itself when it changes sign.
    change = gaps[-1] - gaps[0] if gaps[0] * gaps[-1] < 0 else abs(gaps[-1]) - abs(gaps[0])
    last = pairs[-1][0].val_loss
    base_last = min(
        base.points, key=lambda p: abs(math.log(p.train_flops / pairs[-1][0].train_flops))
    ).val_loss
    several = [s for s in (last, base_last) if s is not None and s.n > 1]
    spread = sum(s.std for s in several)
    if len(gaps) < 2:
        confidence = ""
    elif not several:
        confidence = "; one seed at the largest budget, so no spread to measure the change against"
    elif spread and abs(change) <= spread:
        confidence = (
            f"; the change ({change:+.3f}) is within the seed spread at the largest budget ({spread:.3f}): "
            "low confidence"
        )
    else:
        confidence = (
            f"; the change ({change:+.3f}) exceeds the seed spread at the largest budget ({spread:.3f}); "
            f"{len(gaps)} budgets, the smaller ones with fewer seeds"
        )
    return [
        f"- `{name}` minus BERT at equal FLOPs, budget by budget: {listed}: the gap "
        f"**{_trend(gaps)}** with compute{confidence}."
    ]


def _steps_table(rows: dict[str, dict[str, Stats]]) -> list[str]:
    """A variant x step-count table of figures over seeds."""
    steps = sorted({s for by_steps in rows.values() for s in by_steps}, key=int)
    header = ["variant", *[f"{s} step(s)" for s in steps]]
    cells = [
        [f"`{name}`", *[mean_std(by_steps[s]) if s in by_steps else "-" for s in steps]]
        for name, by_steps in rows.items()
    ]
    return markdown.table(header, cells)


def _elasticity_tables(summary: StudySummary) -> list[str]:
    if not any(row.mlm_by_ode_steps for row in summary.pretrain.values()):
        return []
    return [
        "",
        "## Depth elasticity: validation MLM loss with other step counts",
        "",
        *_steps_table({name: row.mlm_by_ode_steps for name, row in summary.pretrain.items()}),
        "",
        f"Downstream test {summary.metric} with other step counts (the fine-tuned model, re-scored):",
        "",
        *_steps_table({name: row.test_by_ode_steps for name, row in summary.pretrain.items()}),
    ]


def _warm_table(summary: StudySummary) -> list[str]:
    if not summary.warm:
        return []
    metric = summary.metric
    continued = next(iter(summary.warm.values())).continued_tokens
    header = [
        "variant",
        "conversion",
        "params",
        "MLM loss after continued pretraining",
        f"validation {metric}",
        f"test {metric}",
        "vs the BERT",
    ]
    rows = [
        [
            f"`{name}`",
            _describe(row.model_overrides),
            f"{row.parameters / 1e6:.2f}M",
            mean_std(row.val_loss),
            mean_std(row.validation),
            mean_std(row.test),
            "baseline" if i == 0 else str(row.verdict_test),
        ]
        for i, (name, row) in enumerate(summary.warm.items())
    ]
    how = (
        f"converted, then {continued:,} tokens of MLM pretraining on the study's corpus"
        if continued
        else "converted, no pretraining here"
    )
    return ["", f"## Warm start from a pretrained BERT ({how})", "", *markdown.table(header, rows)]


def _reproduce(command: str) -> list[str]:
    return [
        "",
        "## Reproduce",
        "",
        "```bash",
        command,
        "```",
        "",
        "Inputs: `study.yaml` (the study) and `pretrain_config.yaml` (the shared recipe) in this folder; "
        "every record, curve and figure above is in `results.json`. FLOPs are counted with "
        "`torch.utils.flop_counter` on one training step (forward + backward, masked-position MLM head) of "
        "the final model, times the tokens seen.",
        "",
        "At GPU scale, the same protocol with BERT-base models (`configs/compare-gpu.yaml`: hidden 768, 12 "
        "layers, budgets of 125M to 2B tokens, the learning rates swept again), data-parallel:",
        "",
        "```bash",
        "accelerate launch --multi_gpu $(which bert-ode) compare --preset gpu",
        "```",
        "",
    ]


def report_markdown(
    summary: StudySummary,
    config: StudyConfig,
    plots: list[str],
    command: str,
    machine: dict,
    wall_seconds: float,
    failures: list[dict],
    reading: str | None = None,
) -> str:
    """The whole ``report.md``; ``reading``: the authors' reading of the figures (``reading.md`` beside the
    report), placed after the summary."""
    lines = [
        *_header(config, command, machine, wall_seconds, summary),
        "",
        *_summary_section(summary, config, failures),
        "",
        *([] if not reading else ["## Reading the figures (written by hand)", "", reading.strip(), ""]),
        *_pretrain_table(summary, config),
        *_plateau_table(summary),
        *_baselines_table(summary),
        *_scaling_section(summary, config),
        *_sweep_table(summary),
        *_elasticity_tables(summary),
        *_warm_table(summary),
        "",
        "## Plots",
        "",
        *[f"![{p}]({p})" for p in plots],
        *_reproduce(command),
    ]
    return "\n".join(lines)
