"""The figures of a ``cooldowns`` study (PNG beside ``report.md``), one function a plot, one colour a variant
across every figure. Per-seed curves, not means: the drops are abrupt, and a mean would smear them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from scipy import stats

from .escape import ESCAPE_MARGINS, EscapeSummary, MultiplierPoint, escape_tokens
from .records import BranchUnit, ConstantRun

_MILLIONS = FuncFormatter(lambda value, _: f"{value / 1e6:g}")


def variant_colours(names: list[str]) -> dict[str, tuple]:
    """One colour per variant, the same in every figure (the order of the study's variants)."""
    # Greys are left out: grey draws the references (BERT's seeds behind each panel, unigram, baselines).
    palette = [c for c in colormaps["tab10"].colors + colormaps["Dark2"].colors if len(set(c[:3])) > 1]
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def _save(fig: Figure, report_dir: Path, filename: str) -> str:
    fig.tight_layout()
    fig.savefig(report_dir / filename, dpi=120)
    return filename


def _unigram_lines(ax, unigram: float | None) -> None:
    if unigram is None:
        return
    ax.axhline(unigram, color="gray", linestyle="--", linewidth=1)
    ax.text(
        ax.get_xlim()[0], unigram, " unigram: word frequencies only", va="bottom", fontsize=8, color="gray"
    )
    for margin in ESCAPE_MARGINS:
        ax.axhline(unigram - margin, color="gray", linestyle=":", linewidth=0.8)
        ax.text(
            ax.get_xlim()[0],
            unigram - margin,
            f" {margin:g} nat below",
            va="bottom",
            fontsize=7,
            color="gray",
        )


def plot_constant_curves(runs: list[ConstantRun], colours: dict, report_dir: Path, flops: bool) -> str | None:
    """Every constant-rate run's validation curve, one line per seed, against tokens or FLOPs."""
    if not runs:
        return None
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    labelled = set()
    for run in sorted(runs, key=lambda r: (r.variant, r.seed)):
        scale = run.train_flops_per_token if flops else 1.0
        xs = [p.tokens * scale for p in run.curve]
        label = run.variant if run.variant not in labelled else None
        labelled.add(run.variant)
        ax.plot(
            xs,
            [p.val_loss for p in run.curve],
            color=colours[run.variant],
            linewidth=0.9,
            alpha=0.8,
            label=label,
        )
    if flops:
        ax.set_xscale("log")
    else:
        ax.xaxis.set_major_formatter(_MILLIONS)
    _unigram_lines(ax, next((r.unigram_entropy for r in runs if r.unigram_entropy), None))
    ax.set_xlabel("training FLOPs (forward + backward, counted)" if flops else "training tokens (millions)")
    ax.set_ylabel("validation MLM loss")
    ax.set_title("Constant-rate runs, one line per seed")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, report_dir, f"constant_vs_{'flops' if flops else 'tokens'}.png")


def plot_constant_panels(
    runs: list[ConstantRun], colours: dict, baseline: str, report_dir: Path
) -> str | None:
    """One panel per variant: its seeds' constant-rate curves against tokens, each seed its own shade, over
    the baseline's seeds in light grey, so every run's drop can be told apart and set against BERT's."""
    present = {r.variant for r in runs}
    names = sorted((n for n in colours if n in present), key=lambda n: n != baseline)  # the study's order
    if not names:
        return None
    columns = min(4, len(names))
    rows = -(-len(names) // columns)
    fig = Figure(figsize=(3.2 * columns, 2.6 * rows))
    axes = np.atleast_1d(fig.subplots(rows, columns, sharex=True, sharey=True, squeeze=False)).ravel()
    unigram = next((r.unigram_entropy for r in runs if r.unigram_entropy), None)
    for ax, name in zip(axes, names, strict=False):
        for run in runs:
            if run.variant == baseline and name != baseline:
                tokens = [p.tokens for p in run.curve]
                ax.plot(tokens, [p.val_loss for p in run.curve], color="0.8", linewidth=0.7)
        mine = sorted((r for r in runs if r.variant == name), key=lambda r: r.seed)
        for i, run in enumerate(mine):
            shade = 0.55 + 0.45 * i / max(1, len(mine) - 1)
            colour = tuple(c * shade for c in colours[name][:3])
            tokens = [p.tokens for p in run.curve]
            ax.plot(
                tokens, [p.val_loss for p in run.curve], color=colour, linewidth=0.9, label=f"seed {run.seed}"
            )
        if unigram is not None:
            ax.axhline(unigram, color="gray", linestyle="--", linewidth=0.8)
            ax.axhline(unigram - ESCAPE_MARGINS[0], color="gray", linestyle=":", linewidth=0.8)
        ax.set_title(name if name == baseline else f"{name} (grey: {baseline})", fontsize=8)
        ax.xaxis.set_major_formatter(_MILLIONS)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=5, ncol=2)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    fig.supxlabel("training tokens (millions)", fontsize=9)
    fig.supylabel("validation MLM loss (dashed: unigram; dotted: 1 nat below)", fontsize=8)
    return _save(fig, report_dir, "constant_by_variant.png")


