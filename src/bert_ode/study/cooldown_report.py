"""The report of a ``cooldowns`` study, from its records alone (``results.json``, ``report.md``, plots):
when each constant-rate run left the plateau (per seed, Kaplan-Meier medians, log-rank tests), what each
variant's compute is worth (the compute multiplier), the gaps to BERT at equal tokens and at equal FLOPs, and
the validation loss of every cooldown endpoint, per seed. The statistics are in ``escape.py``.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from ..utils import markdown
from ..utils.config_io import to_dict
from .config import StudyConfig
from .cooldown_inference import (
    delay_section,
    escape_note,
    escape_table,
    gap_table,
    margins_line,
    matched_section,
    multiplier_note,
    multiplier_table,
    summary_section,
    with_equivalence,
)
from .cooldown_plots import (
    plot_constant_curves,
    plot_constant_panels,
    plot_cooldown_endpoints,
    plot_downstream,
    plot_kaplan_meier,
    plot_multipliers,
    plot_probes,
    variant_colours,
)
from .cooldown_sections import (
    corpus_section,
    downstream_budgets_section,
    learned_section,
    probes_section,
    refinement_section,
    sensitivity_section,
    warm_start_section,
)
from .delay import delay_summary
from .escape import (
    ESCAPE_MARGINS,
    constant_multipliers,
    cooldown_multipliers,
    escape_summaries,
    escape_tokens,
    gaps,
)
from .records import BranchUnit, ConstantRun, ControlUnit, WarmUnit


def _branch_rows(branches: list[BranchUnit]) -> list[list[str]]:
    grouped: dict[tuple[str, int], list[BranchUnit]] = {}
    for branch in branches:
        grouped.setdefault((branch.variant, branch.budget_tokens), []).append(branch)
    rows = []
    for (variant, budget), group in sorted(grouped.items()):
        ordered = sorted(group, key=lambda b: b.seed)
        losses = [b.val_loss for b in ordered]
        spread = f"{statistics.mean(losses):.3f} ± {statistics.stdev(losses):.3f}" if len(losses) > 1 else ""
        tests = [b.finetune.test[b.finetune.main_metric] for b in ordered if b.finetune is not None]
        rows.append(
            [
                f"`{variant}`",
                f"{budget / 1e6:g}M",
                ", ".join(f"{b.seed}: {b.val_loss:.3f}" for b in ordered),
                spread,
                f"{ordered[0].train_flops:.3g}",
                ", ".join(f"{t:.3f}" for t in tests) or "-",
            ]
        )
    return rows


def _noise_floor(branches: list[BranchUnit], baseline: str) -> list[str]:
    lines = []
    for budget in sorted({b.budget_tokens for b in branches if b.variant == baseline}):
        losses = [b.val_loss for b in branches if b.variant == baseline and b.budget_tokens == budget]
        if len(losses) > 1:
            lines.append(f"{budget / 1e6:g}M: {statistics.stdev(losses):.3f} over {len(losses)} seeds")
    return lines


def _parameters(runs: list[ConstantRun]) -> str:
    """``bert 0.96M (958,848)`` per arm, from its constant-rate runs' records."""
    counts = {r.variant: r.parameters for r in sorted(runs, key=lambda r: r.variant)}
    return "; ".join(f"`{name}` {n / 1e6:.2f}M ({n:,})" for name, n in counts.items()) or "no run yet"


def _census(records: list) -> dict[str, int]:
    """How the units computed -> how many: a study run in parts on different machines says so."""
    counts: dict[str, int] = {}
    for record in records:
        infos = [("pretraining", getattr(record, "compute", None))]
        finetune = getattr(record, "finetune", None)
        if finetune is not None:
            infos.append(("fine-tuning", finetune.compute))
        for stage, info in infos:
            if isinstance(record, ControlUnit | WarmUnit) and stage == "pretraining":
                continue
            where = f"{stage}: " + (f"{info.describe()}, {info.cpu}" if info else "not recorded")
            counts[where] = counts.get(where, 0) + 1
    return counts


def _downstream_groups(records: list) -> dict[str, list]:
    """Fine-tuned records by what they are: the cooldown endpoints, the random-initialisation control, the
    warm starts."""
    groups: dict[str, list] = {}
    for record in records:
        if isinstance(record, BranchUnit) and record.finetune is not None:
            label = f"`{record.variant}` at {record.budget_tokens / 1e6:g}M tokens"
        elif isinstance(record, ControlUnit | WarmUnit):
            kind = "random initialisation, no pretraining"
            label = f"`{record.variant}` ({kind if isinstance(record, ControlUnit) else 'warm start'})"
        else:
            continue
        groups.setdefault(label, []).append(record)
    return {label: sorted(group, key=lambda r: r.seed) for label, group in groups.items()}


