"""The study's statistics, computed from the per-unit records alone: statistics over seeds, paired differences
to the baseline and their intervals, the scaling summary and the verdicts (``StudySummary``). ``report.py``
writes them out.

The decision rules (win / loss / not shown to differ, and no verdict for models that have not learned
language) are in ``verdicts.py``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from ..utils.metrics import confidence_interval, summarize
from .config import StudyConfig
from .records import (
    EqualComputeVerdict,
    PretrainSummary,
    PretrainUnit,
    ScalingPoint,
    Stats,
    StudySummary,
    SweepUnit,
    UnitRecord,
    VariantScaling,
    WarmSummary,
    WarmUnit,
)
from .scaling import bends_down, fit_power_law, interpolate_log_linear
from .verdicts import INCONCLUSIVE, TRAINED_MARGIN, trained_beyond_unigram, verdict


def seed_stats(values: Sequence[float | None]) -> Stats:
    """``SeedStats`` of the values that exist; ``None`` when no finished seed has the figure."""
    present = [float(v) for v in values if v is not None]
    return summarize(present) if present else None


# ------------------------------------------------------------------------------------------------------------
# Statistics over seeds
# ------------------------------------------------------------------------------------------------------------


def _group(records: list[UnitRecord], record_type: type) -> dict[str, list]:
    groups: dict[str, list] = {}
    for record in records:
        if isinstance(record, record_type):
            groups.setdefault(record.variant, []).append(record)
    return groups


def _stats_by_steps(tables: list[dict[str, float | None]]) -> dict[str, Stats]:
    """``{steps: stats}`` over per-seed ``{steps: value}`` tables, step counts in numeric order."""
    steps = sorted({s for table in tables for s in table}, key=int)
    return {s: seed_stats([table[s] for table in tables if s in table]) for s in steps}


def _test_by_steps(runs: list, metric: str) -> dict[str, Stats]:
    return _stats_by_steps(
        [{s: scores[metric] for s, scores in r.finetune.by_ode_steps.items()} for r in runs]
    )


def tokens_to_trained(run: PretrainUnit) -> int | None:
    """Tokens seen at the first validation evaluation ``TRAINED_MARGIN`` nats below the unigram entropy;
    ``None`` if the run never got there (or its unigram entropy is unknown)."""
    if run.unigram_entropy is None:
        return None
    bar = run.unigram_entropy - TRAINED_MARGIN
    return next((point.tokens for point in run.curve if point.val_loss <= bar), None)


def pretrain_summary(runs: list[PretrainUnit], metric: str) -> PretrainSummary:
    first = runs[0]
    return PretrainSummary(
        model_overrides=first.model_overrides,
        compute_match=first.compute_match,
        parameters=first.parameters,
        seeds=[r.seed for r in runs],
        tokens=first.tokens,
        val_loss=seed_stats([r.val_loss for r in runs]),
        val_ppl=seed_stats([r.val_ppl for r in runs]),
        test=seed_stats([r.finetune.test[metric] for r in runs]),
        validation=seed_stats([r.finetune.validation[metric] for r in runs]),
        train_seconds=seed_stats([r.train_seconds for r in runs]),
        tokens_per_second=seed_stats([r.tokens_per_second for r in runs]),
        train_flops=seed_stats([r.train_flops for r in runs]),
        nfe_per_forward=seed_stats([r.nfe_per_forward for r in runs]),
        below_unigram=seed_stats(
            [
                r.unigram_entropy - r.val_loss
                for r in runs
                if r.unigram_entropy is not None and r.val_loss is not None
            ]
        ),
        tokens_to_trained=[tokens_to_trained(r) for r in runs],
        mlm_by_ode_steps=_stats_by_steps(
            [{s: e.val_loss for s, e in r.mlm_by_ode_steps.items()} for r in runs]
        ),
        test_by_ode_steps=_test_by_steps(runs, metric),
    )


def warm_summary(runs: list[WarmUnit], metric: str) -> WarmSummary:
    first = runs[0]
    return WarmSummary(
        model_overrides=first.model_overrides,
        parameters=first.parameters,
        seeds=[r.seed for r in runs],
        test=seed_stats([r.finetune.test[metric] for r in runs]),
        validation=seed_stats([r.finetune.validation[metric] for r in runs]),
        test_by_ode_steps=_test_by_steps(runs, metric),
        continued_tokens=first.continued_tokens,
        val_loss=seed_stats([r.val_loss for r in runs]) if first.val_loss is not None else None,
        unigram_entropy=first.unigram_entropy,
    )


def _paired_deltas(row: PretrainSummary, runs: list[PretrainUnit], baseline: list[PretrainUnit], metric: str):
    # Paired by seed: the same seed gives every variant the same data order and masks.
    base_by_seed = {r.seed: r for r in baseline}
    pairs = [(r, base_by_seed[r.seed]) for r in runs if r.seed in base_by_seed]
    loss_deltas = [
        r.val_loss - b.val_loss for r, b in pairs if r.val_loss is not None and b.val_loss is not None
    ]
    test_deltas = [r.finetune.test[metric] - b.finetune.test[metric] for r, b in pairs]
    row.paired_delta_val_loss, row.paired_delta_test = seed_stats(loss_deltas), seed_stats(test_deltas)
    row.paired_delta_val_loss_ci95 = list(confidence_interval(loss_deltas)) if loss_deltas else None
    row.paired_delta_test_ci95 = list(confidence_interval(test_deltas)) if test_deltas else None


def _against_baseline(rows: dict[str, PretrainSummary], baseline: str, unigram: float | None) -> None:
    base = rows.get(baseline)
    trained = trained_beyond_unigram(base, unigram)

    def judge(candidate: Stats, reference: Stats, lower_is_better: bool) -> str:
        return verdict(candidate, reference, lower_is_better) if trained else INCONCLUSIVE

    for name, row in rows.items():
        if base is None or name == baseline:
            continue
        row.verdict_val_loss = judge(row.val_loss, base.val_loss, lower_is_better=True)
        row.verdict_test = judge(row.test, base.test, lower_is_better=False)
        if row.compute_match in rows:
            other = rows[row.compute_match]
            # Equal compute: the ODE variant against this deeper BERT.
            other.verdicts_vs[name] = EqualComputeVerdict(
                val_loss=judge(other.val_loss, row.val_loss, lower_is_better=True),
                test=judge(other.test, row.test, lower_is_better=False),
            )


def _main_metric(records: list[UnitRecord]) -> str | None:
    for record_type in (PretrainUnit, WarmUnit):
        for record in records:
            if isinstance(record, record_type):
                return record.finetune.main_metric
    return None


def _scaling_point(runs: list[PretrainUnit]) -> ScalingPoint:
    metric = runs[0].finetune.main_metric
    return ScalingPoint(
        budget_tokens=runs[0].budget_tokens,
        train_flops=statistics.fmean(r.train_flops for r in runs),
        val_loss=seed_stats([r.val_loss for r in runs]),
        test=seed_stats([r.finetune.test.get(metric) for r in runs]),
    )


def _variant_scaling(points: list[ScalingPoint]) -> VariantScaling:
    compute, loss = [p.train_flops for p in points], [p.val_loss.mean for p in points]
    fit = fit_power_law(compute, loss) if len(points) >= 3 else None
    return VariantScaling(points=points, fit=fit, bends_down=bends_down(compute, loss))


def baseline_curve(runs: list[PretrainUnit], baseline: str) -> tuple[VariantScaling | None, list[str]]:
    """The baseline's loss against FLOPs from every run with the baseline's architecture (the same model
    overrides), grouped by the tokens they saw: a variant that trains BERT on 2x the tokens adds BERT's points
    at twice each budget. Returns the curve and the variants it holds."""
    base = next((r for r in runs if r.variant == baseline), None)
    if base is None:
        return None, []
    same = sorted((r for r in runs if r.model_overrides == base.model_overrides), key=lambda r: r.tokens)
    groups: list[list[PretrainUnit]] = []
    for run in same:  # one point per token count; the same count differs by a block's rounding at most
        if groups and run.tokens <= groups[-1][0].tokens * 1.01:
            groups[-1].append(run)
        else:
            groups.append([run])
    points = [
        ScalingPoint(
            budget_tokens=group[0].tokens,
            train_flops=statistics.fmean(r.train_flops for r in group),
            val_loss=seed_stats([r.val_loss for r in group]),
        )
        for group in groups
    ]
    return _variant_scaling(points), sorted({r.variant for r in same})


def _gap(loss: float, flops: float, reference: VariantScaling) -> float | None:
    """``loss`` minus the reference's loss at ``flops``: between its points by interpolation, beyond them by
    its fit where the fit describes the points (no plateau-leaving bend), otherwise unknown."""
    at = interpolate_log_linear(
        [p.train_flops for p in reference.points], [p.val_loss.mean for p in reference.points], flops
    )
    if at is None and reference.fit is not None and not reference.bends_down:
        at = float(reference.fit(flops))
    return None if at is None else loss - at


def scaling_summary(
    records: list[UnitRecord], baseline: str
) -> tuple[dict[str, VariantScaling], VariantScaling | None, list[str]]:
    """Every variant's (FLOPs, loss) points over the budgets, a power-law fit where there are >= 3, and its
    gap to the baseline at equal FLOPs; with the baseline's measured curve and the variants it holds."""
    runs = [
        r
        for r in records
        if isinstance(r, PretrainUnit) and r.budget_tokens is not None and r.val_loss is not None
    ]
    by_variant: dict[str, dict[int, list[PretrainUnit]]] = {}
    for r in runs:
        by_variant.setdefault(r.variant, {}).setdefault(r.budget_tokens, []).append(r)
    scaling = {
        name: _variant_scaling([_scaling_point(by_budget[b]) for b in sorted(by_budget)])
        for name, by_budget in by_variant.items()
    }
    reference, sources = baseline_curve(runs, baseline)
    for row in scaling.values():
        row.gap_to_baseline = [
            None if reference is None else _gap(p.val_loss.mean, p.train_flops, reference) for p in row.points
        ]
    return scaling, reference, sources


