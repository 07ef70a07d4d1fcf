"""Masked-LM pretraining of a BertOde model: one loop for a laptop CPU, ``torchrun`` and
``accelerate launch``.

The loop is a plain PyTorch loop on ``accelerate`` (device placement, DDP, process-group set-up under either
launcher), not the HuggingFace Trainer, because three things that matter here are easier to own than to bend
Trainer into: the MLM head and loss on masked positions only, a schedule driven by a token or wall-clock
budget, and a data order that is a pure function of (seed, step) - which makes ``resume`` exact and the
train/validation split independent of the number of processes (``data.py``).

The pieces: ``RunSetup`` (config, accelerator, data, precision: resolved once), ``PretrainLoop`` (model,
optimizer, budget; ``train_step`` and what follows a step: evaluation, logging, checkpoints), ``pretrain``
(builds both, runs, saves the final model) and ``validation_loss`` (a finished run re-scored through the same
set-up).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list, gather_object
from torch import nn
from tqdm.auto import tqdm

from ..configuration_bert_ode import BertOdeConfig
from ..convert import quiet_transformers
from ..data import MlmMasker, unigram_entropy
from ..model_card import default_title, source_license, write_model_card
from ..modeling_bert_ode import BertOdeForMaskedLM
from ..utils.config_io import load_yaml
from ..utils.device import ComputeInfo, autocast, make_accelerator, resolve_attention, resolve_precision
from ..utils.records import Record
from .checkpointing import (
    damage,
    latest_checkpoint,
    load_training_state,
    save_checkpoint,
    usable_checkpoint,
    write_run_folder,
)
from .compile import compile_encoder, should_compile
from .config import PretrainConfig, TrainConfig, load_config, model_config, save_config
from .data import PretrainData, prepare_data, seed_for
from .log import MetricsWindow, RunLogger
from .mlm_loss import SparseMlmLoss
from .probes import append_probe, probe, truncate_probes
from .run_lock import RunLock
from .schedule import Budget, lr_factor

__all__ = [
    "PretrainResult",
    "ValidationLoss",
    "mlm_validation_loss",
    "pretrain",
    "validation_loss",
]


PROBES_FILE = "probes.jsonl"


class NonFiniteLoss(ValueError):
    """The training loss became NaN or infinite: the run stops, keeping its last good checkpoint."""


@dataclass
class PretrainResult:
    output_dir: Path
    final_dir: Path  # the final model + tokenizer (from_pretrained-ready)
    steps: int
    tokens: int
    train_loss: float  # mean over the last logging window
    last_loss: float  # the last optimizer step's loss
    val_loss: float | None
    val_ppl: float | None
    train_seconds: float
    tokens_per_second: float
    model: BertOdeForMaskedLM | None = None  # the trained model (this process's copy)
    config: PretrainConfig | None = None  # the config the run ran with
    compute: ComputeInfo | None = None  # how and where it computed (precision, device, CPU, threads)


@dataclass
class ValidationLoss(Record):
    val_loss: float
    val_ppl: float
    nfe: int | None  # vector-field evaluations of one forward pass
    # The loss of predicting word frequencies alone on the same blocks (data.mlm.unigram_entropy).
    unigram_entropy: float | None = None


# ------------------------------------------------------------------------------------------------------------
# Set-up, resolved once per run
# ------------------------------------------------------------------------------------------------------------


@dataclass
class RunSetup:
    """What a run computes on and with: the accelerator, the data, the masking and the precision."""

    config: PretrainConfig
    output_dir: Path
    accelerator: Accelerator
    data: PretrainData
    masker: MlmMasker
    dtype: torch.dtype | None  # the autocast dtype; None: float32
    attn_implementation: str
    compute: ComputeInfo  # the resolved precision, device, CPU capability and threads, as records state them

    @classmethod
    def create(cls, config: PretrainConfig, output_dir: Path, accelerator: Accelerator) -> RunSetup:
        data = prepare_data(config, output_dir, accelerator)
        masker = MlmMasker(data.tokenizer, config.data.mlm_probability, config.data.whole_word_mask)
        dtype = resolve_precision(config.train.precision, accelerator.device)
        attn = resolve_attention(
            config.train.attn_implementation, accelerator.device.type, dtype == torch.bfloat16
        )
        compute = ComputeInfo.of(dtype, accelerator.device)
        return cls(config, output_dir, accelerator, data, masker, dtype, attn, compute)

    def autocast(self):
        return autocast(self.accelerator.device, self.dtype)

    @property
    def validation_blocks(self) -> torch.Tensor:
        return evaluation_blocks(self.data.validation_blocks, self.config.train)

    def build_model(self, resume_from: Path | None) -> BertOdeForMaskedLM:
        config, tokenizer, attn = self.config, self.data.tokenizer, self.attn_implementation
        if resume_from is not None:
            with quiet_transformers(reports=False):  # no "Loading weights" bar before the run's own
                return BertOdeForMaskedLM.from_pretrained(resume_from, attn_implementation=attn)
        torch.manual_seed(seed_for(config.train.seed, "init"))
        if config.train.init_from:
            return BertOdeForMaskedLM.from_bert(
                config.train.init_from, **config.model, attn_implementation=attn
            )
        return BertOdeForMaskedLM(
            model_config(
                config,
                vocab_size=len(tokenizer),
                pad_token_id=tokenizer.pad_token_id,
                attn_implementation=attn,
            )
        )


@torch.no_grad()
def mlm_validation_loss(
    loss_module: SparseMlmLoss, setup: RunSetup, blocks: torch.Tensor
) -> tuple[float, float]:
    """Validation MLM loss and perplexity over ``blocks`` with fixed masks, shared out across processes."""
    accelerator, train = setup.accelerator, setup.config.train
    was_training = loss_module.training
    loss_module.eval()
    mine = blocks[accelerator.process_index :: accelerator.num_processes]
    totals = torch.zeros(2, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed_for(train.seed, "validation", accelerator.process_index))
    for start in range(0, len(mine), train.batch_size):
        batch = setup.masker(mine[start : start + train.batch_size], generator)
        with setup.autocast():
            loss_sum, count, _ = loss_module(
                batch["input_ids"].to(accelerator.device), batch["labels"].to(accelerator.device)
            )
        totals += torch.tensor([loss_sum.item(), count.item()], dtype=torch.float64)
    totals = accelerator.reduce(totals.to(accelerator.device), reduction="sum").cpu()
    loss_module.train(was_training)
    loss = (totals[0] / totals[1].clamp(min=1)).item()
    return loss, math.exp(min(loss, 50.0))


def _optimizer(model: nn.Module, train, device: torch.device) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim < 2 or "LayerNorm" in name else decay).append(parameter)
    groups = [
        {"params": decay, "weight_decay": train.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # The fused kernel updates every parameter in one pass (measured 1.05-1.1x a whole step on 2 CPU cores);
    # its state_dict is the same as the unfused one's, so checkpoints resume either way.
    fused = device.type in ("cpu", "cuda")
    return torch.optim.AdamW(groups, lr=train.lr, betas=tuple(train.betas), eps=train.eps, fused=fused)


# ------------------------------------------------------------------------------------------------------------
# The loop
# ------------------------------------------------------------------------------------------------------------


class PretrainLoop:
    """The model, optimizer and budget of a run, and the loop over optimizer steps."""

    def __init__(self, setup: RunSetup, resume_from: Path | None):
        self.setup, self.train = setup, setup.config.train
        accelerator = setup.accelerator
        self.main = accelerator.is_main_process
        self.model = setup.build_model(resume_from)
        if self.model.config.vocab_size < len(setup.data.tokenizer):
            raise ValueError(
                f"the model's vocab_size={self.model.config.vocab_size} is smaller than the tokenizer's "
                f"{len(setup.data.tokenizer)} tokens"
            )
        # Saved with every checkpoint: truncation=True then cuts inputs to what the model can take.
        setup.data.tokenizer.model_max_length = self.model.config.max_position_embeddings
        loss_module = SparseMlmLoss(self.model)
        optimizer = _optimizer(loss_module, self.train, accelerator.device)
        state = load_training_state(resume_from) if resume_from is not None else {}
        if state:
            optimizer.load_state_dict(state["optimizer"])
        self.loss_module, self.optimizer = accelerator.prepare(loss_module, optimizer)
        self.step, self.train_seconds = state.get("step", 0), state.get("train_seconds", 0.0)
        self.samples_per_micro = self.train.batch_size * accelerator.num_processes
        self.tokens_per_step = self.samples_per_micro * self.train.grad_accum * setup.config.data.seq_len
        self.budget = Budget.from_config(self.train, self.tokens_per_step)
        self.warmup_fraction = self.budget.warmup_fraction(self.train, self.tokens_per_step)
        self.stream = setup.data.training_blocks(self.train.seed)
        if state.get("streams"):  # a streamed run: this process's position in its shard
            if len(state["streams"]) != accelerator.num_processes:
                raise ValueError(
                    f"this streamed run ran with {len(state['streams'])} process(es): resume it with as many "
                    f"(each reads its own shard of the stream), not {accelerator.num_processes}"
                )
            self.stream.load_state_dict(state["streams"][accelerator.process_index])
        self.window, self.last_window = MetricsWindow(), None
        # The last step's loss stays a tensor until it is logged: no host synchronisation per step.
        self.last_loss = torch.tensor(float("nan"), dtype=torch.float64)
        self.nonfinite = torch.zeros((), dtype=torch.bool, device=accelerator.device)
        self.val_loss, self.val_ppl, self.last_nfe = None, None, None
        self.compiled = should_compile(self.train.compile, self.model.config, self.budget.total_steps)
        if self.compiled:
            probe = setup.data.train_blocks[: self.train.batch_size].to(accelerator.device)
            unwrapped = accelerator.unwrap_model(self.loss_module)
            self.compiled = compile_encoder(unwrapped, probe, setup.autocast)

    def progress(self) -> float:
        return self.budget.progress(self.step, self.train_seconds)

    def run(self, logger: RunLogger, progress_bar) -> None:
        self.last_saved = self.last_checked = self.step
        self.loss_module.train()
        while self.progress() < 1.0:
            lr, elapsed = self.train_step()
            self.window.add(self.last_loss, self.tokens_per_step, elapsed)
            if progress_bar is not None:
                progress_bar.update(1)
            done = self.progress() >= 1.0
            save = done or (self.train.save_every and self.step % self.train.save_every == 0)
            if save or done or self.step % self.train.log_every == 0:
                self.check_finite()  # before anything is logged or saved
            self.evaluate_and_log(lr, done, logger, progress_bar)
            if save:
                self.save_checkpoint()
        if self.last_saved != self.step:
            self.check_finite()
            self.save_checkpoint()

    def check_finite(self) -> None:
        """Stops the run at a non-finite loss, before a broken model is logged or saved: the last checkpoint
        stays the last good one. Read from a flag kept on the device, so the steps in between do not wait."""
        flag = self.nonfinite.to(torch.float32)
        if self.setup.accelerator.num_processes > 1:  # every process stops at the same step, none waits
            flag = self.setup.accelerator.reduce(flag, reduction="sum")
        if bool(flag > 0):
            last = (
                f"step {self.last_saved} in {self.setup.output_dir / 'checkpoints'}"
                if self.last_saved
                else "none"
            )
            raise NonFiniteLoss(
                "the training loss became NaN or infinite between steps "
                f"{self.last_checked + 1} and {self.step}; "
                f"the last good checkpoint is {last}. Lower train.lr, set train.max_grad_norm, or use "
                "train.precision=fp32, then resume or start afresh"
            )
        self.last_checked = self.step

    def train_step(self) -> tuple[float, float]:
        """One optimizer step over ``grad_accum`` micro-batches; returns its learning rate and seconds."""
        started = time.perf_counter()
        accelerator, train = self.setup.accelerator, self.train
        lr = train.lr * lr_factor(
            train.schedule, self.progress(), self.warmup_fraction, train.cooldown_fraction
        )
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        step_loss = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
        for micro in range(train.grad_accum):
            last_micro = micro == train.grad_accum - 1
            sync = contextlib.nullcontext() if last_micro else accelerator.no_sync(self.loss_module)
            with sync:
                loss_sum, count = self._micro_step(micro)
            step_loss += torch.stack([loss_sum.detach(), count]).to(torch.float64)
        if train.max_grad_norm:
            accelerator.clip_grad_norm_(self.loss_module.parameters(), train.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.last_loss = step_loss[0] / step_loss[1].clamp(min=1)
        self.nonfinite = self.nonfinite | ~torch.isfinite(self.last_loss)
        elapsed = self._agreed_seconds(time.perf_counter() - started)
        self.train_seconds += elapsed
        return lr, elapsed

    def _micro_step(self, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        accelerator, train, rank = self.setup.accelerator, self.train, self.setup.accelerator.process_index
        first = (self.step * train.grad_accum + micro) * self.samples_per_micro + rank * train.batch_size
        generator = torch.Generator().manual_seed(seed_for(train.seed, self.step, micro, rank))
        torch.manual_seed(seed_for(train.seed, "dropout", self.step, micro, rank))
        batch = self.setup.masker(self.stream.take(first, train.batch_size), generator)
        with self.setup.autocast():
            loss_sum, count, self.last_nfe = self.loss_module(
                batch["input_ids"].to(accelerator.device), batch["labels"].to(accelerator.device)
            )
        # Mean over this micro-batch's masked tokens; DDP averages over processes.
        accelerator.backward(loss_sum / count.clamp(min=1) / train.grad_accum)
        return loss_sum, count

    def _agreed_seconds(self, elapsed: float) -> float:
        """Every process must agree on when a wall-clock budget ends: the mean of their clocks decides."""
        accelerator = self.setup.accelerator
        if self.budget.seconds is None or accelerator.num_processes == 1:
            return elapsed
        return accelerator.reduce(torch.tensor([elapsed], device=accelerator.device), reduction="mean").item()

    def evaluate_and_log(self, lr: float, done: bool, logger: RunLogger, progress_bar) -> None:
        train = self.train
        evaluate_now = done or (train.eval_every and self.step % train.eval_every == 0)
        validation = self.setup.validation_blocks
        if evaluate_now and len(validation):
            unwrapped = self.setup.accelerator.unwrap_model(self.loss_module)
            self.val_loss, self.val_ppl = mlm_validation_loss(unwrapped, self.setup, validation)
            if train.probe_blocks and self.main:
                blocks = validation[: train.probe_blocks].to(self.setup.accelerator.device)
                point = probe(self.unwrapped_model(), blocks, self.step, self.step * self.tokens_per_step)
                append_probe(self.setup.output_dir / PROBES_FILE, point)
        if not (self.step % train.log_every == 0 or evaluate_now):
            return
        window = self.window
        logger.log(
            {
                "step": self.step,
                "tokens": self.step * self.tokens_per_step,
                "elapsed_s": round(self.train_seconds, 3),
                "lr": lr,
                "train_loss": window.mean_loss,
                "val_loss": self.val_loss if evaluate_now else "",
                "val_ppl": self.val_ppl if evaluate_now else "",
                "tokens_per_s": window.tokens_per_second,
                "nfe": self.last_nfe,
            }
        )
        if progress_bar is not None:
            progress_bar.set_postfix(loss=f"{window.mean_loss:.3f}", tok_s=f"{window.tokens_per_second:.0f}")
        if progress_bar is not None and evaluate_now and self.val_loss is not None:
            progress_bar.write(
                f"step {self.step}: train loss {window.mean_loss:.4f}, validation loss "
                f"{self.val_loss:.4f} (perplexity {self.val_ppl:.1f})"
            )
        self.last_window, self.window = window, MetricsWindow()

    def save_checkpoint(self) -> None:
        accelerator = self.setup.accelerator
        self.last_saved = self.step
        streams = None
        if self.setup.data.streamed is not None:  # every process's position in its shard, in rank order
            streams = gather_object([self.stream.state_dict()])
        if self.main:
            state = {
                "step": self.step,
                "train_seconds": self.train_seconds,
                "optimizer": self.optimizer.state_dict(),
                "config": self.setup.config.to_dict(),
                "world_size": accelerator.num_processes,
                "streams": streams,
            }
            save_checkpoint(
                self.setup.output_dir,
                self.step,
                self.unwrapped_model(),
                self.setup.data.tokenizer,
                state,
                keep=self.train.keep_checkpoints,
            )
        accelerator.wait_for_everyone()

    def unwrapped_model(self) -> BertOdeForMaskedLM:
        return self.setup.accelerator.unwrap_model(self.loss_module).model

    def result(self, final_dir: Path) -> PretrainResult:
        window = self.last_window
        return PretrainResult(
            output_dir=self.setup.output_dir,
            final_dir=final_dir,
            steps=self.step,
            tokens=self.step * self.tokens_per_step,
            train_loss=window.mean_loss if self.step and window is not None else float("nan"),
            last_loss=float(self.last_loss),
            val_loss=self.val_loss,
            val_ppl=self.val_ppl,
            train_seconds=self.train_seconds,
            tokens_per_second=self.step * self.tokens_per_step / max(self.train_seconds, 1e-9),
            model=self.unwrapped_model(),
            config=self.setup.config,
            compute=self.setup.compute,
        )


# ------------------------------------------------------------------------------------------------------------
# Entry points
# ------------------------------------------------------------------------------------------------------------


def pretrain(
    config: PretrainConfig | str | os.PathLike | None = None,
    overrides: dict | None = None,
    resume: bool = False,
    branch_from: str | os.PathLike | None = None,
) -> PretrainResult:
    """Pretrains a BertOdeForMaskedLM by masked language modelling.

    Args:
        config: a ``PretrainConfig``, a YAML path, a preset name (``smoke``, ``cpu``, ``gpu``) or None
            (defaults).
        overrides: dotted keys applied on top, e.g. ``{"model.ode_method": "rk4", "train.lr": 5e-4}``.
        resume: continue from the latest complete checkpoint in ``train.output_dir`` (data order, masks,
            optimizer and schedule included); without one, start afresh.
        branch_from: a checkpoint of another run (``RUN/checkpoints/step-N``) to go on from, into this run's
            own ``train.output_dir``, with this config: the same run in everything but how long it lasts and
            its schedule (``BRANCH_CHANGES``), e.g. a ``wsd`` cooldown off a ``constant`` run. Once the branch
            has its own checkpoints it resumes from them.

    Returns a ``PretrainResult``; the run's folder holds ``final/`` (model + tokenizer), ``checkpoints/``,
    ``log.csv``, ``tensorboard/`` and ``pretrain_config.yaml``.
    """
    if isinstance(config, PretrainConfig):
        config = config.with_overrides(overrides or {})
    else:
        config = load_config(config, overrides)
    if config.train.num_threads:
        torch.set_num_threads(config.train.num_threads)
    output_dir = Path(config.train.output_dir)
    # TensorBoard is written by the run's own logger (RunLogger: it purges steps past a resume); accelerate
    # drives the other trackers.
    trackers = [name for name in config.train.report_to if name not in ("tensorboard", "none")]
    accelerator = make_accelerator(log_with=trackers, project_dir=output_dir)
    # One run per output folder; the main process holds the lock for all of them.
    with _locked_by_main_process(output_dir, accelerator):
        return _run(config, output_dir, resume, accelerator, branch_from)


@contextlib.contextmanager
def _locked_by_main_process(output_dir: Path, accelerator: Accelerator):
    """The main process takes the run lock and tells every process whether it got it: a refusal is the same
    error on every rank (the others would otherwise wait at the first barrier for a rank that has left)."""
    lock, refusal = None, [None]
    if accelerator.is_main_process:
        try:
            lock = RunLock(output_dir).__enter__()
        except ValueError as error:
            refusal = [str(error)]
    if accelerator.num_processes > 1:
        refusal = broadcast_object_list(refusal, from_process=0)
    if refusal[0] is not None:
        raise ValueError(refusal[0])
    try:
        yield
    finally:
        if lock is not None:
            lock.__exit__(None, None, None)


def _run(
    config: PretrainConfig, output_dir: Path, resume: bool, accelerator: Accelerator, branch_from=None
) -> PretrainResult:
    if branch_from is not None and latest_checkpoint(output_dir) is None:
        resume_from = _start_branch(config, output_dir, Path(branch_from), accelerator)
    else:
        resume_from = _start(config, output_dir, resume or branch_from is not None, accelerator)
    if accelerator.is_main_process:  # the set-up takes seconds (a first run: tens of them); say what it does
        print(
            f"pretrain: preparing the data (corpus, tokenizer, packed blocks cached in {output_dir}) and the "
            "model",
            file=sys.stderr,
        )
    setup = RunSetup.create(config, output_dir, accelerator)
    loop = PretrainLoop(setup, resume_from)
    if loop.main:
        _announce(setup, loop)
        # The run summary beside log.csv: how this (part of the) run computed.
        setup.compute.write_json(output_dir / "compute.json")
        truncate_probes(output_dir / PROBES_FILE, loop.step)  # a resumed run logs the steps past it again
    logger = RunLogger(
        output_dir,
        loop.step,
        loop.main,
        tensorboard="tensorboard" in config.train.report_to,
        accelerator=accelerator if accelerator.log_with else None,
    )
    if accelerator.log_with:
        hyperparameters = {
            k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in _effective(config).items()
        }
        accelerator.init_trackers(output_dir.name, config=hyperparameters)
    progress_bar = None
    if loop.main and config.train.progress_bar:
        progress_bar = tqdm(
            total=loop.budget.total_steps, initial=loop.step, desc="pretrain", unit="step", dynamic_ncols=True
        )
    loop.run(logger, progress_bar)
    if progress_bar is not None:
        progress_bar.close()
    final_dir = _save_final(loop)
    logger.close()
    result = loop.result(final_dir)
    if loop.main:
        _write_card(loop, result)
    return result


def _write_card(loop: PretrainLoop, result: PretrainResult) -> None:
    """The final model's card: what was trained on what, for how long, and how far it got."""
    config, data = loop.setup.config, loop.setup.data
    start = f"continued from `{config.train.init_from}`" if config.train.init_from else "from scratch"
    how = [
        f"Masked-LM pretraining {start} with `bert-ode pretrain` on the {data.description}: "
        f"{result.tokens:,} tokens ({result.steps:,} optimizer steps of {loop.tokens_per_step:,} tokens, "
        f"blocks of {config.data.seq_len}), {config.data.mlm_probability:.0%} masking, AdamW at learning "
        f"rate {config.train.lr:g} with a {config.train.schedule} schedule, seed {config.train.seed}.",
    ]
    if result.val_loss is not None:
        how.append(f"Validation MLM loss at the end: {result.val_loss:.4f} (perplexity {result.val_ppl:.1f})")
    write_model_card(
        result.final_dir,
        result.model,
        title=f"{default_title(result.model.config)}, masked-LM pretrained on {result.tokens:,} tokens",
        how_made=how,
        base_model=config.train.init_from,
        license=source_license(config.train.init_from) if config.train.init_from else None,
        datasets=[config.data.dataset] if config.data.dataset else None,
    )


