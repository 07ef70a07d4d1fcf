"""The table of benchmarks/smoke_escape.md from the run folders of benchmarks/smoke_escape.sh: per run, the
validation set's unigram entropy (its own tokenizer), the tokens at which the validation loss first fell
0.5, 1 and 1.5 nats below it, and the last evaluation."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerFast

from bert_ode.data.mlm import unigram_entropy
from bert_ode.pretrain import load_config


def row(run: Path) -> str:
    blocks = torch.load(next((run / "data-cache").glob("blocks-*.pt")), weights_only=True)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(run / "tokenizer")
    special = torch.zeros(len(tokenizer), dtype=torch.bool)
    special[tokenizer.all_special_ids] = True
    config = load_config(run / "pretrain_config.yaml")
    evaluated = blocks["validation"][: config.train.eval_blocks]  # the first blocks: what the runs scored
    unigram = unigram_entropy(evaluated, special, reference=blocks["train"])
    with open(run / "log.csv", newline="", encoding="utf-8") as handle:
        curve = [(int(r["tokens"]), float(r["val_loss"])) for r in csv.DictReader(handle) if r["val_loss"]]
    escape = [
        next((f"{t / 1e6:.2f}M" for t, loss in curve if loss <= unigram - m), "-") for m in (0.5, 1, 1.5)
    ]
    tokens, loss = curve[-1]
    m, d = config.model, config.data
    recipe = (
        f"h{m['hidden_size']}, vocab {config.tokenizer.vocab_size}, seq {d.seq_len}, batch "
        f"{config.train.batch_size}, init {m.get('initializer_range', 0.02)}, mask {d.mlm_probability}, "
        f"lr {config.train.lr:g}"
    )
    return (
        f"| `{run.name}` | {recipe} | {unigram:.3f} | {' | '.join(escape)} | {tokens / 1e6:.2f}M: {loss:.3f} "
        f"({unigram - loss:.2f} below) |"
    )


def main(root: str) -> None:
    print("| run | recipe | unigram | 0.5 below at | 1 below at | 1.5 below at | last evaluation |")
    print("|---|---|---|---|---|---|---|")
    for run in sorted(Path(root).iterdir()):
        if (run / "log.csv").is_file() and (run / "data-cache").is_dir():
            print(row(run))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/smoke-escape")