def summarize_study(
    records: list[UnitRecord], config: StudyConfig, sweeps: list[SweepUnit] | None = None
) -> StudySummary:
    """Per-variant statistics over seeds at the largest budget, every variant's verdict against the baseline,
    the scaling curves over the budgets and the learning-rate sweep."""
    census = compute_census(records)
    scaling, reference, sources = (
        scaling_summary(records, config.baseline) if len(config.budgets) > 1 else ({}, None, [])
    )
    main_budget = max(config.budgets) if config.budgets else None
    records = [r for r in records if not isinstance(r, PretrainUnit) or r.budget_tokens == main_budget]
    metric = _main_metric(records)
    pretrained, warm = _group(records, PretrainUnit), _group(records, WarmUnit)
    entropies = [
        r.unigram_entropy for runs in pretrained.values() for r in runs if r.unigram_entropy is not None
    ]
    summary = StudySummary(
        pretrain={name: pretrain_summary(runs, metric) for name, runs in pretrained.items()},
        # in the study's order: the first conversion (the BERT itself) is the one the others are judged
        # against, whatever order the records were read in
        warm={name: warm_summary(warm[name], metric) for name in _warm_order(config, warm)},
        metric=metric,
        unigram_entropy=max(entropies) if entropies else None,  # every run scores the same validation blocks
    )
    for name, runs in pretrained.items():
        if name != config.baseline:
            _paired_deltas(summary.pretrain[name], runs, pretrained.get(config.baseline, []), metric)
    _against_baseline(summary.pretrain, config.baseline, summary.unigram_entropy)
    summary.scaling, summary.baseline_curve, summary.baseline_curve_from = scaling, reference, sources
    summary.compute = census
    for unit in sweeps or []:
        summary.sweep.setdefault(unit.variant, {})[f"{unit.lr:g}"] = unit.val_loss
    _warm_verdicts(list(summary.warm.values()))
    return summary


