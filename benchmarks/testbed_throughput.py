"""Training throughput per depth, width and scheme on this machine: the testbed's first control
(reports/testbed).

Each point is a real ``bert-ode pretrain`` run of the testbed recipe (``configs/testbed.yaml``: the built
corpus, its tokenizer, fp32) for ``--steps`` optimizer steps with no evaluation and no checkpoint; its
figure is the median tokens per second of the logging windows after the first two (the first steps compile
and warm the allocator). Points run one at a time, so that nothing else shares the cores.

Usage: python benchmarks/testbed_throughput.py [--steps 100] [--out reports/testbed/throughput.json]
Resumable: points already in ``--out`` (same machine, steps and threads) are kept, not run again.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
from pathlib import Path

import torch

from bert_ode.pretrain.config import load_config
from bert_ode.pretrain.loop import pretrain
from bert_ode.utils.device import cpu_capability

# (hidden, intermediate, heads) of each width; (layers, ode_method) points measured at each
WIDTHS = {128: (512, 2), 256: (1024, 4)}
POINTS = {
    128: [(layers, method) for layers in (2, 4, 6, 8) for method in ("euler", "heun")],
    256: [(2, "euler"), (4, "euler"), (6, "euler"), (8, "euler"), (6, "heun")],
}


def measure(hidden: int, layers: int, method: str, steps: int, threads: int) -> dict:
    intermediate, heads = WIDTHS[hidden]
    with tempfile.TemporaryDirectory() as folder:
        overrides = {
            "model.hidden_size": hidden,
            "model.intermediate_size": intermediate,
            "model.num_attention_heads": heads,
            "model.num_hidden_layers": layers,
            "model.ode_method": method,
            "train.output_dir": folder,
            "train.max_steps": steps,
            "train.eval_every": 10**9,
            "train.save_every": 10**9,
            "train.log_every": 10,
            "train.num_threads": threads,
            "train.progress_bar": False,
        }
        result = pretrain(load_config("testbed", overrides))
        with open(Path(folder) / "log.csv", newline="", encoding="utf-8") as handle:
            windows = [float(r["tokens_per_s"]) for r in csv.DictReader(handle) if r.get("tokens_per_s")]
    return {
        "hidden": hidden,
        "layers": layers,
        "ode_method": method,
        "tokens_per_second": round(statistics.median(windows[2:] or windows)),
        "windows": len(windows),
        "parameters": sum(p.numel() for p in result.model.parameters()) if result.model is not None else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="reports/testbed/throughput.json")
    args = parser.parse_args()
    machine = {
        "cpu_capability": cpu_capability(),
        "threads": args.threads,
        "precision": "fp32",
        "torch": torch.__version__,
        "steps": args.steps,
        "tokens_per_step": 32 * 128,
    }
    out = Path(args.out)
    record = json.loads(out.read_text()) if out.is_file() else {"machine": machine, "points": []}
    if record["machine"] != machine:
        raise SystemExit(f"{out} was measured on another setting ({record['machine']}); use another --out")
    done = {(p["hidden"], p["layers"], p["ode_method"]) for p in record["points"]}
    for hidden, points in POINTS.items():
        for layers, method in points:
            if (hidden, layers, method) in done:
                continue
            point = measure(hidden, layers, method, args.steps, args.threads)
            print(f"hidden {hidden}, {layers} layers, {method}: {point['tokens_per_second']:,} tokens/s")
            record["points"].append(point)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