def _start(config: PretrainConfig, output_dir: Path, resume: bool, accelerator: Accelerator) -> Path | None:
    """The checkpoint to resume from (None: a fresh run); refuses to start afresh over another run's
    checkpoints."""
    latest = latest_checkpoint(output_dir)
    if not resume and latest is not None:
        raise ValueError(
            f"{output_dir} already holds checkpoints: pass --resume, or choose another train.output_dir"
        )
    if resume and latest is not None and (output_dir / "pretrain_config.yaml").is_file():
        _check_resumable(load_yaml(output_dir / "pretrain_config.yaml", "config"), config, output_dir)
    if resume and latest is not None:
        latest, passed_over = usable_checkpoint(output_dir)
        if accelerator.is_main_process:
            for line in passed_over:
                print(f"pretrain: warning: {line}; resuming from an earlier one", file=sys.stderr)
        if latest is None:
            raise ValueError(
                f"no usable checkpoint in {output_dir / 'checkpoints'}: {'; '.join(passed_over)}; start "
                "afresh in another train.output_dir"
            )
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, output_dir / "pretrain_config.yaml")
    accelerator.wait_for_everyone()
    return latest if resume else None


def _start_branch(config: PretrainConfig, output_dir: Path, source: Path, accelerator: Accelerator) -> Path:
    """The checkpoint a branch starts from, checked: complete, undamaged, and of the same run but for
    ``BRANCH_CHANGES``."""
    problem = damage(source) if source.is_dir() else f"{source} is not a checkpoint folder"
    if problem is not None:
        raise ValueError(f"branch_from: {problem}")
    saved = load_training_state(source).get("config")
    if not isinstance(saved, dict):
        raise ValueError(f"branch_from: {source} holds no run config to check the branch against")
    _check_resumable(saved, config, source, allowed=RESUMABLE_CHANGES | BRANCH_CHANGES, what="a branch")
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, output_dir / "pretrain_config.yaml")
    accelerator.wait_for_everyone()
    return source


