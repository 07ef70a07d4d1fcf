"""Depth elasticity on trained models: do the hidden states converge in the step count like an ODE solution?
A script; nothing imports it.

    python benchmarks/elasticity_signature.py runs/compare/cpu/pretrain/*/tokens-16000000/seed-0

For each finished pretraining run (a folder with ``final/`` and ``pretrain_config.yaml``) it evaluates the
trained encoder on the run's own validation blocks with n = 1, 2, 4, ..., 64 steps per block (--max-steps), in
eval mode and float64 (so that round-off is not what the finest differences measure), and measures the
relative change of the last hidden state between n and 2n steps,

    d(n) = ||y_n - y_2n|| / ||y_2n||   (Frobenius norm per block, median over blocks).

If the trained field were in the asymptotic regime of a scheme of order p (docs/mathematics.md, section 13),
d(n) / d(2n) would approach 2^p: 2 for Euler, 4 for Heun, and for the gated RK2 4 while its first-order
global error (proportional to (gamma - 1/2) h) is small beside the second-order one, then 2 as h -> 0. For
gated models the script also reports the trained gate: the median over tokens of |gamma - 1/2| at the trained
step count. A ratio that does not approach 2^p says that the model is a function of its step count, not a
solution of an ODE. The table goes to stdout (markdown); --json and --plot also write the figures and a
log-log plot of d(n) against n. A JSON file written by --json may stand in for run folders: its figures are
reused, not measured again (to redraw a plot of several seeds in seconds).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

import torch
from transformers.utils import logging as hf_logging

from bert_ode import BertOdeModel
from bert_ode.modeling_bert_ode import RungeKuttaGate
from bert_ode.pretrain.config import load_config
from bert_ode.pretrain.loop import RunSetup
from bert_ode.utils.device import make_accelerator


def last_hidden_states(model: BertOdeModel, blocks: torch.Tensor, steps: int) -> torch.Tensor:
    model.config.ode_steps = steps
    with torch.no_grad():
        return model(input_ids=blocks).last_hidden_state


def signature(run_dir: Path, max_blocks: int, steps: list[int]) -> dict:
    """d(n) for n in ``steps`` but the last, and the ratios d(n) / d(2n), for one trained run."""
    config = load_config(run_dir / "pretrain_config.yaml")
    setup = RunSetup.create(config, run_dir, make_accelerator())
    blocks = setup.data.validation_blocks[:max_blocks]
    model = BertOdeModel.from_pretrained(run_dir / "final", attn_implementation="eager").double().eval()
    gates = []
    hooks = [
        module.register_forward_hook(lambda _m, _i, out: gates.append((out[0] - 0.5).abs().flatten()))
        for module in model.modules()
        if isinstance(module, RungeKuttaGate)
    ]
    trained = model.config.ode_steps
    last_hidden_states(model, blocks, trained)
    for hook in hooks:
        hook.remove()
    outputs = {n: last_hidden_states(model, blocks, n) for n in steps}
    change = {}
    for n, finer in zip(steps, steps[1:], strict=False):
        per_block = (outputs[n] - outputs[finer]).flatten(1).norm(dim=1) / outputs[finer].flatten(1).norm(
            dim=1
        )
        change[n] = statistics.median(per_block.tolist())
    ratios = {n: change[n] / change[2 * n] for n in change if 2 * n in change and change[2 * n] > 0}
    return {
        "run": str(run_dir),
        "ode_method": model.config.ode_method,
        "splitting": model.config.splitting,
        "trained_steps": trained,
        "relative_change": {str(n): d for n, d in change.items()},
        "ratio": {str(n): r for n, r in ratios.items()},
        "observed_order": {str(n): math.log2(r) for n, r in ratios.items() if r > 0},
        "gate_offset_median": torch.cat(gates).median().item() if gates else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "runs", nargs="+", type=Path, help="finished pretraining run folders, or JSON files written by --json"
    )
    parser.add_argument("--blocks", type=int, default=64, help="validation blocks to evaluate (default 64)")
    parser.add_argument("--max-steps", type=int, default=64, help="the finest step count (default 64)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--plot", type=Path, help="also draw d(n) against n here (png)")
    args = parser.parse_args()
    hf_logging.set_verbosity_error()
    torch.manual_seed(0)
    steps = [2**k for k in range(max(args.max_steps, 4).bit_length())]
    results = []
    for run in args.runs:
        if run.suffix == ".json":  # figures measured before: reused as they are
            results += json.loads(run.read_text())
        elif (run / "final").is_dir():
            results.append(signature(run, args.blocks, steps))
        else:
            parser.error(f"{run}: neither a finished pretraining run (no final/) nor a JSON file from --json")
    longest = max((len(r["relative_change"]) for r in results), default=0)
    steps = steps if longest < len(steps) else [2**k for k in range(longest + 1)]
    pairs = [f"{n}->{2 * n}" for n in steps[:-1]]
    ratio_names = [f"d({n})/d({2 * n})" for n in steps[:-2]]
    header = ["run", "scheme", "median abs(gamma - 1/2)", *ratio_names, *[f"d({p})" for p in pairs]]
    print("| " + " | ".join(header) + " |")
    print("|---" * len(header) + "|")
    for r in results:
        scheme = r["ode_method"] + (" + strang" if r["splitting"] == "strang" else "")
        changes = " | ".join(f"{r['relative_change'].get(str(n), float('nan')):.2e}" for n in steps[:-1])
        ratios = " | ".join(f"{r['ratio'].get(str(n), float('nan')):.2f}" for n in steps[:-2])
        gate = "-" if r["gate_offset_median"] is None else f"{r['gate_offset_median']:.3f}"
        print(f"| `{r['run']}` | {scheme} | {gate} | {ratios} | {changes} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.plot:
        plot(results, args.plot)


def plot(results: list[dict], path: Path) -> None:
    """d(n) against n on log-log axes: one colour per variant, one line style per seed, reference slopes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    variants = sorted({Path(r["run"]).parts[-3] for r in results if len(Path(r["run"]).parts) >= 3})
    seeds = sorted({Path(r["run"]).parts[-1] for r in results})
    styles = ["-", "--", "-.", ":"]
    for r in results:
        parts = Path(r["run"]).parts
        variant, seed = (parts[-3], parts[-1]) if len(parts) >= 3 else (r["run"], parts[-1])
        color = f"C{variants.index(variant) % 10}" if variant in variants else None
        ax.plot(
            [int(n) for n in r["relative_change"]],
            list(r["relative_change"].values()),
            color=color,
            linestyle=styles[seeds.index(seed) % len(styles)],
            marker="o",
            markersize=3,
            label=f"{variant} {seed}",
        )
    reference = [1, 64]
    for order, style in ((1, ":"), (2, "--")):
        ax.plot(reference, [0.2 * (n**-order) for n in reference], color="gray", linestyle=style, lw=1,
                label=f"slope -{order}")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("steps per block n")
    ax.set_ylabel("d(n) = ||y_n - y_2n|| / ||y_2n||")
    ax.set_title("Trained models: change of the last hidden state when the steps double", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6, ncol=2)
    fig.savefig(path, dpi=120, bbox_inches="tight")


if __name__ == "__main__":
    main()
