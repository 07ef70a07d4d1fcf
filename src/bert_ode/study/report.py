"""The study's report on disk: ``results.json`` (the summary and every record), the plots (``plots.py``) and
``report.md`` (``report_markdown.py``), from the statistics of ``statistics.py``."""

from __future__ import annotations

import json
from pathlib import Path

from .config import StudyConfig
from .plots import write_plots
from .records import PretrainUnit, SweepUnit, UnitRecord
from .report_markdown import report_markdown
from .statistics import summarize_study


def write_report(
    records: list[UnitRecord],
    config: StudyConfig,
    report_dir: Path,
    command: str,
    machine: dict,
    wall_seconds: float,
    failures: list[dict] | None = None,
    downstream_baselines: dict | None = None,
    sweeps: list[SweepUnit] | None = None,
) -> Path:
    """Writes ``results.json``, the plots and ``report.md`` into ``report_dir``; returns the last one.
    ``downstream_baselines``: ``baselines.baseline_scores`` of the study's task, shown beside the models."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize_study(records, config, sweeps)
    summary.downstream_baselines = downstream_baselines
    main_budget = max(config.budgets) if config.budgets else None
    at_main_budget = [r for r in records if not isinstance(r, PretrainUnit) or r.budget_tokens == main_budget]
    plots = write_plots(at_main_budget, summary, report_dir)
    results = {"summary": summary.to_dict(), "records": [record.to_dict() for record in records]}
    (report_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    path = report_dir / "report.md"
    # A hand-written reading kept beside the report survives regenerating it (re-running the study).
    reading = report_dir / "reading.md"
    reading = reading.read_text(encoding="utf-8") if reading.is_file() else None
    path.write_text(
        report_markdown(summary, config, plots, command, machine, wall_seconds, failures or [], reading)
    )
    return path


__all__ = ["write_report"]
