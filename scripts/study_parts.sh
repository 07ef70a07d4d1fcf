#!/usr/bin/env bash
# Carries a long study across machines or fresh checkouts, part by part.
#
#   scripts/study_parts.sh save    [NAME]   # after a part: runs/compare/NAME -> reports/NAME-partial (commit it)
#   scripts/study_parts.sh restore [NAME]   # before the next part, on a fresh checkout: the reverse
#   .venv/bin/bert-ode compare --preset NAME   # then run (resume) the study
#   scripts/study_parts.sh log NAME RAW.log partN   # a part's output, progress bars removed, appended to
#                                                   # reports/NAME-partial/partN.log
#
# What travels: the finished units' records (every figure of the report comes from them), the study's shared
# tokenizer (so every part tokenises alike) and the study config. Pretraining checkpoints stay behind (hundreds
# of MB): a unit that was mid-way when its part stopped is trained again from its start.
set -euo pipefail
action=${1:?usage: study_parts.sh save|restore|log [NAME]}
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
  log)
    raw=${3:?usage: study_parts.sh log NAME RAW_LOG PART}
    part=${4:?usage: study_parts.sh log NAME RAW_LOG PART}
    mkdir -p "$saved"
    # tqdm redraws its bars with carriage returns: split them into lines and keep the others
    tr '\r' '\n' < "$raw" | grep -v -E '(it|step)/s|^[[:space:]]*$|[0-9]+%\|' >> "$saved/$part.log" || true
    echo "appended $(wc -l < "$saved/$part.log") lines in $saved/$part.log"
    ;;
  *) echo "usage: study_parts.sh save|restore|log [NAME]" >&2; exit 2 ;;
esac
