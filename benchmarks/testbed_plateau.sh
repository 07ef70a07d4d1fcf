#!/usr/bin/env bash
# Where does BERT leave the word-frequency plateau on the built corpus, and does any cheap recipe change move
# it? Constant-rate runs of the testbed recipe (configs/testbed.yaml, fp32, 2 threads), their validation
# curves copied to reports/testbed/plateau/<name>.csv; reports/testbed/plateau.md is made from those files by
#   .venv/bin/python benchmarks/testbed_plateau.py
# About 5 hours on the 2-core AVX-512 machine of 2026-12-07. Resumable: a finished run is skipped.
set -euo pipefail
common=(--config testbed --set train.schedule=constant --set train.progress_bar=false --set train.save_every=400)
run() {
  local name=$1; shift
  test -f "runs/plateau/$name/final/config.json" && return 0
  .venv/bin/bert-ode pretrain "${common[@]}" --set "train.output_dir=runs/plateau/$name" "$@"
}
# round 1 and 2: one change each at 2 layers, read to 24M tokens (past seed 0's exit at 28.7M would be later)
l2=(--set model.num_hidden_layers=2 --set train.lr=2e-3 --set train.budget_tokens=24000000)
run L2-beta2-0.999 "${l2[@]/24000000/8000000}" --set "train.betas=[0.9,0.999]"   # worse at 8M: not continued
run L2-init-0.05 "${l2[@]}" --set model.initializer_range=0.05
run L2-post-ln "${l2[@]}" --set model.norm_position=post
run L2-batch-8-lr1e-3 --set model.num_hidden_layers=2 --set train.budget_tokens=24000000 --set train.batch_size=8 \
  --set train.lr=1e-3 --set train.eval_every=800 --set train.save_every=1600
run L2-heads-4 "${l2[@]}" --set model.num_attention_heads=4
run L2-seq-64 "${l2[@]}" --set data.seq_len=64 --set train.batch_size=64
run L2-h256 --set model.num_hidden_layers=2 --set train.budget_tokens=8000000 --set model.hidden_size=256 \
  --set model.intermediate_size=1024 --set model.num_attention_heads=4 --set train.lr=1e-3
# past the plateau
run L2-lr2e-3-48M --set model.num_hidden_layers=2 --set train.lr=2e-3 --set train.budget_tokens=48000000
run L6-lr1e-3-48M --set model.num_hidden_layers=6 --set train.lr=1e-3 --set train.budget_tokens=48000000
# is the exit's token count a property of the seed (initialisation and data order)?
run L2-lr2e-3-seed-1-48M --set model.num_hidden_layers=2 --set train.lr=2e-3 --set train.budget_tokens=48000000 \
  --set train.seed=1
# round 3: the initialisation's scale (the query-key product starts at the square of it)
run L2-init-0.1 "${l2[@]}" --set model.initializer_range=0.1
run L2-init-0.05-seed-1 "${l2[@]/24000000/40000000}" --set model.initializer_range=0.05 --set train.seed=1
# round 4: shorter sequences with the wider initialisation, two seeds at 2 layers and one at 6
s64=(--set data.seq_len=64 --set train.batch_size=64 --set model.initializer_range=0.05 --set train.budget_tokens=16000000)
run L2-seq-64-init-0.05 --set model.num_hidden_layers=2 --set train.lr=2e-3 "${s64[@]}"
run L2-seq-64-init-0.05-seed-1 --set model.num_hidden_layers=2 --set train.lr=2e-3 "${s64[@]}" --set train.seed=1
run L6-lr1e-3-seq-64-init-0.05 --set model.num_hidden_layers=6 --set train.lr=1e-3 "${s64[@]}"
run L2-seq-64-seed-1 "${l2[@]}" --set data.seq_len=64 --set train.batch_size=64 --set train.seed=1
mkdir -p reports/testbed/plateau
for dir in runs/plateau/*/; do
  python3 -c "import csv,sys; rows=[r for r in csv.DictReader(open(sys.argv[1])) if r.get('val_loss')]; \
w=csv.writer(open(sys.argv[2],'w',newline='')); w.writerow(['tokens','val_loss']); \
[w.writerow([r['tokens'],r['val_loss']]) for r in rows]" "$dir/log.csv" "reports/testbed/plateau/$(basename "$dir").csv"
done
