"""Fine-tuning and evaluation results on disk: ``results.json`` (the record) and ``results.md`` (its
tables)."""

from __future__ import annotations

import os
from pathlib import Path

from ..utils.markdown import fmt, table
from .results import EvaluationResults, FinetuneResults


def write_results(
    results: FinetuneResults | EvaluationResults, output_dir: str | os.PathLike
) -> tuple[Path, Path]:
    """Writes ``results.json`` and ``results.md`` to ``output_dir``; returns their paths."""
    directory = Path(output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / "results.json", directory / "results.md"
    results.write_json(json_path)
    md_path.write_text(markdown_report(results))
    return json_path, md_path


def markdown_report(results: FinetuneResults | EvaluationResults) -> str:
    """The results as Markdown: what was run, then the scores (per step count; over seeds and per seed)."""
    lines = _header(results)
    if isinstance(results, EvaluationResults):
        lines += _evaluation_table(results)
    else:
        lines += _finetune_tables(results)
    return "\n".join(lines) + "\n"


def _header(results: FinetuneResults | EvaluationResults) -> list[str]:
    task, model = results.task, results.model
    title = "Fine-tuning" if isinstance(results, FinetuneResults) else "Evaluation"
    splits = ", ".join(f"{split} {size}" for split, size in task.sizes.items())
    return [
        f"# {title}: {results.checkpoint} on {task.name}",
        "",
        f"Model: {model.model_class}, {model.ode_method} x {model.ode_steps} step(s), scope "
        f"{model.ode_scope}, {model.norm_position}-norm, {model.splitting} splitting, "
        f"{model.num_hidden_layers} layers, hidden {model.hidden_size}, {model.parameters:,} parameters.",
        f"Task: {task.num_labels} {'output (regression)' if task.regression else 'classes'}, splits "
        f"{splits}; selection metric: {results.main_metric}.",
        "",
    ]


def _evaluation_table(results: EvaluationResults) -> list[str]:
    metrics = results.task.metrics
    rows = [
        [steps, *(scores[m] for m in metrics), scores["nfe"]]
        for steps, scores in results.by_ode_steps.items()
    ]
    return [f"Split: {results.split}", "", *table(["ode_steps", *metrics, "nfe"], rows)]


def _finetune_tables(results: FinetuneResults) -> list[str]:
    config, metrics, main = results.config, results.task.metrics, results.main_metric
    summary_rows = [
        [
            steps,
            metric,
            *(getattr(by_split["test"][metric], name) for name in ("median", "min", "max", "std", "mean")),
        ]
        for steps, by_split in results.summary.by_ode_steps.items()
        for metric in metrics
    ]
    seed_rows = [
        [
            str(run.seed),
            steps,
            f"{run.best_step} / {run.steps}",
            by_split["validation"][main],
            *(by_split["test"][m] for m in metrics),
            by_split["test"]["nfe"],
            fmt(run.train_seconds, 1),
        ]
        for run in results.runs
        for steps, by_split in run.by_ode_steps.items()
    ]
    return [
        f"Protocol: seeds {config.seeds}, lr {config.learning_rate}, batch {config.batch_size}, "
        f"epochs {config.epochs}, max_seq_length {config.max_seq_length}; best checkpoint on validation "
        f"{main}, test scored once.",
        "",
        "## Summary over seeds (test)",
        "",
        *table(["ode_steps", "metric", "median", "min", "max", "std", "mean"], summary_rows),
        "",
        "## Per seed",
        "",
        *table(
            [
                "seed",
                "ode_steps",
                "best step / steps",
                f"validation {main}",
                *(f"test {m}" for m in metrics),
                "nfe",
                "train s",
            ],
            seed_rows,
        ),
    ]


__all__ = ["markdown_report", "write_results"]
