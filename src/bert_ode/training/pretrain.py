"""Masked-LM pretraining of a BertOde model: one loop for a laptop CPU, ``torchrun`` and ``accelerate launch``.

The loop is a plain PyTorch loop on ``accelerate`` (device placement, DDP, process-group set-up under either
launcher), not the HuggingFace Trainer, because three things that matter here are easier to own than to bend
Trainer into: the MLM head and loss on masked positions only, a schedule driven by a token or wall-clock budget,
and a data order that is a pure function of (seed, step) - which makes ``resume`` exact and the train/validation
split independent of the number of processes.

Determinism: sample ``k`` of the endless training stream is block ``perm_e[k mod N]`` with ``perm_e`` a
permutation seeded by ``(seed, e = k // N)``; each micro-batch draws its masks from a generator seeded by
``(seed, step, micro-step, rank)``. A resumed run therefore sees exactly the batches and masks the uninterrupted
run would have seen.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..data import MlmMasker, load_corpus, pack_sequences, prepare_tokenizer
from ..modeling_bert_ode import BertOdeForMaskedLM
from .checkpointing import latest_checkpoint, load_training_state, save_checkpoint, write_atomically
from .pretrain_config import PretrainConfig, load_config, model_config, resolve_attention, save_config

CSV_FIELDS = ["step", "tokens", "elapsed_s", "lr", "train_loss", "val_loss", "val_ppl", "tokens_per_s", "nfe"]


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


class SparseMlmLoss(nn.Module):
    """Encoder on all positions, MLM head and cross-entropy on the masked positions only.

    Most of the positions never need the ``hidden x vocab`` projection; skipping them is the largest saving of
    CPU pretraining. It wraps the model so DDP sees one forward and synchronises every gradient.
    """

    def __init__(self, model: BertOdeForMaskedLM):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor):
        outputs = self.model.bert(input_ids=input_ids)
        masked = labels != -100  # (batch, seq)
        hidden = outputs.last_hidden_state[masked]  # (n_masked, hidden)
        logits = self.model.cls(hidden)  # (n_masked, vocab)
        loss_sum = F.cross_entropy(logits.float(), labels[masked], reduction="sum")
        return loss_sum, masked.sum(), outputs.nfe


# ---------------------------------------------------------------------------------------------------------------
# Set-up helpers
# ---------------------------------------------------------------------------------------------------------------


def cpu_supports_bf16() -> bool:
    """True where the CPU multiplies bf16 natively (AVX-512 BF16 or AMX), where autocast pays off."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read()
        return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        return torch.backends.cpu.get_cpu_capability().startswith("AMX") if hasattr(torch.backends, "cpu") else False


def _has_xpu() -> bool:
    return hasattr(torch, "xpu") and torch.xpu.is_available()


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "fp32":
        return None
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
    elif device.type == "cpu":
        supported = cpu_supports_bf16() or precision == "bf16"
    else:
        supported = precision == "bf16"
    return torch.bfloat16 if supported else None


def lr_factor(schedule: str, progress: float, warmup_fraction: float) -> float:
    """Multiplier of the peak learning rate at ``progress`` in [0, 1] of the budget."""
    progress = min(max(progress, 0.0), 1.0)
    if warmup_fraction > 0 and progress < warmup_fraction:
        return progress / warmup_fraction
    if schedule == "constant":
        return 1.0
    rest = (progress - warmup_fraction) / (1 - warmup_fraction)
    if schedule == "triangle":
        return 1.0 - rest
    return 0.5 * (1 + math.cos(math.pi * rest))  # cosine


def _optimizer(model: nn.Module, train) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim < 2 or "LayerNorm" in name else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": train.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=train.lr, betas=tuple(train.betas), eps=train.eps)


