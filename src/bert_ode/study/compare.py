"""``bert-ode compare``: run (or resume) a study, then write its report."""

from __future__ import annotations

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
from .report import write_report
from .runner import Study, machine_description


def compare(
    config: StudyConfig | str = "smoke",
    overrides: dict | None = None,
    progress: bool = True,
    command: str | None = None,
) -> Path:
    """Runs (or resumes) a study and writes its report; returns the report's folder."""
    if not isinstance(config, StudyConfig):
        config = load_study(config, overrides)
    study = (CooldownStudy if config.cooldowns else Study)(config, progress=progress)
    study.root.mkdir(parents=True, exist_ok=True)
    (study.root / "study.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
    started = time.time()
    with quiet_transformers(reports=False):  # its loads and saves would draw bars between the study's lines
        records = study.run()
    report_dir = Path(config.report_dir) / config.name
    report_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(study.root / "study.yaml", report_dir / "study.yaml")
    recipe = yaml.safe_dump(study.recipes.pretrain.to_dict(), sort_keys=False)
    (report_dir / "pretrain_config.yaml").write_text(recipe)
    context = dict(
        command=command or "bert-ode compare " + " ".join(sys.argv[2:]),
        machine=machine_description(),
        wall_seconds=time.time() - started,
        failures=study.failures,
    )
    if config.cooldowns:
        write_cooldown_report(
            records,
            config,
            report_dir,
            downstream_baselines=study.downstream_baselines(),
            corpus=study.corpus_size(),
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


class StudyUnitsFailed(ValueError):
    """Units of a study failed (the report is written, and marks them; a later run tries them again)."""

    def __init__(self, failures: list[dict], report: Path):
        self.failures, self.report = failures, report
        lines = [f"{f['variant']} (seed {f['seed']}): {f['error']}" for f in failures]
        super().__init__(
            f"{len(failures)} unit(s) failed; the report {report} marks them, and running the study again "
            "retries them:\n" + "\n".join(f"  {line}" for line in lines)
        )


__all__ = ["StudyUnitsFailed", "compare"]
