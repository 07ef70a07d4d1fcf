"""The study's report: tables, plots and a plain summary, built from the per-unit JSON records alone.

Decision rule, stated in the report: a variant *wins* (or *loses*) against the baseline only when the difference
of the seed means exceeds the sum of the two seed standard deviations; otherwise the result is a *tie*.
"""

from __future__ import annotations

import json
import statistics
from datetime import datetime, timezone
from pathlib import Path

LOWER_IS_BETTER = {"val_loss"}


def _stats(values: list[float]) -> dict:
    values = [float(v) for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def verdict(candidate: dict, baseline: dict, lower_is_better: bool) -> str:
    """``win`` / ``loss`` / ``tie`` of ``candidate`` against ``baseline`` (both ``_stats``), by the seed spread."""
    if candidate["mean"] is None or baseline["mean"] is None:
        return "n/a"
    difference = candidate["mean"] - baseline["mean"]
    if lower_is_better:
        difference = -difference
    spread = (candidate["std"] or 0.0) + (baseline["std"] or 0.0)
    if candidate["n"] < 2 or baseline["n"] < 2:
        return "tie (1 seed)" if abs(difference) <= spread else ("win (1 seed)" if difference > 0 else "loss (1 seed)")
    if abs(difference) <= spread:
        return "tie"
    return "win" if difference > 0 else "loss"


def _fmt(stats: dict, digits: int = 3) -> str:
    if stats["mean"] is None:
        return "-"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def _group(records: list[dict], kind: str) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for record in records:
        if record["kind"] == kind:
            groups.setdefault(record["variant"], []).append(record)
    return groups


def summarize(records: list[dict], config) -> dict:
    """Per-variant statistics over seeds, and every variant's verdict against the baseline."""
    pretrained = _group(records, "pretrain")
    metric = None
    summary = {"pretrain": {}, "warm": {}}
    for name, runs in pretrained.items():
        metric = metric or runs[0]["finetune"]["main_metric"]
        steps = sorted({s for r in runs for s in r["mlm_by_ode_steps"]}, key=int)
        summary["pretrain"][name] = {
            "model_overrides": runs[0]["model_overrides"],
            "compute_match": runs[0].get("compute_match"),
            "parameters": runs[0]["parameters"],
            "seeds": [r["seed"] for r in runs],
            "val_loss": _stats([r["val_loss"] for r in runs]),
            "val_ppl": _stats([r["val_ppl"] for r in runs]),
            "test": _stats([r["finetune"]["test"][metric] for r in runs]),
            "validation": _stats([r["finetune"]["validation"][metric] for r in runs]),
            "train_seconds": _stats([r["train_seconds"] for r in runs]),
            "tokens_per_second": _stats([r["tokens_per_second"] for r in runs]),
            "tokens": runs[0]["tokens"],
            "train_flops": _stats([r["train_flops"] for r in runs]),
            "nfe_per_forward": _stats([r["nfe_per_forward"] for r in runs]),
            "mlm_by_ode_steps": {s: _stats([r["mlm_by_ode_steps"][s]["val_loss"] for r in runs
                                            if s in r["mlm_by_ode_steps"]]) for s in steps},
            "test_by_ode_steps": {
                s: _stats([r["finetune"]["by_ode_steps"][s][metric] for r in runs if s in r["finetune"]["by_ode_steps"]])
                for s in sorted({s for r in runs for s in r["finetune"]["by_ode_steps"]}, key=int)
            },
        }
    for name, runs in _group(records, "warm").items():
        metric = metric or runs[0]["finetune"]["main_metric"]
        summary["warm"][name] = {
            "model_overrides": runs[0]["model_overrides"],
            "parameters": runs[0]["parameters"],
            "seeds": [r["seed"] for r in runs],
            "test": _stats([r["finetune"]["test"][metric] for r in runs]),
            "validation": _stats([r["finetune"]["validation"][metric] for r in runs]),
            "test_by_ode_steps": {
                s: _stats([r["finetune"]["by_ode_steps"][s][metric] for r in runs if s in r["finetune"]["by_ode_steps"]])
                for s in sorted({s for r in runs for s in r["finetune"]["by_ode_steps"]}, key=int)
            },
        }
    summary["metric"] = metric
    base_runs = {r["seed"]: r for r in pretrained.get(config.baseline, [])}
    for name, runs in pretrained.items():
        if name == config.baseline:
            continue
        # Paired by seed: the same seed gives every variant the same data order and masks.
        pairs = [(r, base_runs[r["seed"]]) for r in runs if r["seed"] in base_runs]
        summary["pretrain"][name]["paired_delta_val_loss"] = _stats([r["val_loss"] - b["val_loss"] for r, b in pairs])
        summary["pretrain"][name]["paired_delta_test"] = _stats(
            [r["finetune"]["test"][metric] - b["finetune"]["test"][metric] for r, b in pairs])
    base = summary["pretrain"].get(config.baseline)
    for name, row in summary["pretrain"].items():
        if base is None or name == config.baseline:
            continue
        row["verdict_val_loss"] = verdict(row["val_loss"], base["val_loss"], lower_is_better=True)
        row["verdict_test"] = verdict(row["test"], base["test"], lower_is_better=False)
        match = row.get("compute_match")
        if match and match in summary["pretrain"]:
            other = summary["pretrain"][match]
            # Equal compute: the ODE variant against this deeper BERT.
            other["verdict_vs_" + name] = {
                "val_loss": verdict(other["val_loss"], row["val_loss"], lower_is_better=True),
                "test": verdict(other["test"], row["test"], lower_is_better=False),
            }
    warm_names = list(summary["warm"])
    if warm_names:
        warm_base = summary["warm"][warm_names[0]]
        for name in warm_names[1:]:
            summary["warm"][name]["verdict_test"] = verdict(summary["warm"][name]["test"], warm_base["test"], False)
    return summary


# ---------------------------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------------------------


def _curves(records: list[dict]) -> dict[str, list[list[dict]]]:
    curves: dict[str, list[list[dict]]] = {}
    for record in records:
        if record["kind"] == "pretrain" and record["curve"]:
            curves.setdefault(record["variant"], []).append(record["curve"])
    return curves


def _mean_curve(runs: list[list[dict]], x_of) -> tuple[list[float], list[float], list[float], list[float]]:
    length = min(len(run) for run in runs)
    xs, means, lows, highs = [], [], [], []
    for i in range(length):
        values = [run[i]["val_loss"] for run in runs]
        xs.append(statistics.fmean(x_of(run, i) for run in runs))
        means.append(statistics.fmean(values))
        lows.append(min(values))
        highs.append(max(values))
    return xs, means, lows, highs


def write_plots(records: list[dict], summary: dict, report_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    curves = _curves(records)
    flops_per_token = {name: row["train_flops"]["mean"] / max(row["tokens"], 1)
                       for name, row in summary["pretrain"].items() if row["train_flops"]["mean"]}
    for filename, xlabel, x_of in (
        ("val_loss_vs_tokens.png", "training tokens", lambda run, i: run[i]["tokens"]),
        ("val_loss_vs_flops.png", "training FLOPs (forward + backward, counted)", None),
    ):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name, runs in curves.items():
            if x_of is None:
                scale = flops_per_token.get(name)
                if scale is None:
                    continue
                xs, means, lows, highs = _mean_curve(runs, lambda run, i, s=scale: run[i]["tokens"] * s)
            else:
                xs, means, lows, highs = _mean_curve(runs, x_of)
            line, = ax.plot(xs, means, marker="o", markersize=3, label=name)
            ax.fill_between(xs, lows, highs, color=line.get_color(), alpha=0.15)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation MLM loss")
        if x_of is None:
            ax.set_xscale("log")
        ax.set_title("Validation MLM loss (mean over seeds, band: min-max)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(report_dir / filename, dpi=120)
        plt.close(fig)
        written.append(filename)

    metric = summary["metric"]
    groups = [("pretrained from scratch", summary["pretrain"]), ("warm start", summary["warm"])]
    names = [(label, name, row) for label, rows in groups for name, row in rows.items()]
    if names:
        fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(names) + 2), 4.5))
        seeds_by_variant = {}
        for record in records:
            key = ("warm start" if record["kind"] == "warm" else "pretrained from scratch", record["variant"])
            seeds_by_variant.setdefault(key, []).append(record["finetune"]["test"][metric])
        for i, (label, name, row) in enumerate(names):
            values = seeds_by_variant.get((label, name), [])
            color = "tab:blue" if label.startswith("pretrained") else "tab:orange"
            ax.scatter([i] * len(values), values, color=color, alpha=0.5, s=18)
            ax.errorbar([i], [row["test"]["mean"]], yerr=[row["test"]["std"]], fmt="D", color=color, capsize=4)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([n for _, n, _ in names], rotation=35, ha="right", fontsize=8)
        ax.set_ylabel(f"test {metric}")
        ax.set_title(f"Downstream test {metric} per variant (dots: seeds; diamond: mean ± std)\n"
                     "blue: pretrained here; orange: warm start from a pretrained BERT", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
        fig.tight_layout()
        fig.savefig(report_dir / "downstream.png", dpi=120)
        plt.close(fig)
        written.append("downstream.png")

    elastic = {name: row["mlm_by_ode_steps"] for name, row in summary["pretrain"].items()
               if len(row["mlm_by_ode_steps"]) > 1}
    if elastic:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name, by_steps in elastic.items():
            steps = sorted(by_steps, key=int)
            ax.errorbar([int(s) for s in steps], [by_steps[s]["mean"] for s in steps],
                        yerr=[by_steps[s]["std"] for s in steps], marker="o", capsize=3, label=name)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("ode_steps at evaluation")
        ax.set_ylabel("validation MLM loss")
        ax.set_title("Depth elasticity: each model evaluated with other step counts than trained")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(report_dir / "elasticity.png", dpi=120)
        plt.close(fig)
        written.append("elasticity.png")
    return written


# ---------------------------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------------------------


def _describe(overrides: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "BERT (euler, 1 step)"


def _plain_summary(summary: dict, config) -> list[str]:
    """Sentences that say what the figures show, negative results included."""
    lines, metric = [], summary["metric"]
    base = summary["pretrain"].get(config.baseline)
    if base is None:
        return ["The baseline has no finished run yet."]
    lines.append(
        f"- Baseline `{config.baseline}`: validation MLM loss {_fmt(base['val_loss'])}, "
        f"test {metric} {_fmt(base['test'])} over {base['val_loss']['n']} seed(s)."
    )
    by_verdict: dict[str, list[str]] = {}
    for name, row in summary["pretrain"].items():
        if name == config.baseline or row.get("compute_match"):
            continue
        by_verdict.setdefault(row["verdict_val_loss"], []).append(
            f"`{name}` ({_fmt(row['val_loss'])}, {row['nfe_per_forward']['mean'] or 0:.0f} evaluations per forward)")
    for verdict_name, entries in sorted(by_verdict.items()):
        lines.append(f"- Equal parameters, equal tokens, MLM loss — **{verdict_name}** against BERT: {', '.join(entries)}.")
    by_verdict = {}
    for name, row in summary["pretrain"].items():
        if name == config.baseline or row.get("compute_match"):
            continue
        by_verdict.setdefault(row["verdict_test"], []).append(f"`{name}` ({_fmt(row['test'])})")
    for verdict_name, entries in sorted(by_verdict.items()):
        lines.append(f"- Equal parameters, downstream test {metric} — **{verdict_name}** against BERT: "
                     f"{', '.join(entries)}.")
    for name, row in summary["pretrain"].items():
        for key, value in row.items():
            if key.startswith("verdict_vs_"):
                other = key[len("verdict_vs_"):]
                lines.append(
                    f"- Equal compute: `{name}` against `{other}` (BERT with more layers, "
                    f"{summary['pretrain'][other]['train_flops']['mean'] or 0:.2e} vs "
                    f"{row['train_flops']['mean'] or 0:.2e} training FLOPs): MLM loss **{value['val_loss']}** "
                    f"({_fmt(row['val_loss'])} vs {_fmt(summary['pretrain'][other]['val_loss'])}), test {metric} "
                    f"**{value['test']}** ({_fmt(row['test'])} vs {_fmt(summary['pretrain'][other]['test'])})."
                )
    warm = summary["warm"]
    if warm:
        names = list(warm)
        lines.append(f"- Warm start from the pretrained BERT: `{names[0]}` (the BERT itself) reaches test {metric} "
                     f"{_fmt(warm[names[0]]['test'])}; " + "; ".join(
                         f"`{n}` {_fmt(warm[n]['test'])} (**{warm[n]['verdict_test']}**)" for n in names[1:]) + ".")
    elastic = []
    for name, row in summary["pretrain"].items():
        by_steps = row["mlm_by_ode_steps"]
        if len(by_steps) > 1:
            trained = str(row["model_overrides"].get("ode_steps", 1))
            if trained in by_steps:
                others = [f"{s} steps {by_steps[s]['mean']:.3f}" for s in by_steps if s != trained]
                elastic.append(f"`{name}` (trained {trained}: {by_steps[trained]['mean']:.3f}; " + ", ".join(others)
                               + ")")
    if elastic:
        lines.append("- Depth elasticity (validation MLM loss at other step counts): " + "; ".join(elastic) + ".")
    return lines


def write_report(records: list[dict], config, report_dir: Path, command: str, machine: dict,
                 wall_seconds: float, failures: list[dict] | None = None) -> Path:
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(records, config)
    plots = write_plots(records, summary, report_dir)
    (report_dir / "results.json").write_text(json.dumps({"summary": summary, "records": records}, indent=2) + "\n")
    metric = summary["metric"]
    ft = dict(config.finetune)
    lines = [
        f"# bert-ode study `{config.name}`: does ODE-BERT beat BERT?",
        "",
        f"Generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by `{command}` "
        f"({wall_seconds / 60:.1f} min of this invocation; finished units are reused when a study is re-run).",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, torch threads {machine['torch_threads']}, "
        f"GPU: {machine['gpu'] or 'none'}; Python {machine['python']}, torch {machine['torch']}.",
        "",
        f"Protocol: every variant is pretrained from scratch with the recipe `{config.pretrain}` "
        f"(+ `{config.pretrain_overrides}`; full config in `pretrain_config.yaml`), the same data, tokenizer and "
        f"token budget, for seeds {config.seeds}; then fine-tuned on `{ft.get('task', 'bbc-news')}` with one "
        f"hyperparameter set (`{ft}`), model selection on the validation split, test scored once. "
        f"Figures are mean ± standard deviation over seeds. **Decision rule**: a difference is a win or a loss "
        f"only when the difference of means exceeds the sum of the two standard deviations; otherwise it is a tie. "
        f"The paired Δ columns give the per-seed difference to BERT (same seed: same data order and masks), "
        f"mean ± std over seeds, for a finer reading than the verdict.",
        "",
        "## Summary",
        "",
        *_plain_summary(summary, config),
        *[f"- **Failed** (not in the tables; re-running the study retries it): `{f['variant']}` seed {f['seed']}: "
          f"{f['error']}" for f in failures or []],
        "",
        "## Pretraining (equal parameters and equal compute)",
        "",
        "| variant | model | params | val MLM loss | val ppl | test " + metric + " | train s | tokens/s | "
        "train FLOPs | NFE/forward | vs BERT (loss / test) | paired Δ loss | paired Δ " + metric + " |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in summary["pretrain"].items():
        versus = "baseline" if name == config.baseline else f"{row.get('verdict_val_loss')} / {row.get('verdict_test')}"
        if row.get("compute_match"):
            versus += f" (compute match for `{row['compute_match']}`)"
        lines.append(
            f"| `{name}` | {_describe(row['model_overrides'])} | {row['parameters'] / 1e6:.2f}M | "
            f"{_fmt(row['val_loss'])} | {_fmt(row['val_ppl'], 1)} | {_fmt(row['test'])} | "
            f"{_fmt(row['train_seconds'], 0)} | {_fmt(row['tokens_per_second'], 0)} | "
            f"{row['train_flops']['mean']:.2e} | {_fmt(row['nfe_per_forward'], 1)} | {versus} | "
            f"{_fmt(row['paired_delta_val_loss']) if 'paired_delta_val_loss' in row else '-'} | "
            f"{_fmt(row['paired_delta_test']) if 'paired_delta_test' in row else '-'} |"
        )
    steps = sorted({s for row in summary["pretrain"].values() for s in row["mlm_by_ode_steps"]}, key=int)
    if steps:
        lines += ["", "## Depth elasticity: validation MLM loss with other step counts", "",
                  "| variant | " + " | ".join(f"{s} step(s)" for s in steps) + " |",
                  "|---" * (len(steps) + 1) + "|"]
        for name, row in summary["pretrain"].items():
            lines.append(f"| `{name}` | " + " | ".join(
                _fmt(row["mlm_by_ode_steps"][s]) if s in row["mlm_by_ode_steps"] else "-" for s in steps) + " |")
        ft_steps = sorted({s for row in summary["pretrain"].values() for s in row["test_by_ode_steps"]}, key=int)
        lines += ["", f"Downstream test {metric} with other step counts (the fine-tuned model, re-scored):", "",
                  "| variant | " + " | ".join(f"{s} step(s)" for s in ft_steps) + " |",
                  "|---" * (len(ft_steps) + 1) + "|"]
        for name, row in summary["pretrain"].items():
            lines.append(f"| `{name}` | " + " | ".join(
                _fmt(row["test_by_ode_steps"][s]) if s in row["test_by_ode_steps"] else "-" for s in ft_steps) + " |")
    if summary["warm"]:
        lines += ["", "## Warm start from a pretrained BERT (no pretraining here)", "",
                  f"| variant | conversion | params | validation {metric} | test {metric} | vs the BERT |",
                  "|---|---|---|---|---|---|"]
        for i, (name, row) in enumerate(summary["warm"].items()):
            lines.append(f"| `{name}` | {_describe(row['model_overrides'])} | {row['parameters'] / 1e6:.2f}M | "
                         f"{_fmt(row['validation'])} | {_fmt(row['test'])} | "
                         f"{'baseline' if i == 0 else row.get('verdict_test')} |")
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    lines += [
        "", "## Reproduce", "", "```bash", command, "```", "",
        "Inputs: `study.yaml` (the study) and `pretrain_config.yaml` (the shared recipe) in this folder; every "
        "record, curve and figure above is in `results.json`. FLOPs are counted with `torch.utils.flop_counter` "
        "on one training step (forward + backward, masked-position MLM head) of the final model, times the "
        "tokens seen.", "",
    ]
    path = report_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
