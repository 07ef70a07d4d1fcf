"""Run folders under faults: one run at a time (a live lock refuses, a stale one is taken over), and the
staging folders of killed checkpoint writes are removed by the next run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from bert_ode.data import load_builtin
from bert_ode.training import latest_checkpoint, pretrain
from bert_ode.training.run_lock import LOCK_FILE


def _overrides(tmp_path, **extra) -> dict:
    corpus = tmp_path / "austen.txt"
    if not corpus.exists():
        corpus.write_text("\n\n".join(load_builtin("austen")[:4]), encoding="utf-8")
    return {
        "data.files": [str(corpus)],
        "data.seq_len": 32,
        "tokenizer.vocab_size": 300,
        "model": {
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 64,
            "max_position_embeddings": 32,
        },
        "train.output_dir": str(tmp_path / "run"),
        "train.batch_size": 8,
        "train.max_steps": 4,
        "train.eval_every": 0,
        "train.save_every": 2,
        "train.precision": "fp32",
        "train.num_threads": 1,
        "train.progress_bar": False,
        **extra,
    }


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    other = os.getppid()  # a live process that is not this one
    (run / LOCK_FILE).write_text(f"{socket.gethostname()} {other}\n")
    with pytest.raises(ValueError, match=rf"run is in use by another run \(process {other} on "):
        pretrain(None, _overrides(tmp_path))
    assert not (run / "checkpoints").exists()  # nothing was written
    assert (run / LOCK_FILE).read_text().split()[1] == str(other)  # the owner's lock is left alone


def test_a_stale_lock_is_taken_over_and_released_at_the_end(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text(f"{socket.gethostname()} {_dead_pid()}\n")
    result = pretrain(None, _overrides(tmp_path))
    assert result.steps == 4 and not (run / LOCK_FILE).exists()


def test_staging_folders_of_killed_writes_are_removed_by_the_resumed_run(tmp_path):
    pretrain(None, _overrides(tmp_path))
    run = tmp_path / "run"
    litter = [run / "checkpoints" / ".staging-step-0000006-4242", run / ".staging-final-4242"]
    for folder in litter:
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"half written")
    result = pretrain(None, _overrides(tmp_path, **{"train.max_steps": 6}), resume=True)
    assert result.steps == 6 and latest_checkpoint(run).name == "step-0000006"
    assert not any(folder.exists() for folder in litter)
    assert not list(run.rglob(".staging-*"))


def test_the_saved_tokenizer_truncates_to_the_models_positions(tmp_path):
    from transformers import AutoTokenizer

    result = pretrain(None, _overrides(tmp_path))
    tokenizer = AutoTokenizer.from_pretrained(result.final_dir)
    assert tokenizer.model_max_length == 32  # model.max_position_embeddings
    encoded = tokenizer("word " * 500, truncation=True)
    assert len(encoded["input_ids"]) == 32
