#!/usr/bin/env bash
# Carries a long study across machines or fresh checkouts, part by part.
#
#   scripts/study_parts.sh save    [NAME]   # after a part: runs/compare/NAME -> reports/NAME-partial (commit it)
#   scripts/study_parts.sh restore [NAME]   # before the next part, on a fresh checkout: the reverse
#   .venv/bin/bert-ode compare --preset NAME   # then run (resume) the study
#
# What travels: the finished units' records (every figure of the report comes from them), the study's shared
# tokenizer (so every part tokenises alike) and the study config. Pretraining checkpoints stay behind (hundreds
# of MB): a unit that was mid-way when its part stopped is trained again from its start.
set -euo pipefail
action=${1:?usage: study_parts.sh save|restore [NAME]}
name=${2:-cpu}
runs=runs/compare/$name
saved=reports/$name-partial
case "$action" in
  save)
    test -d "$runs/records" || { echo "no records in $runs" >&2; exit 2; }
    mkdir -p "$saved"
    rm -rf "$saved/records" "$saved/tokenizer"  # replaced whole; notes and logs beside them stay
    cp -r "$runs/records" "$runs/tokenizer" "$runs/study.yaml" "$saved/"
    echo "saved $(ls "$saved/records" | wc -l) records to $saved"
    ;;
  restore)
    test -d "$saved/records" || { echo "nothing saved in $saved" >&2; exit 2; }
    mkdir -p "$runs"
    cp -rn "$saved/records" "$saved/tokenizer" "$runs/"
    echo "restored $(ls "$runs/records" | wc -l) records to $runs"
    ;;
  *) echo "usage: study_parts.sh save|restore [NAME]" >&2; exit 2 ;;
esac
