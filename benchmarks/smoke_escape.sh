#!/usr/bin/env bash
# Can a recipe of the smoke study's size leave the word-frequency plateau (validation MLM loss 1 nat below
# the unigram entropy) within a 10-minute main job? Constant-rate runs on the built-in corpus, one change at
# a time from the smoke recipe of 2026-12-06 (hidden 128, 128-token blocks, initializer_range 0.02, 15%
# masking), fp32 on 1 thread each; benchmarks/smoke_escape.md is made from the run folders by
#   .venv/bin/python benchmarks/smoke_escape.py runs/smoke-escape > benchmarks/smoke_escape.md
# Escape points are in tokens and do not depend on the machine; throughput does (the .md says which).
set -euo pipefail
cd "$(dirname "$0")/.."
run() {
  local name=$1 budget=$2; shift 2
  test -f "runs/smoke-escape/$name/final/config.json" && return 0
  .venv/bin/bert-ode pretrain --config smoke --set train.schedule=constant --set train.progress_bar=false \
    --set "train.output_dir=runs/smoke-escape/$name" --set "train.budget_tokens=$budget" \
    --set train.num_threads=1 --set train.precision=fp32 --set train.save_every=100000 \
    --set train.warmup_tokens=100000 --set train.eval_every=20 --set train.eval_blocks=256 \
    --set model.hidden_size=128 --set model.intermediate_size=512 --set data.seq_len=64 \
    --set train.batch_size=64 --set model.initializer_range=0.05 --set data.mlm_probability=0.15 "$@"
}
run s64-i05-lr4 1500000 --set train.lr=4e-3
run v1024-s64-lr4 1000000 --set tokenizer.vocab_size=1024 --set train.lr=4e-3
run v1024-s32-lr4 1000000 --set tokenizer.vocab_size=1024 --set data.seq_len=32 --set train.batch_size=128 \
  --set model.max_position_embeddings=32 --set train.lr=4e-3
run v4096-s64-lr8 1000000 --set train.lr=8e-3
run v1024-s64-lr8 1000000 --set tokenizer.vocab_size=1024 --set train.lr=8e-3
run b16-i05-lr4 1000000 --set train.batch_size=16 --set train.warmup_tokens=50000 --set train.lr=4e-3
run b16-i1-lr4 1000000 --set train.batch_size=16 --set train.warmup_tokens=50000 --set model.initializer_range=0.1 \
  --set train.lr=4e-3
run m30-lr4 1500000 --set data.mlm_probability=0.3 --set train.lr=4e-3
run m40-lr4 1500000 --set data.mlm_probability=0.4 --set train.lr=4e-3
run m30-i1-lr2 800000 --set data.mlm_probability=0.3 --set model.initializer_range=0.1 --set train.lr=2e-3
run h64-lr4 1500000 --set model.hidden_size=64 --set model.intermediate_size=256 --set train.lr=4e-3
run h64-i1-lr4 1400000 --set model.hidden_size=64 --set model.intermediate_size=256 --set data.mlm_probability=0.3 \
  --set model.initializer_range=0.1 --set train.lr=4e-3
run h64-m30-long 6000000 --set model.hidden_size=64 --set model.intermediate_size=256 \
  --set data.mlm_probability=0.3 --set train.eval_every=40 --set train.lr=4e-3