# What a resumed run may change: how long it runs and how it reports, not what or how it learns.
RESUMABLE_CHANGES = {
    f"train.{name}"
    for name in (
        "budget_tokens",
        "budget_minutes",
        "max_steps",
        "eval_every",
        "eval_blocks",
        "eval_selection",
        "save_every",
        "keep_checkpoints",
        "log_every",
        "num_threads",
        "progress_bar",
        "report_to",
        "compile",
        "attn_implementation",
        "probe_blocks",
        "output_dir",
    )
}

# What a branch may change besides: its schedule (a wsd cooldown off a constant-rate run), not the warmup.
BRANCH_CHANGES = {"train.schedule", "train.cooldown_fraction"}


def _flatten(values: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _effective(config: PretrainConfig) -> dict:
    """Every setting of ``config`` as dotted keys, the model as it is built (defaults included)."""
    return _flatten({**config.to_dict(), "model": config.model_fields()})


def _check_resumable(
    saved: dict, config: PretrainConfig, output_dir: Path, allowed=RESUMABLE_CHANGES, what: str = "--resume"
) -> None:
    """Refuses a resume whose config differs from the run's own in anything but ``allowed``: the
    checkpoint's model, data order and tokenizer would silently stay the old ones."""
    old, new = _effective(PretrainConfig().with_overrides(saved)), _effective(config)
    for key in set(old) ^ set(
        new
    ):  # a model field set on one side only: the other has BertOdeConfig's default
        if key.startswith("model."):
            default = getattr(BertOdeConfig(), key.removeprefix("model."))
            old.setdefault(key, default)
            new.setdefault(key, default)
    changed = [
        f"{key}: {old.get(key)!r} -> {new.get(key)!r}"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key) and key not in allowed
    ]
    if changed:
        raise ValueError(
            f"{what} of {output_dir} with another config: {'; '.join(changed)}. It may change only "
            f"{', '.join(sorted(allowed))}; start a new run (another train.output_dir) for the rest"
        )


