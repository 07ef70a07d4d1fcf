"""torch.compile for the pretraining step: when it pays, how it is tried, and the eager fall-back.

Only the encoder is compiled: its shapes are fixed (batch x seq_len), while the MLM head sees a different
number of masked positions every batch, which would recompile. The native fixed-step encoder compiles as one
graph (``tests/test_compile.py``); a library backend (torchdiffeq, torchode, torchdyn) runs Python control
flow at every step, so it stays eager.

Inductor's on-disk FX graph cache (on by default) keeps compiled kernels across processes, so a study of many
runs of one shape compiles once and then loads; ``TORCHINDUCTOR_CACHE_DIR`` moves it.
"""

from __future__ import annotations

import sys
import time

import torch

from .mlm_loss import SparseMlmLoss

# ``train.compile: auto`` compiles runs of at least this many optimizer steps: compiling a BERT-Tiny step
# takes ~10-20 s on 2 CPU cores and gains ~15%, which pays back after a few hundred steps.
AUTO_MIN_STEPS = 300


def should_compile(mode: bool | str, model_config, total_steps: int | None) -> bool:
    """``train.compile`` (true, false or ``auto``) made concrete for this model and run length."""
    if mode is False or model_config.ode_backend != "native":
        return False
    if mode is True:
        return True
    return total_steps is None or total_steps >= AUTO_MIN_STEPS  # None: a wall-clock budget, long by design


def compile_encoder(loss_module: SparseMlmLoss, probe_input_ids: torch.Tensor, autocast) -> bool:
    """Compiles ``loss_module``'s encoder and runs one forward and backward on ``probe_input_ids`` (the
    training shape) so that any compiler failure shows now, not mid-run; falls back to eager with a one-line
    notice.

    The probe's gradients are discarded; every training step re-seeds its own randomness, so the probe changes
    no training number. Returns whether the encoder runs compiled.
    """
    # Long work shows progress: compiling takes 10-20 s on 2 cores (minutes on a slow one) with nothing else
    # printed; the on-disk cache makes later runs of the same shape quick.
    print("pretrain: compiling the encoder (train.compile=false skips it) ...", file=sys.stderr)
    started = time.perf_counter()
    loss_module.compile_encoder()
    loss_module.train()  # the mode the steps run in: a probe in eval mode would leave the recompile to step 1
    try:
        with autocast():
            hidden = loss_module.encode(probe_input_ids)
        hidden.float().sum().backward()
        print(f"pretrain: compiled in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    except Exception as error:  # noqa: BLE001 - any compiler failure (no C++ toolchain, unsupported op) means eager
        loss_module.compile_encoder(False)
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        print(
            f"pretrain: torch.compile is unavailable here ({type(error).__name__}: {first_line[:160]}); "
            "training eager (set train.compile=false to skip the attempt)",
            file=sys.stderr,
        )
        return False
    finally:
        loss_module.zero_grad(set_to_none=True)
    return True
