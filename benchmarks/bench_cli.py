"""Wall time of the ``bert-ode`` command line, each call a fresh process as a user runs it.

    .venv/bin/python benchmarks/bench_cli.py       # the venv's bert-ode, 5 repeats, median
    python benchmarks/bench_cli.py --repeats 10 --command /tmp/venv/bin/bert-ode

Target (issue 26): ``--version`` and ``--help`` in well under a second (the launcher ``bert_ode_cli`` answers
them without importing torch); ``convert --help`` and a ``convert`` of a tiny BERT load torch and transformers
but not the training stack; ``pretrain --help`` loads the training stack. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _tiny_bert(folder: Path) -> Path:
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    BertForMaskedLM(config).save_pretrained(folder / "bert")
    return folder / "bert"


def _seconds(command: list[str], repeats: int, fresh: Path | None = None) -> tuple[list[float], str]:
    """Wall times of ``repeats`` fresh processes, and how the last one ended (``exit 2: <its error>`` where a
    model-only install refuses a training command: that answer is timed too)."""
    times, ending = [], "ok"
    for _ in range(repeats):
        if fresh is not None:
            shutil.rmtree(fresh, ignore_errors=True)
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines() or [""]
            ending = f"exit {result.returncode}: {lines[-1][:70]}"
    return times, ending


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    beside = Path(sys.executable).parent / "bert-ode"  # the command of the environment running this
    parser.add_argument("--command", default=str(beside) if beside.exists() else shutil.which("bert-ode"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        source, output = _tiny_bert(folder), folder / "ode"
        calls = {
            "--version": ([args.command, "--version"], None),
            "--help": ([args.command, "--help"], None),
            "convert --help": ([args.command, "convert", "--help"], None),
            "convert (tiny BERT)": ([args.command, "convert", str(source), str(output)], output),
            "pretrain --help": ([args.command, "pretrain", "--help"], None),
        }
        print(f"{args.command}, {args.repeats} fresh processes each: median (min, max) seconds")
        for name, (command, fresh) in calls.items():
            times, ending = _seconds(command, args.repeats, fresh)
            summary = f"{statistics.median(times):6.2f}  ({min(times):.2f}, {max(times):.2f})"
            print(f"  {name:<22} {summary}  {ending}")


if __name__ == "__main__":
    main()
