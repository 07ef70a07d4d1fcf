#!/usr/bin/env bash
# Is the cpu study's downstream protocol (BBC News, 800 articles, learning rate 2e-3, 5 epochs) what makes its
# from-scratch encoders fall short of TF-IDF, and fine-tune better after 4M tokens than after 16M?
# Fine-tunes BERT (seed 0) pretrained on 4M and on 16M tokens with other learning rates and epochs, one
# fine-tuning seed each, and prints a markdown table of best step, validation and test accuracy.
#
#   bash benchmarks/finetune_protocol_check.sh [RUNS=runs/compare/cpu] [OUT=runs/finetune-check]
#
# Needs the finished cpu study's runs (bert-ode compare --preset cpu). About 5 minutes on 2 cores.
set -euo pipefail
runs=${1:-runs/compare/cpu}
out=${2:-runs/finetune-check}
models=(
  "4M:$runs/sweep/bert--tokens-4000000--lr-0.004--seed-0/final"
  "16M:$runs/pretrain/bert/tokens-16000000/seed-0/final"
)
for model in "${models[@]}"; do
  test -d "${model#*:}" || { echo "no finished run at ${model#*:}: run the cpu study first" >&2; exit 2; }
done
mkdir -p "$out"
for spec in 2e-4:5 5e-4:5 1e-3:5 2e-3:5 4e-3:5 8e-3:5 2e-3:20 4e-3:20; do
  lr=${spec%%:*} epochs=${spec#*:}
  for model in "${models[@]}"; do
    dir=$out/${model%%:*}--lr-$lr--epochs-$epochs
    test -f "$dir/results.json" && continue  # resumable: finished fine-tunings are kept
    echo "$(date +%T) ${model%%:*} tokens, lr $lr, $epochs epochs" >&2
    .venv/bin/bert-ode finetune "${model#*:}" --task bbc-news --epochs "$epochs" --learning_rate "$lr" \
      --batch_size 32 --max_seq_length 128 --max_train_examples 800 --bf16 --seeds 0 --output_dir "$dir" \
      --no_progress > "$dir.log" 2>&1
  done
done
.venv/bin/python - "$out" <<'EOF'
import json, sys
from pathlib import Path

print("| pretraining | fine-tuning lr | epochs | best step / steps | validation accuracy | test accuracy |")
print("|---|---|---|---|---|---|")

def order(path):  # by pretraining tokens, then epochs, then learning rate
    pretrained, lr, epochs = path.parent.name.split("--")
    return float(pretrained[:-1]), int(epochs[7:]), float(lr[3:])


for path in sorted(Path(sys.argv[1]).glob("*/results.json"), key=order):
    pretrained, lr, epochs = path.parent.name.split("--")
    run = json.loads(path.read_text())["runs"][0]
    print(
        f"| {pretrained} tokens | {lr[3:]} | {epochs[7:]} | {run['best_step']} / {run['steps']} | "
        f"{run['validation']['accuracy']:.3f} | {run['test']['accuracy']:.3f} |"
    )
EOF