def plot_kaplan_meier(summaries: dict[str, EscapeSummary], colours: dict, report_dir: Path) -> str | None:
    """The share of runs still on the plateau against tokens (Kaplan-Meier; ticks: censored runs)."""
    if not summaries:
        return None
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for name, summary in summaries.items():
        observed = [t for t in summary.tokens if t is not None]
        censored = [limit for t, limit in zip(summary.tokens, summary.run_tokens, strict=True) if t is None]
        if not observed:
            ax.plot([0, max(censored)], [1, 1], color=colours[name], label=f"{name} (none escaped)")
            continue
        survival = stats.ecdf(stats.CensoredData(uncensored=observed, right=censored)).sf
        xs = np.concatenate([[0], survival.quantiles])
        ys = np.concatenate([[1], survival.probabilities])
        ax.step(xs, ys, where="post", color=colours[name], label=f"{name} (n={len(summary.tokens)})")
        for limit in censored:
            ax.plot([limit], [survival.evaluate(limit)], marker="|", color=colours[name], markersize=10)
    margin = next(iter(summaries.values())).margin
    ax.xaxis.set_major_formatter(_MILLIONS)
    ax.set_xlabel("training tokens (millions)")
    ax.set_ylabel("share of runs still on the plateau")
    ax.set_title(f"Leaving the plateau: {margin:g} nat below unigram (Kaplan-Meier)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, report_dir, f"escape_km_{margin:g}nat.png")


def plot_multipliers(points: dict[str, list[MultiplierPoint]], colours: dict, report_dir: Path) -> str | None:
    """Each variant's compute multiplier against BERT's pooled curve, against tokens: constant-rate
    evaluations (line, band: 95% t on logs) and cooldown endpoints (diamonds with theirs); 1 is BERT's worth.
    Points with a censored seed have no mean, and are left out."""
    if not any(points.values()):
        return None
    fig = Figure(figsize=(10, 4.5))
    ax = fig.subplots()
    for name, series in points.items():
        pooled = [p for p in series if p.reference == "pooled" and p.mean is not None]
        constant = [p for p in pooled if p.where == "constant"]
        if constant:
            xs = [p.tokens for p in constant]
            ax.plot(xs, [p.mean for p in constant], color=colours[name], linewidth=1, label=name)
            lows = [p.interval.low if p.interval else p.mean for p in constant]
            highs = [p.interval.high if p.interval else p.mean for p in constant]
            ax.fill_between(xs, lows, highs, color=colours[name], alpha=0.15)
        for i, p in enumerate(p for p in pooled if p.where == "cooldown"):
            low, high = (p.interval.low, p.interval.high) if p.interval else (p.mean, p.mean)
            error = [[p.mean - low], [high - p.mean]]
            label = f"{name} (cooldowns)" if i == 0 else None
            ax.errorbar(
                [p.tokens], [p.mean], yerr=error, fmt="D", color=colours[name], capsize=3, label=label
            )
    ax.axhline(1.0, color="gray", linestyle="--", linewidth=1)
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(_MILLIONS)
    ax.set_xlabel("training tokens (millions)")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.set_ylabel("compute multiplier, pooled BERT\n(BERT FLOPs to the same loss / own FLOPs)")
    ax.set_title("Worth of a variant's compute: above 1 beats BERT at equal FLOPs")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # beside the axes: the cooldown points sit at the right edge
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, report_dir, "compute_multiplier.png")


