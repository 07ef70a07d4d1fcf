"""``bert-ode compare``: run (or resume) a study, then write its report."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import yaml

from ..convert import quiet_transformers
from ..utils.config_io import to_dict
from .config import StudyConfig, load_study
from .cooldown_report import write_cooldown_report
from .cooldowns import CooldownStudy
from .records import RECORD_TYPES
from .report import write_report
from .runner import Study, machine_description


def compare(
    config: StudyConfig | str = "smoke",
    overrides: dict | None = None,
    progress: bool = True,
    command: str | None = None,
    report_only: bool = False,
) -> Path:
    """Runs (or resumes) a study and writes its report; returns the report's folder. ``report_only``: run
    nothing, rewrite the report from the finished records (the study's records folder, or where that is not
    on this machine, the records kept in the report's own ``results.json``)."""
    if not isinstance(config, StudyConfig):
        config = load_study(config, overrides)
    study = (CooldownStudy if config.cooldowns else Study)(config, progress=progress)
    report_dir = Path(config.report_dir) / config.name
    study.root.mkdir(parents=True, exist_ok=True)
    (study.root / "study.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
    started = time.time()
    if report_only:
        records = saved_records(study, report_dir)
    else:
        with quiet_transformers(reports=False):  # its loads and saves would draw bars between its lines
            records = study.run()
    report_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(study.root / "study.yaml", report_dir / "study.yaml")
    recipe_path = report_dir / "pretrain_config.yaml"
    # A report-only run resolves neither the pinned precision nor the tokenizer: it keeps the recipe written.
    if not (report_only and recipe_path.is_file()):
        recipe_path.write_text(yaml.safe_dump(study.recipes.pretrain.to_dict(), sort_keys=False))
    context = dict(
        command=command or "bert-ode compare " + " ".join(sys.argv[2:]),
        machine=machine_description(),
        wall_seconds=time.time() - started,
        failures=study.failures,
    )
    if config.cooldowns:
        kept = _kept_results(report_dir) if report_only else {}
        if kept.get("downstream_baselines") is None:
            study.share_tokenizer_and_data()  # the TF-IDF baseline on the first tokens needs the tokenizer
        write_cooldown_report(
            records,
            config,
            report_dir,
            downstream_baselines=kept.get("downstream_baselines") or study.downstream_baselines(),
            corpus=kept.get("corpus") or study.corpus_size(),
            **context,
        )
    else:
        write_report(
            records,
            config,
            report_dir,
            downstream_baselines=study.downstream_baselines(),
            sweeps=study.sweep_records(),
            **context,
        )
    if study.failures:
        raise StudyUnitsFailed(study.failures, report_dir / "report.md")
    return report_dir


def _kept_results(report_dir: Path) -> dict:
    """What the report's ``results.json`` keeps beside the records (the downstream baselines, the corpus
    size) when the study's records folder is not on this machine; ``{}`` otherwise."""
    path = report_dir / "results.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def saved_records(study: Study, report_dir: Path) -> list:
    """The study's finished records: its records folder, or the records its report's ``results.json``
    keeps (a committed report regenerated on another machine). Neither: a one-line error."""
    on_disk = study.records()
    if on_disk:
        return on_disk
    kept = _kept_results(report_dir).get("records")
    if not kept:
        raise ValueError(
            f"--report-only: no finished records in {study.records_dir} and no {report_dir / 'results.json'}"
            " to read them from: run the study first (without --report-only)"
        )
    kinds = {kind.kind: kind for kind in RECORD_TYPES}
    return [kinds[values["kind"]].from_dict(values) for values in kept if values.get("kind") in kinds]


class StudyUnitsFailed(ValueError):
    """Units of a study failed (the report is written, and marks them; a later run tries them again)."""

    def __init__(self, failures: list[dict], report: Path):
        self.failures, self.report = failures, report
        lines = [f"{f['variant']} (seed {f['seed']}): {f['error']}" for f in failures]
        super().__init__(
            f"{len(failures)} unit(s) failed; the report {report} marks them, and running the study again "
            "retries them:\n" + "\n".join(f"  {line}" for line in lines)
        )


__all__ = ["StudyUnitsFailed", "compare", "saved_records"]
