"""The study: does ODE-BERT beat BERT? Pretrain BERT and ODE variants under one recipe, fine-tune each.

One YAML file describes a study (``config.py``): the pretraining recipe shared by every run, the
variants, the seeds, the downstream protocol, the depth-elasticity step counts, and an optional warm start
from a real pretrained BERT. ``compare`` runs every (variant, seed) unit, writes one record per finished unit
(``records.py``), and skips finished units when run again (an interrupted study resumes; a pretraining
run interrupted mid-way resumes from its last checkpoint). The report (``report.py``) is built from the
records alone.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..finetune.protocol import finetune
from ..modeling_bert_ode import BertOdeForMaskedLM
from ..pretrain.config import PretrainConfig
from ..pretrain.data import load_training_corpus, train_run_tokenizer
from ..pretrain.loop import PretrainResult, ValidationLoss, pretrain, validation_loss
from ..pretrain.mlm_loss import SparseMlmLoss
from ..solvers import ADAPTIVE_METHODS
from ..utils.config_io import to_dict
from ..utils.device import (
    ComputeInfo,
    cpu_capability,
    cpu_supports_bf16,
    inference_device,
    precision_name,
    resolve_precision,
)
from .baselines import baseline_scores
from .config import StudyConfig, Variant
from .records import CurvePoint, FinetuneScores, PretrainUnit, StudyPin, SweepUnit, UnitRecord, WarmUnit

# ------------------------------------------------------------------------------------------------------------
# Measuring one run
# ------------------------------------------------------------------------------------------------------------


def training_flops_per_token(model, seq_len: int, mlm_probability: float) -> float:
    """Forward+backward FLOPs per token of one pretraining step, counted by ``torch.utils.flop_counter`` on a
    batch (eager attention, so that attention's matrix products are counted; the MLM head on masked positions
    only, as in training). Adaptive solvers: measured on the given model's current weights."""
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


def mlm_by_ode_steps(run_dir: Path, model, steps: list[int]) -> dict[str, ValidationLoss]:
    """Validation MLM loss of a finished run with each step count (and its own), keyed by the count."""
    trained = model.config.ode_steps
    evaluations = {}
    for count in sorted(set(steps) | {trained}):
        if model.config.ode_method in ADAPTIVE_METHODS and count != trained:
            continue  # adaptive solvers choose their own steps
        evaluations[str(count)] = validation_loss(run_dir, ode_steps=count)
    return evaluations


def read_curve(log_csv: Path) -> list[CurvePoint]:
    """The validation evaluations of a pretraining run's ``log.csv``."""
    if not log_csv.is_file():
        return []
    with open(log_csv, newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("val_loss")]
    return [
        CurvePoint(
            step=int(r["step"]),
            tokens=int(r["tokens"]),
            elapsed_s=float(r["elapsed_s"]),
            val_loss=float(r["val_loss"]),
        )
        for r in rows
    ]


# ------------------------------------------------------------------------------------------------------------
# Running the units
# ------------------------------------------------------------------------------------------------------------


def unit_key(variant: str, seed: int, budget: int | None = None, lr: float | None = None) -> str:
    """A unit's name in record files and run folders: ``bert--tokens-4000000--seed-0`` (the budget and
    learning rate only where the study sets them, so records of single-budget studies keep their names)."""
    parts = [variant]
    if budget is not None:
        parts.append(f"tokens-{budget}")
    if lr is not None:
        parts.append(f"lr-{lr:g}")
    return "--".join([*parts, f"seed-{seed}"])


def _unit_identity(variant: Variant, seed: int) -> dict:
    """The fields every unit record starts with: which model, which seed."""
    return {"variant": variant.name, "seed": seed, "model_overrides": variant.model}


