"""The study's records: what one unit writes (``runs_dir/<study>/records/*.json``) and what the report
sums up.

A *unit* is one variant with one seed: ``PretrainUnit`` (pretrained here, then fine-tuned) or ``WarmUnit``
(a converted pretrained BERT, fine-tuned). Its record file exists only once the unit has finished, so a re-run
of the study skips it; the field names are the JSON keys, unchanged since the first study, so old records
still read. The summary types (``StudySummary`` and its rows) are the ``summary`` half of the report's
``results.json``. Score mappings (``validation``, ``test``) are metric name -> value, plus ``nfe``,
``examples`` and ``seconds``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..pretrain.config import PretrainConfig
from ..pretrain.loop import ValidationLoss
from ..pretrain.probes import ProbePoint
from ..utils.device import ComputeInfo
from ..utils.metrics import SeedStats
from ..utils.records import Record
from .scaling import PowerLawFit

Scores = dict[str, float | None]


@dataclass
class CurvePoint(Record):
    """One validation evaluation during pretraining (a row of the run's ``log.csv``)."""

    step: int
    tokens: int
    elapsed_s: float
    val_loss: float


@dataclass
class FinetuneScores(Record):
    """One seed's fine-tuning, reduced to what the study reports."""

    main_metric: str
    validation: Scores
    test: Scores
    by_ode_steps: dict[str, Scores]  # step count -> test scores of the fine-tuned model re-run with it
    finetune_seconds: float | None = None
    compute: ComputeInfo | None = (
        None  # how the fine-tuning computed (None: a record from before it was kept)
    )
    # the step of the model kept, of how many, and the validation score at each evaluation (None / []: a
    # record from before they were kept): whether the protocol converged is read from these
    best_step: int | None = None
    max_steps: int | None = None
    selection_history: list[dict[str, float]] = field(default_factory=list)

    @classmethod
    def of(cls, results) -> FinetuneScores:
        """From the results of ``finetune`` with one seed."""
        run = results["runs"][0]
        return cls.from_dict(
            {
                "main_metric": results["main_metric"],
                "validation": run["validation"],
                "test": run["test"],
                "by_ode_steps": {str(steps): scores["test"] for steps, scores in run["by_ode_steps"].items()},
                "finetune_seconds": run["train_seconds"],
                "compute": results["compute"],
                "best_step": run["best_step"],
                "max_steps": run["max_steps"],
                "selection_history": run["selection_history"],
            }
        )


@dataclass(kw_only=True)
class _Unit(Record):
    """What every unit record holds: which model, which seed, and how it fine-tuned."""

    kind: str
    variant: str
    seed: int
    model_overrides: dict[str, Any]
    parameters: int
    finetune: FinetuneScores


@dataclass(kw_only=True)
class PretrainUnit(_Unit):
    """One variant pretrained with one seed under the study's recipe, measured, then fine-tuned."""

    kind: str = "pretrain"
    compute_match: str | None
    run_dir: str
    steps: int
    tokens: int
    train_seconds: float
    tokens_per_second: float
    val_loss: float | None
    val_ppl: float | None
    nfe_per_forward: int | None  # vector-field evaluations of one forward pass, at the trained step count
    train_flops_per_token: float  # forward + backward, counted (``compare.training_flops_per_token``)
    train_flops: float  # train_flops_per_token x tokens
    curve: list[CurvePoint]
    mlm_by_ode_steps: dict[str, ValidationLoss]  # step count -> validation MLM loss with it
    unigram_entropy: float | None = None  # of the validation blocks: the loss of word frequencies alone
    budget_tokens: int | None = None  # the study budget this run belongs to (None: the recipe's budget)
    lr: float | None = None  # the peak learning rate it trained with (None: the recipe's)
    config: PretrainConfig | None = None  # what it ran with (None: a record from before it was kept)
    compute: ComputeInfo | None = None  # how and where its pretraining computed (None: an older record)


@dataclass(kw_only=True)
class WarmUnit(_Unit):
    """One conversion of a pretrained BERT, fine-tuned with one seed (no pretraining)."""

    kind: str = "warm"
    source: str  # ``WarmStart.checkpoint``
    continued_tokens: int | None = None  # MLM tokens of continued pretraining before fine-tuning (None: none)
    val_loss: float | None = None  # validation MLM loss after the continued pretraining
    unigram_entropy: float | None = None  # of the blocks val_loss was scored on (None: none, or older)
    curve: list[CurvePoint] = field(default_factory=list)  # the continued pretraining's evaluations
    config: PretrainConfig | None = None  # of the continued pretraining (None: none, or an older record)
    compute: ComputeInfo | None = None  # how the continued pretraining computed


@dataclass(kw_only=True)
class SweepUnit(Record):
    """One learning rate tried for one variant at the smallest budget (pretraining only, no fine-tuning)."""

    kind: str = "sweep"
    variant: str
    seed: int
    budget_tokens: int | None
    lr: float
    val_loss: float | None
    train_flops: float
    config: PretrainConfig | None = None  # what it ran with (None: a record from before it was kept)
    compute: ComputeInfo | None = None  # how and where its pretraining computed (None: an older record)


@dataclass(kw_only=True)
class ConstantRun(Record):
    """A ``cooldowns`` study's constant-rate run of one variant and seed: its whole validation curve and the
    probes at each evaluation (the plateau escape is read from these), and what a token of it costs."""

    kind: str = "constant"
    variant: str
    seed: int
    model_overrides: dict[str, Any]
    escape_only: (
        bool  # run to ``escape_tokens`` with no cooldowns: an escape seed, or an arm without cooldowns
    )
    tokens: int
    train_flops_per_token: float  # forward + backward, counted
    train_seconds: float
    tokens_per_second: float
    unigram_entropy: float | None  # of the validation blocks
    curve: list[CurvePoint]
    probes: list[ProbePoint]
    parameters: int
    config: PretrainConfig | None = None
    compute: ComputeInfo | None = None


@dataclass(kw_only=True)
class BranchUnit(Record):
    """One cooldown branched off a constant-rate run: the model a warmup-stable-decay schedule of
    ``budget_tokens`` gives, its validation loss (and at other step counts) and, where the study fine-tunes at
    this budget, its downstream scores."""

    kind: str = "branch"
    variant: str
    seed: int
    budget_tokens: int
    branched_at_tokens: int  # where the cooldown left the constant-rate run
    val_loss: float
    train_loss: float  # the mean training loss of the cooldown's last logging window
    train_flops: float  # train_flops_per_token x budget_tokens
    curve: list[CurvePoint]  # the cooldown's own evaluations
    mlm_by_ode_steps: dict[str, ValidationLoss]
    finetune: FinetuneScores | None = None
    config: PretrainConfig | None = None
    compute: ComputeInfo | None = None
    # learned scheme coefficients as trained (ab2-learned's, PCformer's EMA alpha): parameter name -> values
    learned: dict[str, list[float]] = field(default_factory=dict)


@dataclass(kw_only=True)
class ControlUnit(_Unit):
    """The downstream control: an encoder of the study's size, randomly initialised (no pretraining),
    fine-tuned like every other unit. What pretraining adds is measured against it."""

    kind: str = "control"


@dataclass(kw_only=True)
class StudyPin(Record):
    """What a study fixes when it starts and every later part must keep (``records/study.json``): the
    precision every unit computes in (``precision: auto`` resolved once), and where that was decided."""

    kind: str = "study"
    precision: str  # bf16 or fp32
    decided_on: ComputeInfo


UnitRecord = PretrainUnit | WarmUnit

# A figure over seeds; ``None`` where no finished seed has it.
Stats = SeedStats | None


@dataclass
class EqualComputeVerdict(Record):
    """An ODE variant against the deeper BERT that matches it in compute."""

    val_loss: str
    test: str


@dataclass(kw_only=True)
class PretrainSummary(Record):
    """One pretrained variant over its seeds; verdicts and paired deltas are against the baseline (``None``
    for the baseline itself)."""

    model_overrides: dict[str, Any]
    compute_match: str | None
    parameters: int
    seeds: list[int]
    val_loss: Stats
    val_ppl: Stats
    test: Stats
    validation: Stats
    train_seconds: Stats
    tokens_per_second: Stats
    tokens: int
    train_flops: Stats
    nfe_per_forward: Stats
    mlm_by_ode_steps: dict[str, Stats]
    test_by_ode_steps: dict[str, Stats]
    # Paired by seed (same seed: same data order and masks): this variant minus the baseline.
    paired_delta_val_loss: Stats = None
    paired_delta_test: Stats = None
    # 95% paired-t confidence intervals of the two deltas' means, [low, high].
    paired_delta_val_loss_ci95: list[float] | None = None
    paired_delta_test_ci95: list[float] | None = None
    below_unigram: Stats = None  # nats below the validation set's unigram entropy, per seed
    # Per seed (in ``seeds`` order): tokens seen when the validation loss first was TRAINED_MARGIN below the
    # unigram entropy (None: not within the run). A plateau is left abruptly, so this is where runs differ.
    tokens_to_trained: list[int | None] = field(default_factory=list)
    verdict_val_loss: str | None = None
    verdict_test: str | None = None
    # Compute-matched variant name -> this variant's verdicts against it; JSON keys ``verdict_vs_<name>``.
    verdicts_vs: dict[str, EqualComputeVerdict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        values = super().to_dict()
        for name, verdicts in values.pop("verdicts_vs").items():
            values["verdict_vs_" + name] = verdicts
        return values


@dataclass(kw_only=True)
class WarmSummary(Record):
    """One warm-start conversion over its seeds; the verdicts are against the first one (the BERT itself)."""

    model_overrides: dict[str, Any]
    parameters: int
    seeds: list[int]
    test: Stats
    validation: Stats
    test_by_ode_steps: dict[str, Stats]
    verdict_test: str | None = None
    continued_tokens: int | None = None  # MLM tokens of continued pretraining before fine-tuning
    val_loss: Stats = None  # validation MLM loss after it
    unigram_entropy: float | None = None  # of its validation blocks (the checkpoint's tokenizer)
    verdict_val_loss: str | None = None  # equal parameters, equal continued tokens


@dataclass
class ScalingPoint(Record):
    """One variant at one budget, over its seeds."""

    budget_tokens: int
    train_flops: float  # mean over seeds
    val_loss: Stats
    test: Stats = (
        None  # the main downstream metric on the test split (absent in summaries before it was kept)
    )


@dataclass
class VariantScaling(Record):
    """A variant's validation loss against training FLOPs, its fitted curve, and its gap to the baseline at
    its own FLOPs: read off the baseline's measured curve (``StudySummary.baseline_curve``) between its
    points, or off the baseline's fit beyond them where that fit describes its points; ``None`` where neither
    can."""

    points: list[ScalingPoint]
    fit: PowerLawFit | None = None
    gap_to_baseline: list[float | None] = field(default_factory=list)
    # The loss falls faster at the larger budgets (``scaling.bends_down``): still leaving the plateau, so the
    # power law does not describe these points and its parameters estimate nothing.
    bends_down: bool = False


@dataclass
class StudySummary(Record):
    """Every variant's statistics over seeds and verdicts: ``results.json["summary"]``."""

    pretrain: dict[str, PretrainSummary]
    warm: dict[str, WarmSummary]
    metric: str | None  # the task's main metric; ``None`` before any unit has finished
    unigram_entropy: float | None = None  # of the validation blocks (records written before it: None)
    # baseline name -> split -> metric -> value, for models that need no pretraining (baselines.py).
    downstream_baselines: dict[str, dict[str, dict[str, float]]] | None = None
    scaling: dict[str, VariantScaling] = field(default_factory=dict)  # with two budgets or more
    # The baseline's loss against FLOPs from every run of its architecture: its own budgets and those of the
    # variants that train it on more tokens (BERT on 2x the tokens is BERT at twice the budget).
    baseline_curve: VariantScaling | None = None
    baseline_curve_from: list[str] = field(default_factory=list)  # the variants whose runs it holds
    sweep: dict[str, dict[str, float | None]] = field(default_factory=dict)  # variant -> lr -> val loss
    compute: dict[str, int] = field(
        default_factory=dict
    )  # how the units computed -> how many (compute_census)

    def to_dict(self) -> dict:
        return {
            "pretrain": {name: row.to_dict() for name, row in self.pretrain.items()},
            "warm": {name: row.to_dict() for name, row in self.warm.items()},
            "metric": self.metric,
            "unigram_entropy": self.unigram_entropy,
            "downstream_baselines": self.downstream_baselines,
            "scaling": {name: row.to_dict() for name, row in self.scaling.items()},
            "baseline_curve": None if self.baseline_curve is None else self.baseline_curve.to_dict(),
            "baseline_curve_from": self.baseline_curve_from,
            "sweep": self.sweep,
            "compute": self.compute,
        }


# Every kind of unit record a study writes (its ``kind`` field names it in the JSON files).
RECORD_TYPES = (PretrainUnit, WarmUnit, ConstantRun, BranchUnit, ControlUnit)

__all__ = [
    "RECORD_TYPES",
    "BranchUnit",
    "ConstantRun",
    "ControlUnit",
    "CurvePoint",
    "EqualComputeVerdict",
    "FinetuneScores",
    "PretrainSummary",
    "PretrainUnit",
    "Scores",
    "Stats",
    "StudyPin",
    "StudySummary",
    "UnitRecord",
    "WarmSummary",
    "WarmUnit",
]