def _warm_order(config: StudyConfig, warm: dict[str, list[WarmUnit]]) -> list[str]:
    configured = [v.name for v in config.warm_start.variants] if config.warm_start is not None else []
    return [name for name in configured if name in warm] + [name for name in warm if name not in configured]


def _warm_verdicts(rows: list[WarmSummary]) -> None:
    """Each conversion against the first (the BERT itself). The MLM loss is judged only after continued
    pretraining, and only while the BERT is trained beyond word frequencies on the blocks it is scored on."""
    if not rows:
        return
    reference = rows[0]
    for row in rows[1:]:
        row.verdict_test = verdict(row.test, reference.test, lower_is_better=False)
        if row.val_loss is not None and reference.val_loss is not None:
            trained = reference.unigram_entropy is None or (
                reference.val_loss.mean <= reference.unigram_entropy - TRAINED_MARGIN
            )
            row.verdict_val_loss = (
                verdict(row.val_loss, reference.val_loss, lower_is_better=True) if trained else INCONCLUSIVE
            )


def compute_census(records: list[UnitRecord]) -> dict[str, int]:
    """How the units computed: ``"pretraining: fp32 on cpu (AVX2, 2 thread(s)), AMD EPYC"`` -> how many
    runs; the report lists it, so that a study run in parts on different machines says so."""
    counts: dict[str, int] = {}
    for record in records:
        stages = [("fine-tuning", record.finetune.compute)]
        if isinstance(record, PretrainUnit) or record.continued_tokens is not None:
            stages.insert(0, ("pretraining", record.compute))
        for stage, info in stages:
            where = f"{info.describe()}, {info.cpu}" if info is not None else "not recorded (an older record)"
            counts[f"{stage}: {where}"] = counts.get(f"{stage}: {where}", 0) + 1
    return counts


__all__ = [
    "compute_census",
    "pretrain_summary",
    "seed_stats",
    "summarize_study",
    "tokens_to_trained",
    "warm_summary",
]
