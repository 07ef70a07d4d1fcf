"""Forward+backward cost of BertOdeModel against transformers' BertModel of the same size.

    python benchmarks/bench_model.py                     # hidden 256, 4 layers, batch 16 x 128
    python benchmarks/bench_model.py --hidden 128 --layers 2 --batch 32 --repeats 20
    python benchmarks/bench_model.py --hidden 128 --layers 2 --batch 32 --repeats 5 --methods ab2,pcformer
    python benchmarks/bench_model.py --hidden 128 --layers 6 --methods ab-learned,euler+block,euler+channel

A method ``name+block`` / ``name+channel`` is that scheme with ``ode_learned_step`` (issue 36).

All models are built in one process and timed interleaved (one step of each per round, median over rounds), so
machine noise hits them alike. Targets (issue 2): euler / BertModel <= 1.03; a Runge-Kutta scheme with k
evaluations per step <= 1.05 * k * euler; (issue 23) a multistep or predictor-corrector scheme <= 1.10 * k *
euler (k = 1 for the multistep ones: their extra cost is a few vector additions). Memory is the activation
memory autograd saves for the backward pass (bytes of distinct tensor storages captured by saved-tensor
hooks): deterministic, and what training memory grows with; on a GPU the peak allocated memory is reported
too.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import BertConfig, BertModel
from transformers.utils import logging as hf_logging

from bert_ode import TABLEAUX, BertOdeConfig, BertOdeModel
from bert_ode.tableaux import MULTISTEP, PREDICTOR_CORRECTORS

SCHEMES = [
    "euler",
    "midpoint",
    "heun",
    "rk2-gated",
    "rk3",
    "rk4",
    "ab2",
    "ab3",
    "ab2-learned",
    "ab-learned",
    "pcformer-rk2",
]


def split(spec: str) -> tuple[str, str]:
    """``"euler+channel"`` -> ``("euler", "channel")``: a scheme and its ``ode_learned_step``."""
    scheme, _, learned_step = spec.partition("+")
    return scheme, learned_step or "none"


def evaluations(spec: str) -> int:
    """Vector-field evaluations per step of ``spec``'s scheme."""
    scheme = split(spec)[0]
    if scheme in TABLEAUX:
        return TABLEAUX[scheme].stages
    return (MULTISTEP.get(scheme) or PREDICTOR_CORRECTORS[scheme]).evaluations


def target(spec: str) -> float:
    scheme, learned_step = split(spec)
    # the learned schemes of issue 36 (ab-learned, a learned step): at most 5% over Euler at 6 layers
    return 1.05 if scheme in TABLEAUX or scheme == "ab-learned" or learned_step != "none" else 1.10


def saved_activation_bytes(step) -> int:
    """Bytes of the distinct storages autograd keeps for backward during ``step()``."""
    storages: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = step(backward=False)
    loss.backward()
    return sum(storages.values())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--methods", default=",".join(SCHEMES), help="comma-separated ode_method values")
    args = parser.parse_args()
    schemes = ["euler", *(m for m in args.methods.split(",") if m and m != "euler")]
    hf_logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    size = dict(
        vocab_size=8192,
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=max(1, args.hidden // 64),
        intermediate_size=4 * args.hidden,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(0)
    models = {"BertModel": BertModel(BertConfig(**size, attn_implementation=args.attn))}
    for spec in schemes:
        scheme, learned_step = split(spec)
        config = BertOdeConfig(
            **size, ode_method=scheme, ode_learned_step=learned_step, attn_implementation=args.attn
        )
        models[spec] = BertOdeModel(config)
    for model in models.values():
        model.to(device).train()
    input_ids = torch.randint(0, size["vocab_size"], (args.batch, args.seq), device=device)

    def make_step(model):
        def step(backward=True):
            loss = model(input_ids).last_hidden_state.float().pow(2).mean()
            if backward:
                loss.backward()
                model.zero_grad(set_to_none=True)
            return loss

        return step

    steps = {name: make_step(model) for name, model in models.items()}
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)

    memory = {}
    for name, step in steps.items():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
        memory[name] = (saved_activation_bytes(step), peak)
        models[name].zero_grad(set_to_none=True)

    median = {name: statistics.median(ts) for name, ts in times.items()}
    print(
        f"device {device}, threads {torch.get_num_threads()}, attention {args.attn}; hidden {args.hidden}, "
        f"{args.layers} layers, batch {args.batch} x {args.seq}; median of {args.repeats} interleaved "
        "fwd+bwd steps\n"
    )
    header = (
        f"{'model':<14} {'evals/step':>10} {'ms':>8} {'vs BERT':>8} {'vs k*euler':>11} {'target':>11} "
        f"{'saved act. MiB':>15} {'vs BERT':>8}"
    )
    if device.type == "cuda":
        header += f" {'peak MiB':>9}"
    print(header)
    print("-" * len(header))
    bert_ms, bert_memory = median["BertModel"], memory["BertModel"][0]
    euler_ms = median["euler"]
    for name in models:
        k = 1 if name == "BertModel" else evaluations(name)
        ms = median[name]
        if name == "BertModel":
            vs_k_euler, target_text = "", ""
        elif name == "euler":
            vs_k_euler, target_text = "", "<=1.03" + (" ok" if ms / bert_ms <= 1.03 else " MISS")
        else:
            ratio, limit = ms / (k * euler_ms), target(name)
            vs_k_euler, target_text = (
                f"{ratio:.3f}",
                f"<={limit:.2f}" + (" ok" if ratio <= limit else " MISS"),
            )
        saved, peak = memory[name]
        line = (
            f"{name:<14} {k:>10} {1000 * ms:>8.1f} {ms / bert_ms:>8.3f} {vs_k_euler:>11} {target_text:>11} "
            f"{saved / 2**20:>15.1f} {saved / bert_memory:>8.2f}"
        )
        if peak is not None:
            line += f" {peak / 2**20:>9.1f}"
        print(line)


if __name__ == "__main__":
    main()