def _announce(setup: RunSetup, loop: PretrainLoop) -> None:
    data, model_config_ = setup.data, loop.model.config
    params = sum(p.numel() for p in loop.model.parameters())
    print(
        f"pretrain: {data.description}: "
        f"{'streamed' if data.streamed is not None else len(data.train_blocks)} train / "
        f"{len(data.validation_blocks)} validation blocks of {setup.config.data.seq_len} tokens; vocab "
        f"{len(data.tokenizer)}; {params / 1e6:.2f}M parameters; {model_config_.ode_method} "
        f"x{model_config_.ode_steps}, {model_config_.norm_position}-norm; {setup.accelerator.num_processes} "
        f"process(es); {setup.compute.describe()}; "
        + (f"resuming at step {loop.step}" if loop.step else "starting"),
        file=sys.stderr,
    )


def _save_final(loop: PretrainLoop) -> Path:
    final_dir = loop.setup.output_dir / "final"
    if loop.main:
        model, tokenizer = loop.unwrapped_model(), loop.setup.data.tokenizer

        def write_final(staging: Path) -> None:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)

        write_run_folder(loop.setup.output_dir, final_dir, write_final, "the final model")
    loop.setup.accelerator.wait_for_everyone()
    return final_dir


def evaluation_blocks(blocks: torch.Tensor, train: TrainConfig, count: int | None = None) -> torch.Tensor:
    """The ``count`` (default ``train.eval_blocks``) validation blocks an evaluation scores: the first ones,
    or (``train.eval_selection: spread``) ones at even strides over the whole split; all when there are
    fewer."""
    count = count or train.eval_blocks
    if count >= len(blocks) or train.eval_selection == "first":
        return blocks[:count]
    return blocks[torch.linspace(0, len(blocks) - 1, count).round().long()]