class Study:
    """Runs the units of a study; one JSON record per finished unit under ``runs_dir/<name>/records``."""

    def __init__(self, config: StudyConfig, progress: bool = True):
        self.config = config
        self.progress = progress
        self.root = config.root
        self.records_dir = self.root / "records"
        # Resolved once; ``share_tokenizer_and_data`` replaces it (before any unit runs) by the same recipes
        # reading the study's one tokenizer.
        self.recipes = config.recipes
        self._task = None
        self.failures: list[dict] = []

    def _record_path(self, kind: str, key: str) -> Path:
        return self.records_dir / f"{kind}--{key}.json"

    def _finished(self, record_type: type, key: str, planned: PretrainConfig | None = None):
        """The unit's record where it has finished; with ``planned`` (the run this study would make now), a
        record made under another recipe is an error rather than a result silently reused for this one."""
        path = self._record_path(record_type.kind, key)
        if not path.is_file():
            return None
        record = record_type.read_json(path)
        if planned is not None and getattr(record, "config", None) is not None:
            changed = recipe_changes(record.config, planned)
            if changed:
                raise ValueError(
                    f"{path} was made under another recipe ({'; '.join(changed)}): move the records folder "
                    "away (or name the study anew) to run this one"
                )
        return record

    def _write(self, record, key: str | None = None):
        # Atomic: a record exists only once complete, so an interrupted unit runs again.
        path = (
            self._record_path(record.kind, key)
            if key is not None
            else self.records_dir / f"{record.kind}.json"
        )
        record.write_json(path)
        return record

    def task(self):
        """The downstream task, loaded once for every unit."""
        if self._task is None:
            self._task = self.recipes.finetune.load_task()
        return self._task

    def _finetune(self, checkpoint: str, seed: int, warm: bool = False, **per_unit) -> dict:
        options = self.recipes.finetune_run(checkpoint, seed, warm=warm, progress=self.progress, **per_unit)
        return finetune(options, task_data=self.task())

    # -- units -----------------------------------------------------------------------------------------------
    def sweep_unit(self, variant: Variant, lr: float) -> SweepUnit:
        """One learning rate for ``variant`` at the sweep budget, first seed: pretraining only."""
        budget, seed = self.config.sweep_at(), self.config.seeds[0]
        key = unit_key(variant.name, seed, budget, lr)
        done = self._finished(SweepUnit, key)
        if done is not None:
            return done
        run_dir = self.root / "sweep" / key
        result = self._pretrain(variant, seed, run_dir, budget, lr)
        data = result.config.data
        flops = training_flops_per_token(result.model, data.seq_len, data.mlm_probability) * result.tokens
        record = SweepUnit(
            variant=variant.name,
            seed=seed,
            budget_tokens=budget,
            lr=lr,
            # A run resumed after its end evaluates nothing itself: score its final model.
            val_loss=result.val_loss if result.val_loss is not None else validation_loss(run_dir).val_loss,
            train_flops=flops,
            config=result.config,
            compute=result.compute,
        )
        return self._write(record, key)

    def best_lr(self, variant: Variant) -> float | None:
        """The swept learning rate of lowest validation loss for ``variant``; ``None`` without a sweep."""
        tried = [self.sweep_unit(variant, lr) for lr in self.config.sweep_lrs]
        tried = [unit for unit in tried if unit.val_loss is not None]
        return min(tried, key=lambda unit: unit.val_loss).lr if tried else None

    def pretrain_unit(self, variant: Variant, seed: int, budget: int | None = None) -> PretrainUnit:
        key = unit_key(variant.name, seed, budget)
        done = self._finished(PretrainUnit, key)
        if done is not None:
            return done
        lr = self.best_lr(variant)
        run_dir = self.root / "pretrain" / key.replace("--", "/")
        if lr is not None and budget == self.config.sweep_at() and seed == self.config.seeds[0]:
            # The sweep already trained this very run (same variant, budget, seed and rate): reuse it.
            run_dir = self.root / "sweep" / unit_key(variant.name, seed, budget, lr)
        result = self._pretrain(variant, seed, run_dir, budget, lr)
        data = result.config.data
        model = BertOdeForMaskedLM.from_pretrained(result.final_dir)
        flops_per_token = training_flops_per_token(model, data.seq_len, data.mlm_probability)
        parameters = sum(p.numel() for p in model.parameters())
        evaluations = mlm_by_ode_steps(run_dir, model, self.config.elasticity_steps)
        trained = evaluations.get(str(model.config.ode_steps))
        del model

        print(f"== compare: fine-tuning {variant.name} (seed {seed})", file=sys.stderr)
        tuned = self._finetune(str(result.final_dir), seed)
        return self._write(
            PretrainUnit(
                **_unit_identity(variant, seed),
                compute_match=variant.compute_match,
                run_dir=str(run_dir),
                parameters=parameters,
                steps=result.steps,
                tokens=result.tokens,
                train_seconds=result.train_seconds,
                tokens_per_second=result.tokens_per_second,
                # A run resumed after its end (or reused from the sweep) evaluates nothing itself; the same
                # blocks and masks were just scored at the trained step count.
                val_loss=result.val_loss
                if result.val_loss is not None
                else getattr(trained, "val_loss", None),
                val_ppl=result.val_ppl if result.val_ppl is not None else getattr(trained, "val_ppl", None),
                nfe_per_forward=trained.nfe if trained else None,
                unigram_entropy=trained.unigram_entropy if trained else None,
                train_flops_per_token=flops_per_token,
                train_flops=flops_per_token * result.tokens,
                curve=read_curve(run_dir / "log.csv"),
                mlm_by_ode_steps=evaluations,
                finetune=FinetuneScores.of(tuned),
                budget_tokens=budget,
                lr=lr,
                config=result.config,
                compute=result.compute,
            ),
            key,
        )

    def _pretrain(
        self, variant: Variant, seed: int, run_dir: Path, budget: int | None = None, lr: float | None = None
    ) -> PretrainResult:
        """Pretrains one variant, or resumes its interrupted run from the last checkpoint."""
        config = self.recipes.pretrain_run(variant, seed, run_dir, budget, lr, progress=self.progress)
        resume = (run_dir / "checkpoints").is_dir()
        self.share_data_cache(run_dir)
        print(f"\n== compare: pretraining {variant.name} (seed {seed}) -> {run_dir}", file=sys.stderr)
        return pretrain(config, resume=resume)

    def share_data_cache(self, run_dir: Path) -> None:
        """Lets the run in ``run_dir`` read (and write) the study's one cache of packed blocks, which every
        run of the same data shares, instead of packing the corpus again."""
        shared_cache = self.root / "data-cache"
        shared_cache.mkdir(parents=True, exist_ok=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        if not (run_dir / "data-cache").exists():
            (run_dir / "data-cache").symlink_to(shared_cache.resolve(), target_is_directory=True)

    def warm_start_unit(self, variant: Variant, seed: int) -> WarmUnit:
        key = unit_key(variant.name, seed)
        done = self._finished(WarmUnit, key)
        if done is not None:
            return done
        warm, source = self.config.warm_start, self.config.warm_start.source()
        checkpoint, ode_overrides, config, compute = source, variant.model, None, None
        val_loss = unigram = None
        curve = []
        if warm.continue_tokens is not None:
            run_dir = self.root / "warm" / key.replace("--", "/")
            config = self.recipes.warm_run(
                variant, seed, run_dir, source, warm.continue_tokens, progress=self.progress
            )
            print(
                f"\n== compare: continued pretraining {variant.name} (seed {seed}) from {source}",
                file=sys.stderr,
            )
            result = pretrain(config, resume=(run_dir / "checkpoints").is_dir())
            # Scored again on the run's own blocks and masks: the loss and, beside it, the unigram entropy
            # of the same blocks (whether the BERT is trained beyond word frequencies decides the verdicts).
            scored = validation_loss(run_dir)
            checkpoint, ode_overrides, compute = str(result.final_dir), {}, result.compute
            val_loss, unigram = scored.val_loss, scored.unigram_entropy
            curve = read_curve(run_dir / "log.csv")
        print(f"\n== compare: warm start {variant.name} (seed {seed}) from {checkpoint}", file=sys.stderr)
        tuned = self._finetune(checkpoint, seed, warm=True, ode_overrides=ode_overrides)
        return self._write(
            WarmUnit(
                **_unit_identity(variant, seed),
                source=warm.checkpoint,
                parameters=tuned["model"]["parameters"],
                finetune=FinetuneScores.of(tuned),
                continued_tokens=warm.continue_tokens,
                val_loss=val_loss,
                unigram_entropy=unigram,
                curve=curve,
                config=config,
                compute=compute,
            ),
            key,
        )

    def pin_precision(self) -> str:
        """Resolves the study's ``precision`` once, when it starts, and keeps every later part to it: a part
        on a machine where it resolves to another precision is refused (one study never mixes precisions)."""
        here = precision_name(resolve_precision(self.config.precision, inference_device()))
        path = self.records_dir / "study.json"
        if not path.is_file():
            self._write(StudyPin(precision=here, decided_on=ComputeInfo.of(_dtype(here), inference_device())))
        pin = StudyPin.read_json(path)
        if pin.precision != here:
            machine = pin.decided_on
            raise ValueError(
                f"study {self.config.name!r} computes in {pin.precision}, pinned when it started "
                f"({machine.cpu}, {machine.cpu_capability}); here precision={self.config.precision} means "
                f"{here} ({cpu_capability()}, native bf16: {'yes' if cpu_supports_bf16() else 'no'}). Go on "
                f"in the study's precision with --set precision={pin.precision}"
                + (" (emulated here: many times slower)" if pin.precision == "bf16" else "")
                + ", or start a new study with --set name=<another name>"
            )
        self.recipes = self.recipes.with_precision(pin.precision)
        return pin.precision

    def share_tokenizer_and_data(self) -> None:
        """Trains the tokenizer once for the whole study (unless the recipe names one) and lets every run
        share one cache of packed blocks: same data, same tokenizer, less waiting."""
        recipe = self.recipes.pretrain
        if recipe.tokenizer.path or recipe.train.init_from or not self.config.variants:
            return  # a warm-start-only study keeps its checkpoint's tokenizer
        tokenizer_dir = self.root / "tokenizer"
        if not (tokenizer_dir / "tokenizer.json").is_file():
            train_run_tokenizer(recipe, self.root, load_training_corpus(recipe.data))
        self.recipes = self.recipes.with_tokenizer(tokenizer_dir)

    def downstream_baselines(self) -> dict:
        """Majority class and TF-IDF + logistic regression on the study's task splits, computed once."""
        path = self.records_dir / "downstream-baselines.json"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            staging = path.with_name(f".{path.name}.tmp{os.getpid()}")
            staging.write_text(json.dumps(baseline_scores(self.task()), indent=2) + "\n", encoding="utf-8")
            os.replace(staging, path)
        return json.loads(path.read_text(encoding="utf-8"))

    def run(self) -> list[UnitRecord]:
        """Every unit: the learning-rate sweep, then the budgets from the smallest up, seed-major within a
        budget (after one pass every variant has a first result to look at); the warm start with the last."""
        self.pin_precision()
        self.share_tokenizer_and_data()
        records = []
        budgets = self.config.budget_list()
        for budget in budgets:
            for seed in self.config.seeds_for(budget):
                units = [(self.pretrain_unit, variant, (seed, budget)) for variant in self.config.variants]
                if budget == budgets[-1] and seed in self.config.warm_seeds():  # [] without a warm start
                    units += [(self.warm_start_unit, v, (seed,)) for v in self.config.warm_start.variants]
                records += self._run_units(units)
        return records

    def records(self) -> list[UnitRecord]:
        """Every finished pretraining and warm-start unit's record on disk (the report covers all)."""
        kinds = (PretrainUnit, WarmUnit)
        return [
            kind.read_json(path)
            for kind in kinds
            for path in sorted(self.records_dir.glob(f"{kind.kind}--*.json"))
        ]

    def sweep_records(self) -> list[SweepUnit]:
        """The finished sweep units (run by ``pretrain_unit`` through ``best_lr``)."""
        return [SweepUnit.read_json(path) for path in sorted(self.records_dir.glob("sweep--*.json"))]

    def _run_units(self, units) -> list[UnitRecord]:
        finished = []
        for unit, variant, args in units:
            try:
                finished.append(unit(variant, *args))
            except Exception as error:  # noqa: BLE001 - one failed run must not lose the others
                # Not a record: a later run of the study tries this unit again.
                where = f"{variant.name} ({', '.join(str(a) for a in args if a is not None)})"
                print(f"== compare: {where} FAILED: {type(error).__name__}: {error}", file=sys.stderr)
                self.failures.append(
                    {"variant": variant.name, "seed": args[0], "error": f"{type(error).__name__}: {error}"}
                )
        return finished


# What a finished run's record must share with the run planned now for it to stand in for that run: what
# shapes the model and the data it learns from, not where it is written, how far it ran or how it reports.
RECIPE_FIELDS = {
    "data": (
        "files",
        "dataset",
        "dataset_config",
        "max_train_tokens",
        "seq_len",
        "mlm_probability",
        "whole_word_mask",
        "validation_files",
    ),
    "tokenizer": ("vocab_size", "lowercase"),
    "train": (
        "seed",
        "batch_size",
        "grad_accum",
        "lr",
        "betas",
        "eps",
        "weight_decay",
        "warmup_fraction",
        "warmup_tokens",
        "max_grad_norm",
        "init_from",
    ),
}


def recipe_changes(recorded: PretrainConfig, planned: PretrainConfig) -> list[str]:
    """``section.field recorded -> planned`` for each recipe field (and model override) that differs."""
    old, new = to_dict(recorded), to_dict(planned)
    changes = [
        f"{section}.{name} {old[section].get(name)!r} -> {new[section].get(name)!r}"
        for section, names in RECIPE_FIELDS.items()
        for name in names
        if old[section].get(name) != new[section].get(name)
    ]
    for name in sorted(set(old["model"]) | set(new["model"])):
        if old["model"].get(name) != new["model"].get(name):
            changes.append(f"model.{name} {old['model'].get(name)!r} -> {new['model'].get(name)!r}")
    return changes


def _dtype(precision: str) -> torch.dtype | None:
    return torch.bfloat16 if precision == "bf16" else None


def machine_description() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


__all__ = ["Study", "machine_description", "recipe_changes", "training_flops_per_token"]
