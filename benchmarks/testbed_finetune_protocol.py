"""Is the testbed's downstream protocol converged? Fine-tunes one pretrained testbed encoder and the same
encoder from random initialisation on rotten-tomatoes over a grid of learning rates and epochs, one seed
each, and records where each run's best validation step fell (a best step in the last fifth of training
means it had not converged) and its validation curve. The testbed report shows the table and the curves.

Usage: python benchmarks/testbed_finetune_protocol.py [--rates 3e-5,1e-4,3e-4,1e-3] [--epochs 3,8]
       [--pretrained runs/plateau/L2-s64-i05-16M-wsd/final]
       [--out reports/testbed/finetune_protocol.json]
The encoder of reports/testbed/finetune_protocol.json (8 settings: --rates 1e-4,3e-4,1e-3 --epochs 3, then
--rates 1e-3 --epochs 8):
    bert-ode pretrain --config testbed --set model.num_hidden_layers=2 --set train.lr=2e-3 \
      --set train.budget_tokens=16000000 --set train.schedule=wsd --set train.cooldown_fraction=0.1 \
      --set train.output_dir=runs/plateau/L2-s64-i05-16M-wsd
(finetune_protocol_seq128.json: the 48M-token encoder of the old 128-token recipe, 12 settings.)
Resumable: settings already in ``--out`` are kept. fp32, 2 threads, as the testbed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from bert_ode.configuration_bert_ode import BertOdeConfig
from bert_ode.data.tasks import load_task
from bert_ode.data.tokenizer import load_tokenizer
from bert_ode.finetune import FinetuneConfig, finetune
from bert_ode.modeling_bert_ode import BertOdeForMaskedLM
from bert_ode.pretrain.data import seed_for
from bert_ode.utils.device import cpu_capability


def random_encoder(pretrained: str, folder: Path) -> str:
    """The pretrained encoder's architecture and tokenizer, randomly initialised as the testbed's
    random-init control is: the same encoder without its pretraining."""
    torch.manual_seed(seed_for(0, "init"))
    BertOdeForMaskedLM(BertOdeConfig.from_pretrained(pretrained)).save_pretrained(folder)
    load_tokenizer(pretrained).save_pretrained(folder)
    return str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="3e-5,1e-4,3e-4,1e-3")
    parser.add_argument("--epochs", default="3,8")
    parser.add_argument("--pretrained", default="runs/plateau/L2-s64-i05-16M-wsd/final")
    parser.add_argument("--out", default="reports/testbed/finetune_protocol.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    out = Path(args.out)
    record = json.loads(out.read_text()) if out.is_file() else {"machine": {}, "runs": []}
    record["machine"] = {"cpu_capability": cpu_capability(), "threads": 2, "precision": "fp32"}
    done = {(r["model"], r["learning_rate"], r["epochs"]) for r in record["runs"]}
    task = load_task("rotten-tomatoes")
    with tempfile.TemporaryDirectory() as folder:
        models = {"pretrained": args.pretrained, "random-init": random_encoder(args.pretrained, Path(folder))}
        for epochs in [float(e) for e in args.epochs.split(",")]:
            for rate in [float(r) for r in args.rates.split(",")]:
                for name, checkpoint in models.items():
                    if (name, rate, epochs) in done:
                        continue
                    config = FinetuneConfig(
                        checkpoint=checkpoint,
                        output_dir=None,  # the record below is the output
                        task="rotten-tomatoes",
                        seeds=[0],
                        learning_rate=rate,
                        epochs=epochs,
                        batch_size=32,
                        max_seq_length=64,
                        evaluations_per_epoch=4,
                        eval_ode_steps=[],
                        precision="fp32",
                        progress=False,
                    )
                    run = finetune(config, task_data=task)["runs"][0]
                    record["runs"].append(
                        {
                            "model": name,
                            "checkpoint": checkpoint if name == "pretrained" else "random init (seed 0)",
                            "learning_rate": rate,
                            "epochs": epochs,
                            "best_step": run["best_step"],
                            "max_steps": run["max_steps"],
                            "validation": run["validation"],
                            "test": run["test"],
                            "history": run["selection_history"],
                        }
                    )
                    best = f"best step {run['best_step']}/{run['max_steps']}"
                    print(f"{name} lr {rate:g}, {epochs:g} epochs: {best}")
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