def _test_score(baseline: dict) -> tuple[str, float]:
    test = baseline.get("test", {})
    metric = "accuracy" if "accuracy" in test else next(iter(test), "")
    return metric, test.get(metric, float("nan"))


def _downstream_table(records: list, baselines: dict) -> list[str]:
    """Test scores per seed: the fine-tuned cooldown endpoints, the random-initialisation control, the warm
    starts, and the baselines that need no pretraining (TF-IDF on the whole text and on what encoders see)."""
    table = []
    for name, group in _downstream_groups(records).items():
        metric = group[0].finetune.main_metric
        scores = [r.finetune.test[metric] for r in group]
        spread = f"{statistics.mean(scores):.3f} ± {statistics.stdev(scores):.3f}" if len(scores) > 1 else ""
        per_seed = ", ".join(f"{r.seed}: {r.finetune.test[metric]:.3f}" for r in group)
        table.append([name, metric, per_seed, spread])
    for name, splits in baselines.items():
        metric, value = _test_score(splits)
        table.append([f"{name} (no pretraining)", metric, "-", f"{value:.3f}"])
    return markdown.table(["model", "metric", "per seed", "mean ± std"], table)


def _reading(report_dir: Path) -> list[str]:
    # A hand-written reading kept beside the report survives regenerating it (re-running the study).
    path = report_dir / "reading.md"
    if not path.is_file():
        return []
    return ["## Reading the figures (written by hand)", "", path.read_text(encoding="utf-8").strip(), ""]


def _downstream_plot(records: list, baselines: dict, colours: dict, report_dir: Path) -> str | None:
    groups = {
        label.replace("`", ""): (group[0].variant, [r.finetune.test[r.finetune.main_metric] for r in group])
        for label, group in _downstream_groups(records).items()
    }
    references = {name: _test_score(splits)[1] for name, splits in baselines.items()}
    return plot_downstream(groups, references, colours, report_dir)


def _statistics(runs: list[ConstantRun], branches: list[BranchUnit], config: StudyConfig) -> dict:
    """Every statistic the report reads: escapes (exact tests), the primary arms' delays, multipliers
    (pooled and same-seed, with their equivalence tests) and gaps, and the compute-matched pairs."""
    baseline, names = config.baseline, [v.name for v in config.variants]
    escapes = {margin: escape_summaries(runs, baseline, margin) for margin in ESCAPE_MARGINS}
    bert_escape = escapes[ESCAPE_MARGINS[0]].get(baseline)
    after = max((t for t in (bert_escape.tokens if bert_escape else []) if t is not None), default=None)
    # The primary arms; the sensitivity and ablation arms (own rate, or no cooldowns) have their section.
    arms = {v.name for v in config.variants if not v.train and not (v.cooldowns == [] and config.cooldowns)}
    others = [n for n in names if n != baseline and n in arms]
    # BERT's endpoints on its plateau are not read against: no interpolation across its drop.
    escaped_at = {
        run.seed: escape_tokens(run.curve, run.unigram_entropy, ESCAPE_MARGINS[0]) or run.tokens
        for run in runs
        if run.variant == baseline and run.unigram_entropy is not None
    }
    multipliers = {
        name: [
            *cooldown_multipliers(branches, name, baseline, escaped_at, pooled=True),
            *cooldown_multipliers(branches, name, baseline, escaped_at),
            *(constant_multipliers(runs, name, baseline, after, pooled=True) if after is not None else []),
            *(constant_multipliers(runs, name, baseline, after) if after is not None else []),
        ]
        for name in others
    }
    all_gaps = [gap for name in others for gap in gaps(branches, name, baseline, escaped_at)]
    with_equivalence(multipliers, all_gaps, config.equivalence)
    delays = {name: d for name in others if (d := delay_summary(runs, name, baseline)) is not None}
    pairs = [(v.name, v.compute_match) for v in config.variants if v.compute_match]
    return dict(escapes=escapes, multipliers=multipliers, gaps=all_gaps, delays=delays, pairs=pairs)