def plot_probes(runs: list[ConstantRun], colours: dict, report_dir: Path, window: float = 4e6) -> str | None:
    """The probes around each run's escape (tokens relative to it): the last layer's token-state cosine and
    its mean attention entropy, one line per run that escaped."""
    escaped = [
        r for r in runs if r.probes and r.unigram_entropy and escape_tokens(r.curve, r.unigram_entropy, 1.0)
    ]
    if not escaped:
        return None
    fig = Figure(figsize=(9, 4))
    cosine_ax, entropy_ax = fig.subplots(1, 2)
    for run in escaped:
        at = escape_tokens(run.curve, run.unigram_entropy, 1.0)
        near = [p for p in run.probes if abs(p.tokens - at) <= window]
        xs = [(p.tokens - at) / 1e6 for p in near]
        cosine_ax.plot(xs, [p.token_cosine[-1] for p in near], color=colours[run.variant], linewidth=0.8)
        entropy = [float(np.mean(p.attention_entropy[-1])) / p.uniform_entropy for p in near]
        entropy_ax.plot(xs, entropy, color=colours[run.variant], linewidth=0.8)
    for ax, label in (
        (cosine_ax, "last layer: mean pairwise cosine of token states"),
        (entropy_ax, "last layer: attention entropy / log T"),
    ):
        ax.axvline(0.0, color="gray", linestyle="--", linewidth=1)
        ax.set_xlabel("tokens from the escape (1 nat below unigram), millions")
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    handles = {run.variant for run in escaped}
    for name in sorted(handles):
        cosine_ax.plot([], [], color=colours[name], label=name)
    cosine_ax.legend(fontsize=7)
    fig.suptitle("Probes around each run's escape (one line per run)", fontsize=10)
    return _save(fig, report_dir, "probes_around_escape.png")


def plot_cooldown_endpoints(branches: list[BranchUnit], colours: dict, report_dir: Path) -> str | None:
    """Every cooldown endpoint's validation loss against its training FLOPs, one dot per seed."""
    if not branches:
        return None
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for name in dict.fromkeys(b.variant for b in branches):
        mine = [b for b in branches if b.variant == name]
        ax.scatter(
            [b.train_flops for b in mine], [b.val_loss for b in mine], color=colours[name], s=14, label=name
        )
    ax.set_xscale("log")
    ax.set_xlabel("training FLOPs (forward + backward, counted)")
    ax.set_ylabel("validation MLM loss after the cooldown")
    ax.set_title("Cooldown endpoints, one dot per seed")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, report_dir, "cooldown_endpoints.png")


def plot_downstream(
    groups: dict[str, tuple[str, list[float]]], baselines: dict[str, float], colours: dict, report_dir: Path
) -> str | None:
    """Test scores, one dot per seed and a bar at the mean, for each fine-tuned group (``label -> (variant,
    scores)``), with the baselines that need no pretraining as labelled reference lines."""
    if not groups:
        return None
    fig = Figure(figsize=(8, 0.9 + 0.4 * len(groups)))
    ax = fig.subplots()
    for row, (variant, scores) in enumerate(groups.values()):
        colour = colours.get(variant, "gray")
        ax.barh(row, float(np.mean(scores)), color=colour, alpha=0.35, height=0.6)
        ax.scatter(scores, [row] * len(scores), color=colour, s=16, zorder=3)
    for (name, value), style in zip(baselines.items(), ("--", "-.", ":", "-"), strict=False):
        ax.axvline(value, color="black", linestyle=style, linewidth=1, label=f"{name}: {value:.3f}")
    ax.set_yticks(range(len(groups)), list(groups), fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("test score (one dot per seed; bar: mean)")
    ax.set_title("Downstream, against baselines that need no pretraining")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7, loc="lower left")
    return _save(fig, report_dir, "downstream.png")


__all__ = [
    "plot_constant_curves",
    "plot_cooldown_endpoints",
    "plot_downstream",
    "plot_kaplan_meier",
    "plot_multipliers",
    "plot_probes",
    "variant_colours",
]
