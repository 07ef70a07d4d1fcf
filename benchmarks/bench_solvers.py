"""Solver backends: speed, training memory and function evaluations (issue 3). A script; nothing imports it.

    python benchmarks/bench_solvers.py                          # hidden 128, 2 layers, batch 16 x 64
    python benchmarks/bench_solvers.py --hidden 256 --layers 4 --batch 16 --seq 128 --repeats 10

1. Speed: forward+backward of the same BertOdeModel (same weights) with each fixed-step scheme run by the
   native integrator and by torchdiffeq / torchdyn wherever they run the same scheme, timed interleaved in one
   process (median over rounds). Target: native at least as fast.
2. Training memory of rk4 with block / stage checkpointing and with the adjoint (torchdyn: classic RK4),
   against euler and plain rk4 backprop. Two measures: (a) the activation memory autograd keeps from forward
   to backward (distinct storages seen by saved-tensor hooks, as in bench_model.py; deterministic); (b) the
   peak resident memory during one training step, in a fresh subprocess per case: RSS sampled every 0.2 ms by
   a thread, peak minus the RSS after a warm-up step (includes transient recomputation in the backward pass;
   allocator noise of a few MB, so use a size where activations are tens of MB). Target: <= 1.3 x euler.
3. Function evaluations of torchode's per-sample steps vs torchdiffeq's batch-coupled steps (dopri5, same
   tolerance) on one BertOde layer (pre-norm, whole-layer field) over a batch of sequences where one is hard:
   its hidden states are scaled by 0.05, so its LayerNorm'd field turns it fast relative to its size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time

import psutil
import torch
from bench_model import saved_activation_bytes  # this folder is on sys.path when run as a script
from transformers.utils import logging as hf_logging

from bert_ode import BertOdeConfig, BertOdeModel
from bert_ode.solvers import BACKEND_METHODS, torchdyn_available

MEMORY_CASES = {
    "euler": dict(ode_method="euler"),
    "rk4": dict(ode_method="rk4"),
    "rk4 + block checkpointing": dict(ode_method="rk4", ode_checkpointing="block"),
    "rk4 + stage checkpointing": dict(ode_method="rk4", ode_checkpointing="stage"),
    # The adjoint is offered for adaptive solves only (fixed steps are refused): dopri5, default tolerance.
    "dopri5 (torchdiffeq)": dict(ode_method="dopri5", ode_backend="torchdiffeq"),
    "dopri5 + adjoint (torchdiffeq)": dict(ode_method="dopri5", ode_backend="torchdiffeq", ode_adjoint=True),
}


def build(args, **overrides):
    config = BertOdeConfig(
        vocab_size=1024,
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=max(1, args.hidden // 64),
        intermediate_size=4 * args.hidden,
        hidden_dropout_prob=0.0,  # the adjoint needs a deterministic field
        attention_probs_dropout_prob=0.0,
        attn_implementation="sdpa",
        **overrides,
    )
    torch.manual_seed(0)
    return BertOdeModel(config).train()


def batch(args):
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 1024, (args.batch, args.seq), generator=generator)
    return ids, torch.ones_like(ids)


def train_step(model, ids, mask, backward=True):
    loss = model(ids, attention_mask=mask).last_hidden_state.square().mean()
    if backward:
        loss.backward()
    return loss


def speed(args) -> None:
    have_torchdyn, why = torchdyn_available()
    model = build(args)
    ids, mask = batch(args)
    cases = []
    for method in ("euler", "midpoint", "heun", "rk4"):
        for backend in ("native", "torchdiffeq", "torchdyn"):
            if backend != "native" and method not in BACKEND_METHODS[backend]:
                continue
            if backend == "torchdyn" and not have_torchdyn:
                continue
            cases.append((method, backend))
    times: dict[tuple, list[float]] = {case: [] for case in cases}
    for round_ in range(args.warmup + args.repeats):
        for method, backend in cases:
            model.config.ode_method, model.config.ode_backend = method, backend
            model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            train_step(model, ids, mask)
            if round_ >= args.warmup:
                times[(method, backend)].append(time.perf_counter() - start)
    print(f"\n## 1. fwd+bwd time, median of {args.repeats} interleaved rounds")
    print("| scheme | backend | ms | / native |\n|---|---|---|---|")
    for method, backend in cases:
        ms = 1000 * statistics.median(times[(method, backend)])
        native = 1000 * statistics.median(times[(method, "native")])
        print(f"| {method} | {backend} | {ms:.1f} | {ms / native:.2f} |")
    if not have_torchdyn:
        print(f"(torchdyn skipped: {why})")
    print("torchdiffeq runs no classic rk4 (its 'rk4' is the 3/8 rule), torchdyn no heun.")


def saved_bytes(model, ids, mask) -> int:
    """The activation memory autograd keeps for backward, measured as in bench_model.py."""
    return saved_activation_bytes(lambda backward=True: train_step(model, ids, mask, backward=backward))


def memory_case(args, name: str) -> None:
    """Runs in a fresh subprocess: prints JSON with saved activation bytes and peak RSS growth of one step."""
    model = build(args, **MEMORY_CASES[name])
    ids, mask = batch(args)
    train_step(model, ids, mask)  # warm allocator and thread pools; .grad buffers now exist
    process, peak, running = psutil.Process(), [0], [True]
    baseline = process.memory_info().rss

    def sample():
        while running[0]:
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.0002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    train_step(model, ids, mask)
    running[0] = False
    sampler.join()
    peak = peak[0]
    saved = saved_bytes(model, ids, mask)
    print(json.dumps({"saved": saved, "rss": max(0, peak - baseline)}))


def memory(args) -> None:
    have_torchdyn, why = torchdyn_available()
    results = {}
    for name, overrides in MEMORY_CASES.items():
        if overrides.get("ode_backend") == "torchdyn" and not have_torchdyn:
            continue
        command = [sys.executable, __file__, "--memory-case", name] + _size_flags(args)
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        results[name] = json.loads(output.strip().splitlines()[-1])
    print("\n## 2. training memory of one step (fresh subprocess per case)")
    print("| case | saved activations MB | / euler | peak RSS growth MB | / euler |\n|---|---|---|---|---|")
    for name, r in results.items():
        e = results["euler"]
        print(
            f"| {name} | {r['saved'] / 2**20:.1f} | {r['saved'] / e['saved']:.2f} | "
            f"{r['rss'] / 2**20:.1f} | {r['rss'] / max(e['rss'], 1):.2f} |"
        )
    if not have_torchdyn:
        print(f"(torchdyn skipped: {why})")


def nfe(args) -> None:
    torch.manual_seed(0)
    model = build(
        args, ode_scope="layer", norm_position="pre", ode_method="dopri5", ode_backend="torchdiffeq"
    )
    model.config.ode_rtol, model.config.ode_atol = args.rtol, args.rtol
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.mul_(3.0)  # a field strong enough to need several steps
        ids, _ = batch(args)
        states = model.embeddings(ids)  # (batch, seq, hidden)
        states[0] *= 0.05  # the hard sequence
        layer = model.encoder.layer[0]
        rows = []
        for backend in ("torchdiffeq", "torchode"):
            model.config.ode_backend = backend
            layer(states)  # warm-up (first-call imports and allocations)
            start = time.perf_counter()
            _, (stats,) = layer(states)
            seconds = time.perf_counter() - start
            rows.append((backend, stats, seconds))
        model.config.ode_backend = "torchdiffeq"
        _, (easy,) = layer(states[1:])
    print(
        f"\n## 3. function evaluations, dopri5, rtol = atol = {args.rtol}, one layer, batch {args.batch} "
        "(sample 0 hard)"
    )
    print("| backend | batched evaluations | per-sample NFE: hard | easy (mean) | accepted / rejected | s |")
    print("|---|---|---|---|---|---|")
    for backend, stats, seconds in rows:
        if stats.nfe_per_sample is None:
            hard = easy_mean = stats.nfe  # batch-coupled: every sample takes every step
            steps = f"{stats.steps} / {stats.rejected}"
        else:
            hard, easy_mean = int(stats.nfe_per_sample[0]), stats.nfe_per_sample[1:].float().mean().item()
            steps = (
                f"hard {int(stats.steps_per_sample[0])} / {int(stats.rejected_per_sample[0])}, easy max "
                f"{int(stats.steps_per_sample[1:].max())} / {int(stats.rejected_per_sample[1:].max())}"
            )
        print(f"| {backend} | {stats.nfe} | {hard} | {easy_mean:.1f} | {steps} | {seconds:.2f} |")
    print(f"(torchdiffeq on the easy samples alone: {easy.nfe} evaluations)")


def _size_flags(args) -> list[str]:
    return [
        "--hidden",
        str(args.hidden),
        "--layers",
        str(args.layers),
        "--batch",
        str(args.batch),
        "--seq",
        str(args.seq),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rtol", type=float, default=1e-5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--only", choices=["speed", "memory", "nfe"], default=None)
    parser.add_argument("--memory-case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    hf_logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_case:
        memory_case(args, args.memory_case)
        return
    print(
        f"hidden {args.hidden}, {args.layers} layers, batch {args.batch} x {args.seq}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    for part in (speed, memory, nfe):
        if args.only in (None, part.__name__):
            part(args)


if __name__ == "__main__":
    main()