def write_cooldown_report(
    records: list,
    config: StudyConfig,
    report_dir: Path,
    command: str,
    machine: dict,
    wall_seconds: float,
    failures: list[dict],
    downstream_baselines: dict | None = None,
    corpus: dict | None = None,
) -> Path:
    """``results.json`` (every record and the statistics) and ``report.md`` with its plots."""
    runs = [r for r in records if isinstance(r, ConstantRun)]
    branches = [r for r in records if isinstance(r, BranchUnit)]
    warm = [r for r in records if isinstance(r, WarmUnit)]
    baseline, names = config.baseline, [v.name for v in config.variants]
    colours = variant_colours(
        names + [v.name for v in (config.warm_start.variants if config.warm_start else [])]
    )
    found = _statistics(runs, branches, config)
    escapes, multipliers, all_gaps, delays = (found[k] for k in ("escapes", "multipliers", "gaps", "delays"))
    results = {
        "records": [r.to_dict() for r in records],
        "escape": {f"{m:g}": {n: s.to_dict() for n, s in by.items()} for m, by in escapes.items()},
        "compute_multiplier": {n: [p.to_dict() for p in series] for n, series in multipliers.items()},
        "gaps": [gap.to_dict() for gap in all_gaps],
        "delay": {n: d.to_dict() for n, d in delays.items()},
        "equivalence": to_dict(config.equivalence),
        "corpus": corpus,
        "downstream_baselines": downstream_baselines,
    }
    (report_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    plots = [
        plot_constant_curves(runs, colours, report_dir, flops=False),
        plot_constant_curves(runs, colours, report_dir, flops=True),
        plot_constant_panels(runs, colours, baseline, report_dir),
        *[plot_kaplan_meier(escapes[m], colours, report_dir) for m in ESCAPE_MARGINS],
        plot_multipliers(multipliers, colours, report_dir),
        plot_cooldown_endpoints(branches, colours, report_dir),
        plot_probes(runs, colours, report_dir),
        _downstream_plot(records, downstream_baselines or {}, colours, report_dir),
    ]
    unigram = next((r.unigram_entropy for r in runs if r.unigram_entropy), None)
    lines = [
        f"# bert-ode study `{config.name}`: constant-rate runs with warmup-stable-decay cooldowns",
        "",
        f"Generated by `{command}` ({wall_seconds / 60:.1f} min of this invocation). Machine: "
        f"{machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}. Records so far: {len(runs)} "
        f"constant-rate runs, {len(branches)} cooldowns, {len(warm)} warm-start units"
        + "".join(
            f"\n- **Failed** (re-running the study retries it): `{f['variant']}` seed {f['seed']}: "
            f"{f['error']}"
            for f in failures
        )
        + ("\n" if failures else "")
        + ".",
        "",
        "How the units computed (precision, device, CPU capability, threads, processor): "
        + ("; ".join(f"{where} ({count})" for where, count in _census(records).items()) or "no unit yet")
        + ".",
        "",
        "Parameters: " + _parameters(runs) + ".",
        "",
        f"The unigram entropy of the validation blocks (the loss of word frequencies alone): "
        f"{markdown.fmt(unigram)} nats. BERT's seed spread at each cooldown budget (the noise floor): "
        + ("; ".join(_noise_floor(branches, baseline)) or "not yet (fewer than two seeds)")
        + ".",
        "",
        *summary_section(
            escapes[ESCAPE_MARGINS[0]], multipliers, all_gaps, delays, baseline, config.equivalence
        ),
        *_reading(report_dir),
        "## Leaving the plateau: escape times (constant-rate runs)",
        "",
        escape_note(baseline),
        "",
    ]
    for margin in ESCAPE_MARGINS:
        heading = f"### {margin:g} nat{'' if margin == 1 else 's'} below unigram"
        lines += [heading, "", *escape_table(escapes[margin]), ""]
    lines += [
        *matched_section(escapes, found["pairs"]),
        *delay_section(delays, multipliers),
        "## Compute multiplier",
        "",
        multiplier_note(),
        "",
        margins_line(config.equivalence),
        "",
        *multiplier_table(multipliers, delays),
        "",
        "## Gaps to BERT at the cooldown endpoints",
        "",
        "Differences of validation loss (positive: behind BERT). At equal tokens: paired by seed (95% t; "
        "primary: one budget, one data order and one set of masks per pair), and unpaired, the difference "
        "of the two arms' means over all their seeds at that budget (95% Welch t); TOST against the loss "
        "margin on the paired differences. At equal FLOPs, paired: BERT's loss read between its endpoints "
        "past its escape only (`-` where the variant's FLOPs fall before them).",
        "",
        *gap_table(all_gaps),
        "",
        *sensitivity_section(runs, config, ESCAPE_MARGINS[0]),
        *corpus_section(branches, corpus),
        *learned_section(branches),
        *probes_section(runs, ESCAPE_MARGINS[0]),
        *refinement_section(branches, max(config.cooldowns, default=0)),
        "## Downstream: fine-tuned on the study's task, test scores per seed",
        "",
        *_downstream_table(records, downstream_baselines or {}),
        "",
        *downstream_budgets_section(branches),
        *warm_start_section(warm),
        "## Cooldown endpoints: validation loss per seed",
        "",
        *markdown.table(
            ["variant", "budget", "per seed", "mean ± std", "train FLOPs", "test accuracy per seed"],
            _branch_rows(branches),
        ),
        "",
        "## Plots",
        "",
        *[f"![{p}]({p})" for p in plots if p],
        "",
    ]
    path = report_dir / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


__all__ = ["write_cooldown_report"]
