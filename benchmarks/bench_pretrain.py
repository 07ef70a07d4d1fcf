"""Tokens per second of ``bert-ode pretrain``'s training step against HuggingFace MLM pipelines.

All pipelines at one size, in one process, timed interleaved (one step of each in turn), on real packed text
from the built-in corpus:

* ``hf fp32``: ``BertForMaskedLM`` (full-vocabulary head over every position),
  ``DataCollatorForLanguageModeling`` and ``Trainer.training_step`` + AdamW - what a HuggingFace user writes
  first;
* ``hf bf16``: the same with ``TrainingArguments(bf16=True)`` (bf16 autocast) - what an informed user runs;
* ``bert-ode <method> before``: ``PretrainLoop.train_step`` of ``bert_ode.pretrain.loop`` as it ran before
  the throughput work (eager, per-parameter AdamW);
* ``bert-ode <method>``: the same step as ``bert-ode pretrain`` runs it now (compiled encoder, fused AdamW).

The matmul ceilings (median GFLOP/s of a 2048^3 matmul in fp32 and in bf16) are measured in the same run,
before and after the timed steps; each pipeline's "of ceiling" is against the ceiling of the precision it
computes in (bert-ode: ``--precision``, resolved as ``train.precision`` is; on a CPU without native bf16
``auto`` is fp32). Model FLOPs: 6 x matmul parameters x tokens for the encoder (times the scheme's
evaluations), plus attention, plus the MLM head on the positions each pipeline computes it for.

Sizes: ``small`` (hidden 256, 4 layers, vocab 8192; the size of the throughput target) and ``tiny`` (hidden
128, 2 layers, vocab 4096: the study's smoke recipe).

Usage: python benchmarks/bench_pretrain.py [--size small|tiny] [--methods euler,heun] [--steps 12]
       [--precision auto|bf16|fp32] [--no-hf-bf16]
A CPU with native bf16 acts as an AVX2 one with ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import transformers
from transformers import (
    BertConfig,
    BertForMaskedLM,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainingArguments,
)

from bert_ode.pretrain.config import PretrainConfig
from bert_ode.pretrain.loop import PretrainLoop, RunSetup
from bert_ode.tableaux import TABLEAUX
from bert_ode.utils.device import cpu_capability, make_accelerator, precision_name

SIZES = {
    "small": dict(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024, vocab=8192
    ),
    "tiny": dict(
        hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512, vocab=4096
    ),
}


def train_flops(size: dict, seq: int, tokens: int, head_positions: float, evaluations: int) -> float:
    """Forward + backward FLOPs (3 x forward, 2 per multiply-add) of the encoder, attention and MLM head."""
    hidden, inter, layers = size["hidden_size"], size["intermediate_size"], size["num_hidden_layers"]
    per_token_layer = 2 * (4 * hidden * hidden + 2 * hidden * inter)  # QKV + output, FFN up + down
    attention = 2 * 2 * seq * hidden  # scores and weighted sum, per token per layer
    head = 2 * (hidden * hidden + hidden * size["vocab"])
    forward = evaluations * tokens * layers * (per_token_layer + attention) + head_positions * head
    return 3 * forward


def matmul_ceiling(dtype: torch.dtype, repeats: int = 10) -> float:
    """Median GFLOP/s of a 2048^3 matmul in ``dtype`` on this machine, now (an emulated bf16: 1024^3, fewer
    repeats, so that measuring it takes seconds, not minutes)."""
    n = 2048 if dtype == torch.float32 or _fast(dtype) else 512
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def _fast(dtype: torch.dtype) -> bool:
    a = torch.randn(256, 256, dtype=dtype)
    start = time.perf_counter()
    a @ a
    return time.perf_counter() - start < 0.005


def hf_pipeline(setup: RunSetup, size: dict, args, bf16: bool, scratch: str):
    """A step of the HuggingFace reference pipeline, and its model FLOPs per step."""
    tokenizer, blocks = setup.data.tokenizer, setup.data.train_blocks
    config = {k: v for k, v in size.items() if k != "vocab"}
    torch.manual_seed(0)
    model = BertForMaskedLM(
        BertConfig(
            vocab_size=len(tokenizer), **config, max_position_embeddings=args.seq, attn_implementation="sdpa"
        )
    )
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    trainer = Trainer(
        model=model,
        data_collator=collator,
        args=TrainingArguments(
            output_dir=scratch,
            per_device_train_batch_size=args.batch,
            learning_rate=1e-3,
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
            max_grad_norm=1.0,
            bf16=bf16,
        ),
    )
    trainer.create_optimizer_and_scheduler(num_training_steps=1000)
    trainer.current_gradient_accumulation_steps = 1  # normally set by Trainer.train()

    def step(i: int) -> None:
        rows = blocks[(i * args.batch) % (len(blocks) - args.batch) :][: args.batch]
        # Trainer.train() runs the step in the prepared model's autocast; training_step alone does not.
        with trainer.accelerator.autocast():
            trainer.training_step(model, collator([{"input_ids": row} for row in rows]))
        trainer.optimizer.step()
        trainer.optimizer.zero_grad()

    tokens = args.batch * args.seq
    return step, train_flops(size, args.seq, tokens, tokens, 1)


def bert_ode_pipeline(setup: RunSetup, size: dict, args, method: str, before: bool):
    """A step of ``bert-ode pretrain`` (``PretrainLoop.train_step``), as it is or as it was before."""
    setup.config = setup.config.with_overrides({"model.ode_method": method, "train.compile": not before})
    loop = PretrainLoop(setup, None)
    if before:
        for group in loop.optimizer.param_groups:
            group["fused"] = False  # per-parameter AdamW, as before

    def step(i: int) -> None:
        loop.train_step()

    evaluations = TABLEAUX[method].stages if method in TABLEAUX else 1
    tokens = args.batch * args.seq
    return step, train_flops(size, args.seq, tokens, 0.15 * tokens, evaluations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=list(SIZES), default="small")
    parser.add_argument("--methods", default="euler", help="comma-separated ode_method values")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto", help="bert-ode's")
    parser.add_argument(
        "--no-hf-bf16", action="store_true", help="skip hf bf16 (slow where bf16 is emulated)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    size = SIZES[args.size]
    ceilings_before = {dtype: matmul_ceiling(dtype) for dtype in (torch.float32, torch.bfloat16)}

    with tempfile.TemporaryDirectory() as scratch:
        model = {k: v for k, v in size.items() if k != "vocab"}
        config = PretrainConfig().with_overrides(
            {
                "data.builtin": "austen",
                "data.seq_len": args.seq,
                "tokenizer.vocab_size": size["vocab"],
                "model": {**model, "max_position_embeddings": args.seq},
                "train.batch_size": args.batch,
                "train.output_dir": str(Path(scratch) / "run"),
                "train.progress_bar": False,
                "train.precision": args.precision,
            }
        )
        setup = RunSetup.create(config, Path(scratch) / "run", make_accelerator())
        pipelines = {"hf fp32": hf_pipeline(setup, size, args, False, scratch)}
        if not args.no_hf_bf16:
            pipelines["hf bf16"] = hf_pipeline(setup, size, args, True, scratch)
        for method in args.methods.split(","):
            pipelines[f"bert-ode {method} before"] = bert_ode_pipeline(setup, size, args, method, before=True)
            pipelines[f"bert-ode {method}"] = bert_ode_pipeline(setup, size, args, method, before=False)
        times = {name: [] for name in pipelines}
        for i in range(args.warmup + args.steps):
            for name, (step, _) in pipelines.items():
                start = time.perf_counter()
                step(i)
                if i >= args.warmup:
                    times[name].append(time.perf_counter() - start)
    ceilings = {
        precision_name(dtype): (before + matmul_ceiling(dtype)) / 2
        for dtype, before in ceilings_before.items()
    }
    computes_in = {name: "bf16" if name == "hf bf16" else "fp32" for name in pipelines}
    computes_in.update({n: precision_name(setup.dtype) for n in pipelines if n.startswith("bert-ode")})
    flops = {name: flops for name, (_, flops) in pipelines.items()}
    report(times, flops, ceilings, computes_in, size, args)


def report(times: dict, flops: dict, ceilings: dict, computes_in: dict, size: dict, args) -> None:
    tokens = args.batch * args.seq
    print(
        f"hidden {size['hidden_size']}, {size['num_hidden_layers']} layers, vocab {size['vocab']}, batch "
        f"{args.batch} x {args.seq}, {args.threads} threads, {args.steps} timed steps each (interleaved); "
        f"CPU capability {cpu_capability()}; matmul ceilings measured in this run: fp32 "
        f"{ceilings['fp32']:.0f} GFLOP/s, bf16 {ceilings['bf16']:.0f} GFLOP/s"
    )
    print(
        "| pipeline | computes in | median step (ms) | tokens/s | vs hf fp32 | vs hf bf16 | vs before "
        "| GFLOP/s | of its ceiling |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    median = {name: statistics.median(values) for name, values in times.items()}
    for name, seconds in median.items():
        before = median.get(f"{name} before") if not name.endswith("before") else None
        gflops = flops[name] / seconds / 1e9
        versus_before = f"{before / seconds:.2f}x" if before else ""
        versus_bf16 = f"{median['hf bf16'] / seconds:.2f}x" if "hf bf16" in median else ""
        print(
            f"| {name} | {computes_in[name]} | {seconds * 1e3:.1f} | {tokens / seconds:,.0f} | "
            f"{median['hf fp32'] / seconds:.2f}x | {versus_bf16} | {versus_before} | "
            f"{gflops:.0f} | {gflops / ceilings[computes_in[name]]:.1%} |"
        )


if __name__ == "__main__":
    main()
