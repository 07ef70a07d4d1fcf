#!/usr/bin/env bash
# Rebuilds the BERT shipped in the package (src/bert_ode/checkpoints/tiny-bert), the starting point of the
# main job (`make run` = bert-ode compare --preset warm-start): the smoke recipe (configs/smoke.yaml: hidden
# 64, 2 layers, 64-token blocks, initializer_range 0.05, 30% masking) on the built-in corpus, pretrained past
# the word-frequency plateau. 12M tokens (6.4 passes over the corpus's 1.88M training tokens), constant
# rate after a 100k-token warmup, a linear cooldown over the last 20%; fp32, seed 0. About 8 minutes on
# 2 cores (AVX2). The run's log and model card go with the weights.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/tiny-bert}
.venv/bin/bert-ode pretrain --config smoke --set "train.output_dir=$run" --set train.budget_tokens=12000000 \
  --set train.schedule=wsd --set train.warmup_tokens=100000 --set train.eval_every=100 \
  --set train.eval_blocks=512 --set train.save_every=500 --set train.precision=fp32 --set train.seed=0 \
  --set train.progress_bar=false
target=src/bert_ode/checkpoints/tiny-bert
rm -rf "$target" && mkdir -p "$target"
# The weights, config, tokenizer and model card; not the remote-code copies of the model files (the package
# is the model code here) nor their auto_map.
for file in config.json model.safetensors tokenizer.json tokenizer_config.json README.md; do
  install -m 644 "$run/final/$file" "$target/$file"
done
.venv/bin/python -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); c.pop('auto_map',None); \
open(p,'w').write(json.dumps(c,indent=2,sort_keys=True)+'\n')" "$target/config.json"
cp "$run"/log.csv "$target"/pretraining_log.csv
# The final validation loss beside the unigram entropy of the same blocks (the plateau rule's two numbers).
.venv/bin/python - "$run" "$target" <<'PY'
import json, sys
from bert_ode.pretrain.loop import validation_loss
scored = validation_loss(sys.argv[1])
summary = {"tokens": 12_000_000, "val_loss": scored.val_loss, "unigram_entropy": scored.unigram_entropy,
           "nats_below_unigram": scored.unigram_entropy - scored.val_loss, "made_by": "scripts/make_tiny_bert.sh"}
open(f"{sys.argv[2]}/training_summary.json", "w").write(json.dumps(summary, indent=2) + "\n")
print(summary)
PY
ls -la "$target"
