"""The study's figures (PNG, next to ``report.md``): one function per plot, returning its file name (or
``None`` without data to draw).

Matplotlib's object API (``Figure``), not ``pyplot``: no global backend or figure state to set or close.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .records import CurvePoint, PretrainUnit, StudySummary, UnitRecord, WarmUnit
from .verdicts import TRAINED_MARGIN

Curves = dict[str, list[list[CurvePoint]]]  # variant -> one validation curve per seed


def _save(fig: Figure, report_dir: Path, filename: str) -> str:
    fig.tight_layout()
    fig.savefig(report_dir / filename, dpi=120)
    return filename


def _curves(records: list[UnitRecord]) -> Curves:
    curves: Curves = {}
    for record in records:
        if isinstance(record, PretrainUnit) and record.curve:
            curves.setdefault(record.variant, []).append(record.curve)
    return curves


def _mean_curve(runs: list[list[CurvePoint]], x_of: Callable[[CurvePoint], float]):
    """``(xs, means, lows, highs)`` over seeds, evaluation by evaluation, as long as the shortest run."""
    length = min(len(run) for run in runs)
    xs, means, lows, highs = [], [], [], []
    for i in range(length):
        values = [run[i].val_loss for run in runs]
        xs.append(statistics.fmean(x_of(run[i]) for run in runs))
        means.append(statistics.fmean(values))
        lows.append(min(values))
        highs.append(max(values))
    return xs, means, lows, highs


def _loss_curves(
    curves: Curves,
    x_of: dict[str, Callable[[CurvePoint], float]],
    xlabel: str,
    log_x: bool,
    unigram: float | None = None,
) -> Figure:
    """Validation loss against ``x_of[variant]`` of each evaluation, for the variants in ``x_of``; with the
    unigram line and the line 1 nat below it (the study's bar for a verdict) where ``unigram`` is known."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for name, runs in curves.items():
        if name not in x_of:
            continue
        xs, means, lows, highs = _mean_curve(runs, x_of[name])
        (line,) = ax.plot(xs, means, marker="o", markersize=3, label=name)
        ax.fill_between(xs, lows, highs, color=line.get_color(), alpha=0.15)
    if unigram is not None:
        for level, text in ((unigram, "word frequencies only"), (unigram - TRAINED_MARGIN, "1 nat below")):
            ax.axhline(level, color="gray", linestyle="--", linewidth=1)
            ax.text(ax.get_xlim()[1], level, text + " ", ha="right", va="bottom", fontsize=8, color="gray")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("validation MLM loss")
    if log_x:
        ax.set_xscale("log")
    ax.set_title("Validation MLM loss (mean over seeds, band: min-max)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_loss_vs_tokens(curves: Curves, summary: StudySummary, report_dir: Path) -> str | None:
    if not curves:
        return None
    x_of = {name: (lambda point: point.tokens) for name in curves}
    fig = _loss_curves(curves, x_of, "training tokens", log_x=False, unigram=summary.unigram_entropy)
    return _save(fig, report_dir, "val_loss_vs_tokens.png")


def plot_loss_vs_flops(curves: Curves, summary: StudySummary, report_dir: Path) -> str | None:
    # Training FLOPs at an evaluation: its tokens times the run's counted FLOPs per token.
    per_token = {
        name: row.train_flops.mean / max(row.tokens, 1)
        for name, row in summary.pretrain.items()
        if row.train_flops is not None and row.train_flops.mean
    }
    x_of = {name: (lambda point, scale=scale: point.tokens * scale) for name, scale in per_token.items()}
    if not x_of:
        return None
    fig = _loss_curves(
        curves,
        x_of,
        "training FLOPs (forward + backward, counted)",
        log_x=True,
        unigram=summary.unigram_entropy,
    )
    return _save(fig, report_dir, "val_loss_vs_flops.png")


def plot_warm_loss(records: list[UnitRecord], summary: StudySummary, report_dir: Path) -> str | None:
    """The warm start's continued pretraining: each conversion's validation loss against continued tokens."""
    curves: Curves = {}
    for record in records:
        if isinstance(record, WarmUnit) and record.curve:
            curves.setdefault(record.variant, []).append(record.curve)
    if not curves:
        return None
    unigram = next(iter(summary.warm.values())).unigram_entropy if summary.warm else None
    x_of = {name: (lambda point: point.tokens) for name in curves}
    fig = _loss_curves(
        curves, x_of, "continued pretraining tokens (warm start)", log_x=False, unigram=unigram
    )
    return _save(fig, report_dir, "warm_val_loss_vs_tokens.png")


def plot_downstream(records: list[UnitRecord], summary: StudySummary, report_dir: Path) -> str | None:
    """Every variant's test score: one dot per seed, the mean ± std as a diamond."""
    metric = summary.metric
    # Blue: pretrained from scratch here; orange: warm start.
    groups = [(PretrainUnit, summary.pretrain), (WarmUnit, summary.warm)]
    columns = [(record_type, name, row) for record_type, rows in groups for name, row in rows.items()]
    if not columns:
        return None
    fig = Figure(figsize=(max(6, 0.8 * len(columns) + 2), 4.5))
    ax = fig.subplots()
    for i, (record_type, name, row) in enumerate(columns):
        values = [
            r.finetune.test[metric] for r in records if isinstance(r, record_type) and r.variant == name
        ]
        color = "tab:blue" if record_type is PretrainUnit else "tab:orange"
        ax.scatter([i] * len(values), values, color=color, alpha=0.5, s=18)
        if row.test is not None:
            ax.errorbar([i], [row.test.mean], yerr=[row.test.std], fmt="D", color=color, capsize=4)
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels([name for _, name, _ in columns], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel(f"test {metric}")
    ax.set_title(
        f"Downstream test {metric} per variant (dots: seeds; diamond: mean ± std)\n"
        "blue: pretrained here; orange: warm start from a pretrained BERT",
        fontsize=9,
    )
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, report_dir, "downstream.png")


def plot_elasticity(summary: StudySummary, report_dir: Path) -> str | None:
    """Validation loss of each model evaluated with other step counts than it trained with."""
    elastic = {
        name: row.mlm_by_ode_steps for name, row in summary.pretrain.items() if len(row.mlm_by_ode_steps) > 1
    }
    if not elastic:
        return None
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for name, by_steps in elastic.items():
        steps = sorted(by_steps, key=int)
        ax.errorbar(
            [int(s) for s in steps],
            [by_steps[s].mean for s in steps],
            yerr=[by_steps[s].std for s in steps],
            marker="o",
            capsize=3,
            label=name,
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("ode_steps at evaluation")
    ax.set_ylabel("validation MLM loss")
    ax.set_title("Depth elasticity: each model evaluated with other step counts than trained")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, report_dir, "elasticity.png")


def plot_scaling(summary: StudySummary, report_dir: Path) -> str | None:
    """Validation loss against training FLOPs (log axis), every variant and budget, with the fitted curves
    (dotted lines through the points where a variant bends down and no power law describes it), and BERT's
    measured curve from every run of its architecture."""
    if not summary.scaling:
        return None
    fig = Figure(figsize=(7.5, 5))
    ax = fig.subplots()
    base = summary.baseline_curve
    if base is not None:
        ax.plot(
            [p.train_flops for p in base.points],
            [p.val_loss.mean for p in base.points],
            color="black",
            linewidth=1,
            alpha=0.6,
            label="BERT's measured curve (" + ", ".join(summary.baseline_curve_from) + ")",
        )
    for name, row in summary.scaling.items():
        flops = [p.train_flops for p in row.points]
        losses = [p.val_loss.mean for p in row.points]
        line = ax.errorbar(
            flops,
            losses,
            yerr=[p.val_loss.std for p in row.points],
            marker="o",
            capsize=3,
            linestyle="none",
            label=name,
        )
        color = line[0].get_color()
        if row.fit is not None and not row.bends_down:
            grid = np.geomspace(min(flops) / 1.5, max(flops) * 1.5, 100)
            ax.plot(grid, row.fit(grid), color=color, alpha=0.7)
        else:
            ax.plot(flops, losses, color=color, alpha=0.7, linestyle=":")
    if summary.unigram_entropy is not None:
        ax.axhline(summary.unigram_entropy, color="gray", linestyle="--", linewidth=1)
        ax.text(ax.get_xlim()[0], summary.unigram_entropy, " word frequencies only", va="bottom", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("training FLOPs (forward + backward, counted)")
    ax.set_ylabel("validation MLM loss")
    ax.set_title(
        "Scaling: mean ± std over seeds per budget\n"
        "solid: L(C) = a (C/C0)^-b + c; dotted: bends down, no power law",
        fontsize=10,
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, report_dir, "scaling.png")


def write_plots(records: list[UnitRecord], summary: StudySummary, report_dir: Path) -> list[str]:
    """Draws every plot that has data; returns the file names written."""
    curves = _curves(records)
    written = [
        plot_loss_vs_tokens(curves, summary, report_dir),
        plot_loss_vs_flops(curves, summary, report_dir),
        plot_warm_loss(records, summary, report_dir),
        plot_downstream(records, summary, report_dir),
        plot_elasticity(summary, report_dir),
        plot_scaling(summary, report_dir),
    ]
    return [filename for filename in written if filename is not None]