def _seed_for(*parts: int) -> int:
    digest = hashlib.sha256(",".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


class BlockStream:
    """The endless, epoch-shuffled training stream over packed blocks; indexable by global sample number."""

    def __init__(self, blocks: torch.Tensor, seed: int):
        self.blocks, self.seed, self._perms = blocks, seed, {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            self._perms = {epoch: torch.randperm(len(self.blocks), generator=torch.Generator().manual_seed(
                _seed_for(self.seed, "epoch", epoch)))}
        return self._perms[epoch]

    def take(self, start: int, count: int) -> torch.Tensor:
        n = len(self.blocks)
        indices = [self._perm(k // n)[k % n] for k in range(start, start + count)]
        return self.blocks[torch.stack(indices)]


def _prepare_data(config: PretrainConfig, output_dir: Path, accelerator):
    """Corpus -> tokenizer -> packed blocks, built by the main process first and cached in output_dir."""
    data = config.data
    with accelerator.main_process_first():
        corpus = load_corpus(
            files=data.files, dataset=data.dataset, dataset_config=data.dataset_config, split=data.split,
            streaming=data.streaming, text_field=data.text_field, builtin=data.builtin,
            max_documents=data.max_documents, validation_fraction=data.validation_fraction,
        )
        tok = config.tokenizer
        tokenizer = prepare_tokenizer(
            output_dir, corpus.train, path=tok.path or config.train.init_from, vocab_size=tok.vocab_size,
            min_frequency=tok.min_frequency, lowercase=tok.lowercase,
        )
        key = hashlib.sha1(json.dumps([config.to_dict()["data"], tokenizer.backend_tokenizer.to_str(),
                                       len(corpus.train), corpus.num_chars]).encode()).hexdigest()[:16]
        cache = output_dir / "data-cache" / f"blocks-{key}.pt"
        if cache.is_file():
            blocks = torch.load(cache)
        else:
            blocks = {
                "train": pack_sequences(tokenizer, corpus.train, data.seq_len),
                "validation": pack_sequences(tokenizer, corpus.validation, data.seq_len),
            }
            if accelerator.is_main_process:
                cache.parent.mkdir(parents=True, exist_ok=True)
                staging = cache.with_suffix(f".tmp{os.getpid()}")
                torch.save(blocks, staging)
                os.replace(staging, cache)
    if len(blocks["train"]) == 0:
        raise ValueError(
            f"the corpus ({corpus.description}) is too small: not one training block of data.seq_len={data.seq_len} "
            "tokens"
        )
    return corpus, tokenizer, blocks


def _build_model(config: PretrainConfig, tokenizer, resume_from: Path | None, attn: str) -> BertOdeForMaskedLM:
    if resume_from is not None:
        return BertOdeForMaskedLM.from_pretrained(resume_from, attn_implementation=attn)
    torch.manual_seed(_seed_for(config.train.seed, "init"))
    if config.train.init_from:
        return BertOdeForMaskedLM.from_bert(config.train.init_from, **config.model, attn_implementation=attn)
    return BertOdeForMaskedLM(model_config(config, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                           attn_implementation=attn))


class _Logger:
    """CSV (always) and TensorBoard (if installed) on the main process; rows past a resumed step are dropped."""

    def __init__(self, output_dir: Path, start_step: int, enabled: bool):
        self.enabled = enabled
        if not enabled:
            return
        self.path = output_dir / "log.csv"
        rows = []
        if self.path.is_file() and start_step > 0:
            with open(self.path, newline="", encoding="utf-8") as handle:
                rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= start_step]
        self.handle = open(self.path, "w", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.handle, fieldnames=CSV_FIELDS)
        self.writer.writeheader()
        self.writer.writerows(rows)
        self.handle.flush()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(output_dir / "tensorboard"), purge_step=start_step or None)
        except ImportError:
            self.tensorboard = None

    def log(self, row: dict) -> None:
        if not self.enabled:
            return
        self.writer.writerow({k: row.get(k, "") for k in CSV_FIELDS})
        self.handle.flush()
        if self.tensorboard is not None:
            for key, value in row.items():
                if key != "step" and value not in ("", None):
                    self.tensorboard.add_scalar(f"pretrain/{key}", value, row["step"])

    def close(self) -> None:
        if self.enabled:
            self.handle.close()
            if self.tensorboard is not None:
                self.tensorboard.close()


# ---------------------------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate(loss_module: SparseMlmLoss, blocks: torch.Tensor, masker: MlmMasker, batch_size: int, seed: int,
             autocast, accelerator) -> tuple[float, float]:
    """Validation MLM loss and perplexity over ``blocks`` with fixed masks, shared out across processes."""
    was_training = loss_module.training
    loss_module.eval()
    mine = blocks[accelerator.process_index :: accelerator.num_processes]
    totals = torch.zeros(2, dtype=torch.float64)
    generator = torch.Generator().manual_seed(_seed_for(seed, "validation", accelerator.process_index))
    for start in range(0, len(mine), batch_size):
        batch = masker(mine[start : start + batch_size], generator)
        with autocast():
            loss_sum, count, _ = loss_module(batch["input_ids"].to(accelerator.device),
                                             batch["labels"].to(accelerator.device))
        totals += torch.tensor([loss_sum.item(), count.item()], dtype=torch.float64)
    totals = accelerator.reduce(totals.to(accelerator.device), reduction="sum").cpu()
    loss_module.train(was_training)
    loss = (totals[0] / totals[1].clamp(min=1)).item()
    return loss, math.exp(min(loss, 50.0))


def pretrain(
    config: PretrainConfig | str | os.PathLike | None = None,
    overrides: dict | None = None,
    resume: bool = False,
) -> PretrainResult:
    """Pretrains a BertOdeForMaskedLM by masked language modelling.

    Args:
        config: a ``PretrainConfig``, a YAML path, a preset name (``smoke``, ``cpu``, ``gpu``) or None (defaults).
        overrides: dotted keys applied on top, e.g. ``{"model.ode_method": "rk4", "train.lr": 5e-4}``.
        resume: continue from the latest complete checkpoint in ``train.output_dir`` (data order, masks, optimizer
            and schedule included); without one, start afresh.

    Returns a ``PretrainResult``; the run's folder holds ``final/`` (model + tokenizer), ``checkpoints/``,
    ``log.csv``, ``tensorboard/`` and ``pretrain_config.yaml``.
    """
    from accelerate import Accelerator

    if not isinstance(config, PretrainConfig):
        config = load_config(config, overrides)
    elif overrides:
        from .pretrain_config import apply

        apply(config, overrides)
        config.validate()
    train = config.train
    if train.num_threads:
        torch.set_num_threads(train.num_threads)
    # Without an accelerator, cpu=True is what makes accelerate set up gloo DDP under torchrun / accelerate launch.
    accelerator = Accelerator(cpu=not (torch.cuda.is_available() or _has_xpu()))
    output_dir = Path(train.output_dir)
    main = accelerator.is_main_process
    world, rank = accelerator.num_processes, accelerator.process_index

    resume_from = latest_checkpoint(output_dir) if resume else None
    if not resume and latest_checkpoint(output_dir) is not None:
        raise ValueError(f"{output_dir} already holds checkpoints: pass --resume, or choose another train.output_dir")
    if main:
        output_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, output_dir / "pretrain_config.yaml")
    accelerator.wait_for_everyone()

    corpus, tokenizer, blocks = _prepare_data(config, output_dir, accelerator)
    masker = MlmMasker(tokenizer, config.data.mlm_probability, config.data.whole_word_mask)
    dtype = resolve_precision(train.precision, accelerator.device)
    attn = resolve_attention(train.attn_implementation, accelerator.device.type, dtype == torch.bfloat16)
    model = _build_model(config, tokenizer, resume_from, attn)
    if model.config.vocab_size < len(tokenizer):
        raise ValueError(f"the model's vocab_size={model.config.vocab_size} is smaller than the tokenizer's "
                         f"{len(tokenizer)} tokens")
    loss_module = SparseMlmLoss(model)
    optimizer = _optimizer(loss_module, train)

    state = load_training_state(resume_from) if resume_from is not None else {}
    if state:
        optimizer.load_state_dict(state["optimizer"])
    loss_module, optimizer = accelerator.prepare(loss_module, optimizer)

    def autocast():
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=accelerator.device.type, dtype=dtype)

    seq_len = config.data.seq_len
    per_micro = train.batch_size * world
    tokens_per_step = per_micro * train.grad_accum * seq_len
    if train.max_steps is not None:
        total_steps = train.max_steps
    elif train.budget_tokens is not None:
        total_steps = max(1, math.ceil(train.budget_tokens / tokens_per_step))
    else:
        total_steps = None  # a wall-clock budget alone
    budget_seconds = train.budget_minutes * 60 if train.budget_minutes else None

    step = state.get("step", 0)
    train_seconds = state.get("train_seconds", 0.0)
    stream = BlockStream(blocks["train"], train.seed)
    validation = blocks["validation"][: train.eval_blocks]
    logger = _Logger(output_dir, step, main)
    if main:
        params = sum(p.numel() for p in model.parameters())
        print(
            f"pretrain: {corpus.description}: {len(blocks['train'])} train / {len(blocks['validation'])} validation "
            f"blocks of {seq_len} tokens; vocab {len(tokenizer)}; {params / 1e6:.2f}M parameters; "
            f"{model.config.ode_method} x{model.config.ode_steps}, {model.config.norm_position}-norm; "
            f"{world} process(es) on {accelerator.device}; precision {dtype or torch.float32}; "
            + (f"resuming at step {step}" if step else "starting"),
            file=sys.stderr,
        )

    progress_bar = None
    if main and train.progress_bar:
        from tqdm.auto import tqdm

        progress_bar = tqdm(total=total_steps, initial=step, desc="pretrain", unit="step", dynamic_ncols=True)

    def progress() -> float:
        fractions = []
        if total_steps is not None:
            fractions.append(step / total_steps)
        if budget_seconds is not None:
            fractions.append(train_seconds / budget_seconds)
        return max(fractions)

    def save(at_step: int) -> None:
        if main:
            save_checkpoint(
                output_dir, at_step, accelerator.unwrap_model(loss_module).model, tokenizer,
                {"step": at_step, "train_seconds": train_seconds, "optimizer": optimizer.state_dict(),
                 "config": config.to_dict(), "world_size": world},
                keep=train.keep_checkpoints,
            )
        accelerator.wait_for_everyone()

    window_loss, window_steps, window_tokens, window_seconds = 0.0, 0, 0, 0.0
    last_loss, val_loss, val_ppl, last_nfe = float("nan"), None, None, None
    last_saved = step
    loss_module.train()
    while progress() < 1.0:
        started = time.perf_counter()
        lr = train.lr * lr_factor(train.schedule, progress(), train.warmup_fraction)
        for group in optimizer.param_groups:
            group["lr"] = lr
        step_loss = torch.zeros(2, dtype=torch.float64)
        for micro in range(train.grad_accum):
            first = (step * train.grad_accum + micro) * per_micro + rank * train.batch_size
            generator = torch.Generator().manual_seed(_seed_for(train.seed, step, micro, rank))
            torch.manual_seed(_seed_for(train.seed, "dropout", step, micro, rank))
            batch = masker(stream.take(first, train.batch_size), generator)
            sync = contextlib.nullcontext() if micro == train.grad_accum - 1 else accelerator.no_sync(loss_module)
            with sync:
                with autocast():
                    loss_sum, count, last_nfe = loss_module(batch["input_ids"].to(accelerator.device),
                                                            batch["labels"].to(accelerator.device))
                # Mean over this micro-batch's masked tokens; DDP averages over processes.
                accelerator.backward(loss_sum / count.clamp(min=1) / train.grad_accum)
            step_loss += torch.tensor([loss_sum.item(), count.item()], dtype=torch.float64)
        if train.max_grad_norm:
            accelerator.clip_grad_norm_(loss_module.parameters(), train.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        elapsed = time.perf_counter() - started
        if budget_seconds is not None and world > 1:
            # Every process must agree on when the wall-clock budget ends: the main process's clock decides.
            elapsed = accelerator.reduce(torch.tensor([elapsed], device=accelerator.device), reduction="mean").item()
        train_seconds += elapsed
        last_loss = (step_loss[0] / step_loss[1].clamp(min=1)).item()
        window_loss += last_loss
        window_steps += 1
        window_tokens += tokens_per_step
        window_seconds += elapsed
        if progress_bar is not None:
            progress_bar.update(1)
            progress_bar.set_postfix(loss=f"{last_loss:.3f}", tok_s=f"{window_tokens / max(window_seconds, 1e-9):.0f}")

        done = progress() >= 1.0
        evaluate_now = done or (train.eval_every and step % train.eval_every == 0)
        if evaluate_now and len(validation):
            val_loss, val_ppl = evaluate(accelerator.unwrap_model(loss_module), validation, masker, train.batch_size,
                                         train.seed, autocast, accelerator)
        if step % train.log_every == 0 or evaluate_now:
            train_loss_window = window_loss / window_steps
            logger.log({
                "step": step, "tokens": step * tokens_per_step, "elapsed_s": round(train_seconds, 3), "lr": lr,
                "train_loss": train_loss_window, "val_loss": val_loss if evaluate_now else "",
                "val_ppl": val_ppl if evaluate_now else "",
                "tokens_per_s": window_tokens / max(window_seconds, 1e-9), "nfe": last_nfe,
            })
            if progress_bar is not None and evaluate_now and val_loss is not None:
                progress_bar.write(f"step {step}: train loss {train_loss_window:.4f}, validation loss {val_loss:.4f} "
                                   f"(perplexity {val_ppl:.1f})")
            last_window = (train_loss_window, window_tokens / max(window_seconds, 1e-9))
            window_loss, window_steps, window_tokens, window_seconds = 0.0, 0, 0, 0.0
        if done or (train.save_every and step % train.save_every == 0):
            save(step)
            last_saved = step
    if progress_bar is not None:
        progress_bar.close()
    if last_saved != step:
        save(step)

    final_dir = output_dir / "final"
    if main:
        unwrapped = accelerator.unwrap_model(loss_module).model

        def write_final(staging: Path) -> None:
            unwrapped.save_pretrained(staging)
            tokenizer.save_pretrained(staging)

        write_atomically(final_dir, write_final)
    accelerator.wait_for_everyone()
    logger.close()
    train_loss_window, speed = last_window if step and "last_window" in locals() else (float("nan"), 0.0)
    return PretrainResult(
        output_dir=output_dir, final_dir=final_dir, steps=step, tokens=step * tokens_per_step,
        train_loss=train_loss_window, last_loss=last_loss, val_loss=val_loss, val_ppl=val_ppl,
        train_seconds=train_seconds, tokens_per_second=step * tokens_per_step / max(train_seconds, 1e-9),
        model=accelerator.unwrap_model(loss_module).model,
    )


def validation_loss(run_dir: str | os.PathLike, ode_steps: int | None = None, checkpoint: str | None = None,
                    max_blocks: int | None = None) -> dict:
    """MLM validation loss of a finished pretraining run, optionally with another ``ode_steps`` than it trained with.

    Uses the run's own config, tokenizer, validation blocks and fixed masks (the same ones its training-time
    evaluations used), so the figure is comparable with ``log.csv``. Returns ``{"val_loss", "val_ppl", "nfe"}``.
    """
    from accelerate import Accelerator

    run_dir = Path(run_dir)
    config = load_config(run_dir / "pretrain_config.yaml")
    accelerator = Accelerator(cpu=not (torch.cuda.is_available() or _has_xpu()))
    _, tokenizer, blocks = _prepare_data(config, run_dir, accelerator)
    dtype = resolve_precision(config.train.precision, accelerator.device)
    attn = resolve_attention(config.train.attn_implementation, accelerator.device.type, dtype == torch.bfloat16)
    model = BertOdeForMaskedLM.from_pretrained(checkpoint or run_dir / "final", attn_implementation=attn)
    if ode_steps is not None:
        model.config.ode_steps = ode_steps
    loss_module = SparseMlmLoss(model).to(accelerator.device)
    masker = MlmMasker(tokenizer, config.data.mlm_probability, config.data.whole_word_mask)
    validation = blocks["validation"][: max_blocks or config.train.eval_blocks]

    def autocast():
        return contextlib.nullcontext() if dtype is None else torch.autocast(accelerator.device.type, dtype=dtype)

    loss, ppl = evaluate(loss_module, validation, masker, config.train.batch_size, config.train.seed, autocast,
                         accelerator)
    probe = masker(validation[:1], torch.Generator().manual_seed(0))
    with torch.no_grad(), autocast():
        nfe = loss_module(probe["input_ids"].to(accelerator.device), probe["labels"].to(accelerator.device))[2]
    return {"val_loss": loss, "val_ppl": ppl, "nfe": nfe}
