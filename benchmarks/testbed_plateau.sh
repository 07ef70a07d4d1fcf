#!/usr/bin/env bash
# Where does BERT leave the word-frequency plateau on the built corpus, and does any cheap recipe change move
# it? Constant-rate runs of the testbed recipe (configs/testbed.yaml, fp32, 2 threads), their validation
# curves copied to reports/testbed/plateau/<name>.csv; reports/testbed/plateau.md is made from those files by
#   .venv/bin/python benchmarks/testbed_plateau.py
# About 75 minutes on the 2-core AVX-512 machine of 2026-12-07. Resumable: a finished run is skipped.
set -euo pipefail
common=(--config testbed --set train.schedule=constant --set train.progress_bar=false --set train.save_every=400)
run() {
  local name=$1; shift
  test -f "runs/plateau/$name/final/config.json" && return 0
  .venv/bin/bert-ode pretrain "${common[@]}" --set "train.output_dir=runs/plateau/$name" "$@"
}
l2=(--set model.num_hidden_layers=2 --set train.lr=2e-3 --set train.budget_tokens=8000000)
run L2-beta2-0.999 "${l2[@]}" --set "train.betas=[0.9,0.999]"
run L2-init-0.05 "${l2[@]}" --set model.initializer_range=0.05
run L2-post-ln "${l2[@]}" --set model.norm_position=post
run L2-lr2e-3-48M --set model.num_hidden_layers=2 --set train.lr=2e-3 --set train.budget_tokens=48000000
run L6-lr1e-3-16M --set model.num_hidden_layers=6 --set train.lr=1e-3 --set train.budget_tokens=16000000
mkdir -p reports/testbed/plateau
for dir in runs/plateau/*/; do
  python3 -c "import csv,sys; rows=[r for r in csv.DictReader(open(sys.argv[1])) if r.get('val_loss')]; \
w=csv.writer(open(sys.argv[2],'w',newline='')); w.writerow(['tokens','val_loss']); \
[w.writerow([r['tokens'],r['val_loss']]) for r in rows]" "$dir/log.csv" "reports/testbed/plateau/$(basename "$dir").csv"
done