def validation_loss(
    run_dir: str | os.PathLike,
    ode_steps: int | None = None,
    checkpoint: str | None = None,
    max_blocks: int | None = None,
) -> ValidationLoss:
    """MLM validation loss of a finished pretraining run, optionally with another ``ode_steps`` than it
    trained with.

    Uses the run's own config, tokenizer, validation blocks and fixed masks (the same ones its training-time
    evaluations used), so the figure is comparable with ``log.csv``.
    """
    run_dir = Path(run_dir)
    config = load_config(run_dir / "pretrain_config.yaml")
    setup = RunSetup.create(config, run_dir, make_accelerator())
    with quiet_transformers(reports=False):
        model = BertOdeForMaskedLM.from_pretrained(
            checkpoint or run_dir / "final", attn_implementation=setup.attn_implementation
        )
    loss_module = SparseMlmLoss(model).to(setup.accelerator.device)
    validation = evaluation_blocks(setup.data.validation_blocks, config.train, max_blocks)
    probe = setup.masker(validation[:1], torch.Generator().manual_seed(0))
    device = setup.accelerator.device
    with model.ode_steps_as(ode_steps if ode_steps is not None else model.config.ode_steps):
        loss, ppl = mlm_validation_loss(loss_module, setup, validation)
        with torch.no_grad(), setup.autocast():
            nfe = loss_module(probe["input_ids"].to(device), probe["labels"].to(device))[2]
    # Word frequencies as a model learns them: from the training blocks, scored on the blocks evaluated here.
    unigram = unigram_entropy(validation, setup.masker.special, reference=setup.data.train_blocks)
    return ValidationLoss(val_loss=loss, val_ppl=ppl, nfe=nfe, unigram_entropy=unigram)
