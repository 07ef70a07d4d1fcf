"""Where and in what precision a run computes: the accelerator, bf16 autocast, the attention kernel, and the
record of it (``ComputeInfo``)."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from dataclasses import dataclass

import torch
from accelerate import Accelerator, PartialState
from accelerate.state import AcceleratorState, GradientState

from .records import Record

PRECISIONS = ("auto", "bf16", "fp32")


def has_accelerator_device() -> bool:
    """A GPU of any kind accelerate drives: CUDA (and ROCm), Intel XPU, Apple MPS."""
    has_xpu = hasattr(torch, "xpu") and torch.xpu.is_available()
    has_mps = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    return torch.cuda.is_available() or has_xpu or has_mps


def make_accelerator(log_with: list[str] | None = None, project_dir=None) -> Accelerator:
    """The run's accelerator; ``log_with``: experiment trackers accelerate drives (wandb, mlflow, ...).

    accelerate keeps one ``AcceleratorState`` per process, and an ``Accelerator`` made after another one takes
    over its mixed precision: after a bf16 ``Trainer`` (fine-tuning), a plain ``Accelerator()`` would wrap the
    next pretraining's forward in bf16 autocast, whatever that run's config says. So every run starts from a
    fresh state with ``mixed_precision="no"``: the loops apply their own precision (``autocast`` below). The
    process group (``PartialState``, torchrun / accelerate launch) is kept.
    """
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    # Without a GPU, cpu=True is what makes accelerate set up gloo DDP under torchrun / accelerate launch.
    return Accelerator(
        cpu=not has_accelerator_device(),
        mixed_precision="no",
        log_with=log_with or None,
        project_dir=project_dir,
    )


def inference_device() -> torch.device:
    """Where evaluation runs: the device accelerate picks (a GPU of any kind, else the CPU)."""
    return PartialState(cpu=not has_accelerator_device()).device


# oneDNN ISA limits (ONEDNN_MAX_CPU_ISA) under which oneDNN still multiplies bf16 natively.
_ONEDNN_BF16_ISAS = {
    "ALL",
    "DEFAULT",
    "AVX512_CORE_BF16",
    "AVX512_CORE_FP16",
    "AVX512_CORE_AMX",
    "AVX512_CORE_AMX_FP16",
    "AVX10_1_512",
    "AVX10_1_512_AMX",
    "AVX10_1_512_AMX_FP16",
    "AVX10_2_512",
    "AVX10_2_512_AMX_2",
}


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_capability() -> str:
    """torch's view of this CPU's vector instructions (``AVX512``, ``AVX2``, ...); it honours
    ``ATEN_CPU_CAPABILITY``, so a machine told to act as an AVX2 one says ``AVX2``."""
    return torch.backends.cpu.get_cpu_capability()


def cpu_supports_bf16() -> bool:
    """True where this CPU multiplies bf16 natively (AVX-512 BF16 or AMX) *and* torch and oneDNN may use it:
    torch's CPU capability is AVX-512 (``ATEN_CPU_CAPABILITY``) and oneDNN's ISA is not capped below bf16
    (``ONEDNN_MAX_CPU_ISA``). Elsewhere bf16 is emulated: many times slower than fp32 (README, Benchmarks)."""
    flags = _cpu_flags()
    if flags:
        hardware = "avx512_bf16" in flags or "amx_bf16" in flags
    else:  # no /proc/cpuinfo (macOS, Windows): torch's view alone
        hardware = cpu_capability().startswith(("AVX512", "AMX"))
    onednn = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "ALL")).upper()
    return hardware and cpu_capability().startswith("AVX512") and onednn in _ONEDNN_BF16_ISAS


_EMULATION_WARNED = False


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """``precision`` (``auto``, ``bf16``, ``fp32``) made concrete: ``torch.bfloat16`` for autocast, or
    ``None`` for float32. ``auto`` is bf16 only where the hardware multiplies bf16 natively (CUDA with bf16;
    a CPU with AVX-512 BF16 or AMX). ``bf16`` where it is emulated runs, and says so once."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is invalid; allowed values: {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported()
    elif device.type == "cpu":
        native = cpu_supports_bf16()
    else:  # XPU, MPS: bf16 only when asked for
        native = False
    if precision == "bf16" and not native and device.type == "cpu":
        _warn_emulated_bf16()
    return torch.bfloat16 if native or precision == "bf16" else None


def _warn_emulated_bf16() -> None:
    global _EMULATION_WARNED
    if not _EMULATION_WARNED:
        _EMULATION_WARNED = True
        print(
            f"bert-ode: warning: precision bf16 on a CPU without native bf16 ({cpu_capability()}): it is "
            "emulated and many times slower than fp32; precision auto chooses fp32 here",
            file=sys.stderr,
        )


def precision_name(dtype: torch.dtype | None) -> str:
    """``bf16`` or ``fp32``: how a resolved precision is written in configs and records."""
    return "bf16" if dtype == torch.bfloat16 else "fp32"


@dataclass
class ComputeInfo(Record):
    """How and where a run computed: what every pretraining and fine-tuning record states."""

    precision: str  # the resolved precision: bf16 or fp32
    device: str  # cpu, cuda:0, ...
    cpu_capability: str  # torch's view of the CPU (AVX512, AVX2, ...)
    native_bf16: bool  # whether this machine multiplies bf16 natively
    threads: int  # torch intra-op threads
    cpu: str = ""  # the processor's name

    @classmethod
    def of(cls, dtype: torch.dtype | None, device: torch.device) -> ComputeInfo:
        native = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_supports_bf16()
        return cls(
            precision=precision_name(dtype),
            device=str(device),
            cpu_capability=cpu_capability(),
            native_bf16=bool(native),
            threads=torch.get_num_threads(),
            cpu=cpu_name(),
        )

    def describe(self) -> str:
        return f"{self.precision} on {self.device} ({self.cpu_capability}, {self.threads} thread(s))"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def resolve_attention(name: str, device_type: str, bf16: bool) -> str:
    """``train.attn_implementation``, with ``auto`` made concrete for this device and precision.

    auto: eager attention for bf16 on CPU (measured faster there: its bf16 matmuls beat the CPU
    flash-attention kernel, 396 vs 435 ms a step at hidden 256 / 4 layers / 32 x 128), sdpa everywhere else.
    """
    if name != "auto":
        return name
    return "eager" if device_type == "cpu" and bf16 else "sdpa"


def autocast(device: torch.device, dtype: torch.dtype | None):
    """bf16 autocast on ``device``, or nothing for float32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
