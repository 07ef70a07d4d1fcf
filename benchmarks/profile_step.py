"""Where a ``bert-ode pretrain`` step's time goes: ``torch.profiler`` over a few steps of the study-size
model, grouped into matrix products, attention, the other elementwise and normalisation kernels, the MLM
head's loss, the masking (data) and the optimizer.

Usage: python benchmarks/profile_step.py [--method euler] [--precision auto|bf16|fp32] [--steps 6]
A CPU with native bf16 acts as an AVX2 one with ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from bert_ode.pretrain.config import load_config
from bert_ode.pretrain.loop import PretrainLoop, RunSetup
from bert_ode.utils.device import cpu_capability, make_accelerator

# op name fragments -> group; the first match wins
GROUPS = [
    ("matrix products", ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear")),
    ("attention kernel", ("scaled_dot_product", "flash_attention", "aten::_softmax", "aten::softmax")),
    ("optimizer", ("_fused_adamw", "adamw", "aten::_foreach")),
    ("loss (log-softmax, NLL)", ("log_softmax", "nll_loss", "cross_entropy")),
    ("embedding", ("embedding",)),
    ("normalisation", ("layer_norm",)),
    ("activation (GELU)", ("gelu",)),
    ("masking and indexing", ("bernoulli", "randperm", "index", "masked", "nonzero", "where", "rand")),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", default="euler")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        overrides = {
            "model.ode_method": args.method,
            "train.precision": args.precision,
            "train.compile": False,
            "train.output_dir": str(Path(scratch) / "run"),
            "train.progress_bar": False,
        }
        config = load_config("smoke", overrides)
        setup = RunSetup.create(config, Path(scratch) / "run", make_accelerator())
        loop = PretrainLoop(setup, None)
        for _ in range(2):
            loop.train_step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.steps):
                loop.train_step()
    totals: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        name = event.key.lower()
        group = next((g for g, parts in GROUPS if any(p in name for p in parts)), "other")
        totals[group] += event.self_cpu_time_total
    whole = sum(totals.values())
    print(
        f"{args.method}, {setup.compute.describe()} ({cpu_capability()}), {args.steps} profiled steps of "
        f"{config.train.batch_size} x {config.data.seq_len} tokens: {whole / 1e3 / args.steps:.1f} ms a step"
    )
    print("| where | share of the step |")
    print("|---|---|")
    for group, micros in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"| {group} | {micros / whole:.1%} |")


if __name__ == "__main__":
    main()
