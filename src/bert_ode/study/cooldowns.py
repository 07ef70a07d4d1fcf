"""A ``cooldowns`` study: one constant-rate run per variant and seed, cooldowns branched off it.

Warmup-stable-decay (Hägele et al., NeurIPS 2024) gives every budget from one run: the constant-rate run
is the schedule before its cooldown, so a cooldown of the last ``cooldown_fraction`` of a budget, branched off
the constant-rate run's checkpoint where that cooldown begins, is the run a ``wsd`` schedule of that budget
makes from the start (``tests/test_wsd.py``). A unit (one variant, one seed) runs the constant-rate run up to
each branch point in turn, branches the cooldown there (a ``BranchUnit`` record, fine-tuned where the study
says), and ends with the ``ConstantRun`` record: the whole constant-rate validation curve and its probes, from
which the plateau escape is read. Escape seeds run the constant-rate run alone, to ``escape_tokens``.

A unit interrupted mid-way resumes from its runs' checkpoints; its finished cooldowns are records and are not
run again.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import torch
from accelerate import PartialState

from ..data.mlm import pack_sequences
from ..finetune.task_loading import load_task_tokenizer
from ..modeling_bert_ode import BertOdeForMaskedLM
from ..pretrain.checkpointing import checkpoint_dir
from ..pretrain.config import model_config
from ..pretrain.data import load_training_corpus, seed_for
from ..pretrain.loop import PROBES_FILE, PretrainResult, pretrain, validation_loss
from ..pretrain.probes import read_probes
from .baselines import baseline_scores, first_tokens
from .config import Variant
from .records import BranchUnit, ConstantRun, ControlUnit, FinetuneScores, WarmUnit
from .runner import Study, mlm_by_ode_steps, read_curve, training_flops_per_token, unit_key


class CooldownStudy(Study):
    """The units of a ``cooldowns`` study; ``run`` returns the ``ConstantRun`` and ``BranchUnit`` records."""

    def run(self) -> list:
        self.pin_precision()
        self.share_tokenizer_and_data()
        config, units = self.config, []
        for seed in config.seeds:
            running = [v for v in self._running(config.variants) if v.runs_seed(seed)]
            units += [(self.constant_unit, variant, (seed,)) for variant in running]
        for seed in config.escape_seeds:
            escaping = [v for v in config.variants if v.escape]
            units += [(self.constant_unit, variant, (seed, True)) for variant in self._running(escaping)]
        if config.selects("random-init"):
            units += [(self.control_unit, _CONTROL, (seed,)) for seed in config.random_init_seeds]
        if config.warm_start is not None:
            for seed in config.warm_seeds():
                warm = self._running(config.warm_start.variants)
                units += [(self.warm_start_unit, variant, (seed,)) for variant in warm]
        self._run_units([unit for unit in units if self._selected_seed(unit[2][0])])
        return self.records()

    def records(self) -> list:
        """Every finished unit's record on disk, this part's and earlier ones' (the report covers all)."""
        kinds = (ConstantRun, BranchUnit, ControlUnit, WarmUnit)
        return [
            kind.read_json(path)
            for kind in kinds
            for path in sorted(self.records_dir.glob(f"{kind.kind}--*.json"))
        ]

    def _running(self, variants: list[Variant]) -> list[Variant]:
        return [v for v in variants if self.config.selects(v.name)]

    def _selected_seed(self, seed: int) -> bool:
        return not self.config.only_seeds or seed in self.config.only_seeds

    def downstream_baselines(self) -> dict:
        """The majority class and TF-IDF on the whole texts, and TF-IDF on the first tokens the encoders see
        (``finetune.max_seq_length`` tokens of the study's tokenizer): the same words for both."""
        path = self.records_dir / "downstream-baselines.json"
        if not path.is_file():
            length = self.recipes.finetune.max_seq_length
            tokenizer = load_task_tokenizer(self.recipes.pretrain.tokenizer.path)
            scores = baseline_scores(self.task())
            cut = baseline_scores(self.task(), shorten=first_tokens(tokenizer, length))
            scores[f"tfidf-logreg (first {length} tokens)"] = cut["tfidf-logreg"]
            self._write_json(path, scores)
        return json.loads(path.read_text(encoding="utf-8"))

    def corpus_size(self) -> dict | None:
        """The training and validation splits in packed blocks (how many passes a budget is), counted once
        into ``records/corpus.json`` so that the report stays a function of the records; ``None`` for a
        streamed corpus, which is never held whole."""
        path = self.records_dir / "corpus.json"
        recipe = self.recipes.pretrain
        if recipe.data.streaming:
            return None
        if not path.is_file():
            corpus = load_training_corpus(recipe.data)
            tokenizer = load_task_tokenizer(recipe.tokenizer.path or recipe.train.init_from)
            seq_len = recipe.data.seq_len
            train = len(pack_sequences(tokenizer, corpus.train, seq_len))
            validation = len(pack_sequences(tokenizer, corpus.validation, seq_len))
            sizes = {"seq_len": seq_len, "train_blocks": train, "validation_blocks": validation}
            self._write_json(path, {**sizes, "train_tokens": train * seq_len})
        return json.loads(path.read_text(encoding="utf-8"))

    def _write_json(self, path: Path, values: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.tmp{os.getpid()}")
        staging.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
        os.replace(staging, path)

    # -- the schedule's arithmetic -------------------------------------------------------------------------
    @property
    def tokens_per_step(self) -> int:
        recipe = self.recipes.pretrain
        processes = PartialState().num_processes
        return recipe.train.batch_size * recipe.train.grad_accum * recipe.data.seq_len * processes

    def branch_step(self, budget: int) -> int:
        """The step where the cooldown of a ``budget``-token wsd run begins: the rate is the peak before it in
        both runs, so branching there gives the wsd run itself."""
        total = math.ceil(budget / self.tokens_per_step)
        return math.floor((1 - self.config.cooldown_fraction) * total)

    # -- units ---------------------------------------------------------------------------------------------
    def constant_unit(self, variant: Variant, seed: int, escape_only: bool = False) -> ConstantRun:
        key = unit_key(variant.name, seed)
        run_dir = self.root / "constant" / key.replace("--", "/")
        planned = self.recipes.pretrain_run(variant, seed, run_dir, progress=False)
        done = self._finished(ConstantRun, key, planned)
        if done is not None:
            return done
        budgets = [] if escape_only else self.config.cooldowns_of(variant)
        result = None
        if not budgets:  # an escape seed, or an arm without cooldowns (a sensitivity or ablation arm)
            result = self._constant_to(variant, seed, run_dir, self.config.escape_tokens)
        for budget in budgets:
            step = self.branch_step(budget)
            result = self._constant_to(variant, seed, run_dir, step * self.tokens_per_step)
            self.branch_unit(variant, seed, budget, checkpoint_dir(run_dir, step))
        return self._write(self._constant_record(variant, seed, not budgets, run_dir, result), key)

    def _constant_to(self, variant: Variant, seed: int, run_dir: Path, tokens: int) -> PretrainResult:
        config = self.recipes.constant_run(variant, seed, run_dir, tokens, progress=self.progress)
        self.share_data_cache(run_dir)
        print(
            f"\n== compare: {variant.name} (seed {seed}) at a constant rate to {tokens:,} tokens",
            file=sys.stderr,
        )
        return pretrain(config, resume=(run_dir / "checkpoints").is_dir())

    def _constant_record(
        self, variant: Variant, seed: int, escape_only: bool, run_dir: Path, result: PretrainResult
    ) -> ConstantRun:
        data = result.config.data
        model = BertOdeForMaskedLM.from_pretrained(result.final_dir)
        unigram = validation_loss(run_dir).unigram_entropy
        return ConstantRun(
            variant=variant.name,
            seed=seed,
            model_overrides=variant.model,
            escape_only=escape_only,
            tokens=result.tokens,
            train_flops_per_token=training_flops_per_token(model, data.seq_len, data.mlm_probability),
            train_seconds=result.train_seconds,
            tokens_per_second=result.tokens_per_second,
            unigram_entropy=unigram,
            curve=read_curve(run_dir / "log.csv"),
            probes=read_probes(run_dir / PROBES_FILE),
            parameters=sum(p.numel() for p in model.parameters()),
            config=result.config,
            compute=result.compute,
        )

    def control_unit(self, variant: Variant, seed: int) -> ControlUnit:
        """A randomly initialised encoder of the recipe's size with the study's tokenizer, fine-tuned."""
        key = unit_key(variant.name, seed)
        done = self._finished(ControlUnit, key)
        if done is not None:
            return done
        folder = self.root / "control" / f"seed-{seed}"
        recipe = self.recipes.pretrain
        tokenizer = load_task_tokenizer(recipe.tokenizer.path)
        torch.manual_seed(seed_for(seed, "init"))
        config = model_config(recipe, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
        model = BertOdeForMaskedLM(config)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        print(f"\n== compare: fine-tuning a randomly initialised encoder (seed {seed})", file=sys.stderr)
        tuned = self._finetune(str(folder), seed)
        record = ControlUnit(
            variant=variant.name,
            seed=seed,
            model_overrides={},
            parameters=sum(p.numel() for p in model.parameters()),
            finetune=FinetuneScores.of(tuned),
        )
        return self._write(record, key)

    def branch_unit(self, variant: Variant, seed: int, budget: int, source: Path) -> BranchUnit:
        key = unit_key(variant.name, seed, budget)
        branch_dir = self.root / "branch" / key.replace("--", "/")
        config = self.recipes.cooldown_run(
            variant, seed, branch_dir, budget, self.config.cooldown_fraction, progress=self.progress
        )
        done = self._finished(BranchUnit, key, config)
        if done is not None:
            return done
        print(
            f"\n== compare: {variant.name} (seed {seed}) cooling down to {budget:,} tokens", file=sys.stderr
        )
        self.share_data_cache(branch_dir)
        result = pretrain(config, branch_from=source)
        data = result.config.data
        model = BertOdeForMaskedLM.from_pretrained(result.final_dir)
        flops_per_token = training_flops_per_token(model, data.seq_len, data.mlm_probability)
        evaluations = mlm_by_ode_steps(branch_dir, model, self.config.elasticity_steps)
        trained = evaluations[str(model.config.ode_steps)]
        tuned = None
        if budget in self.config.finetune_at_of(variant):
            print(
                f"== compare: fine-tuning {variant.name} (seed {seed}) at {budget:,} tokens", file=sys.stderr
            )
            tuned = FinetuneScores.of(self._finetune(str(result.final_dir), seed))
        record = BranchUnit(
            variant=variant.name,
            seed=seed,
            budget_tokens=budget,
            branched_at_tokens=self.branch_step(budget) * self.tokens_per_step,
            val_loss=trained.val_loss,
            train_loss=result.train_loss,
            train_flops=flops_per_token * result.tokens,
            curve=read_curve(branch_dir / "log.csv"),
            mlm_by_ode_steps=evaluations,
            finetune=tuned,
            config=result.config,
            compute=result.compute,
            learned=learned_coefficients(model),
        )
        return self._write(record, key)


def learned_coefficients(model) -> dict[str, list[float]]:
    """The learned scheme coefficients of a model (ab2-learned's ``coefficients.weight``, PCformer's
    ``ema.alpha``), as trained: what order they give is read from them (docs/mathematics.md, section 15)."""
    return {
        name: parameter.detach().float().flatten().tolist()
        for name, parameter in model.named_parameters()
        if name.endswith(("coefficients.weight", "ema.alpha"))
    }


# The random-initialisation control, as a variant for the unit machinery (it is in no variant list).
_CONTROL = Variant(name="random-init")


__all__ = ["CooldownStudy"]
