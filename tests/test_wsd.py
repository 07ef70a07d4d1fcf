"""Warmup-stable-decay: a cooldown branched off a constant-rate run is the run a wsd schedule makes from the
start (so one constant-rate run gives every budget), and the probes logged at each evaluation."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from conftest import tiny_pretraining, write_austen
from safetensors.torch import load_file

from bert_ode.pretrain import pretrain
from bert_ode.pretrain.checkpointing import checkpoint_dir
from bert_ode.pretrain.probes import attention_entropy, mean_pairwise_cosine
from bert_ode.pretrain.schedule import lr_factor

WARMUP = {"train.warmup_tokens": 2 * 8 * 32}  # two steps of 8 blocks of 32 tokens


def test_the_wsd_schedule_is_constant_until_its_cooldown_then_falls_linearly_to_zero():
    assert [lr_factor("wsd", p, 0.1, 0.25) for p in (0.05, 0.1, 0.5, 0.75, 0.875, 1.0)] == pytest.approx(
        [0.5, 1.0, 1.0, 1.0, 0.5, 0.0]
    )
    # before its cooldown it is the constant schedule with the same warmup
    for progress in (0.0, 0.03, 0.2, 0.7):
        assert lr_factor("wsd", progress, 0.1, 0.25) == lr_factor("constant", progress, 0.1)


def _losses(run_dir) -> dict[int, float]:
    with open(run_dir / "log.csv", newline="", encoding="utf-8") as handle:
        return {int(row["step"]): float(row["train_loss"]) for row in csv.DictReader(handle)}


def test_a_cooldown_branched_off_a_constant_run_equals_the_fresh_wsd_run(tmp_path):
    corpus = write_austen(tmp_path / "austen.txt")
    common = {**WARMUP, "train.log_every": 1, "train.save_every": 3}
    fresh = pretrain(
        None,
        tiny_pretraining(
            corpus,
            tmp_path / "fresh",
            **common,
            **{"train.schedule": "wsd", "train.max_steps": 12},
            **{"train.cooldown_fraction": 0.25},
        ),
    )
    # The constant-rate run, stopped where the cooldown of a 12-step wsd run begins (step 9)...
    pretrain(
        None,
        tiny_pretraining(
            corpus, tmp_path / "constant", **common, **{"train.schedule": "constant", "train.max_steps": 9}
        ),
    )
    # ... and the cooldown branched off its checkpoint: the same run, into its own folder.
    branch_config = tiny_pretraining(
        corpus,
        tmp_path / "branch",
        **common,
        **{"train.schedule": "wsd", "train.max_steps": 12},
        **{"train.cooldown_fraction": 0.25},
    )
    branch = pretrain(None, branch_config, branch_from=checkpoint_dir(tmp_path / "constant", 9))
    assert branch.steps == fresh.steps == 12
    weights = load_file(fresh.final_dir / "model.safetensors")
    branched = load_file(branch.final_dir / "model.safetensors")
    assert weights.keys() == branched.keys()
    assert all(torch.equal(weights[name], branched[name]) for name in weights)
    assert {s: v for s, v in _losses(tmp_path / "fresh").items() if s > 9} == _losses(tmp_path / "branch")

    # A branch is the same run: a changed model or learning rate is refused, naming what changed.
    changed = {**branch_config, "train.output_dir": str(tmp_path / "other"), "train.lr": 5e-3}
    with pytest.raises(ValueError, match=r"a branch of .*step-0000009 with another config: train.lr"):
        pretrain(None, changed, branch_from=checkpoint_dir(tmp_path / "constant", 9))
    with pytest.raises(ValueError, match="branch_from: .* is not a checkpoint folder"):
        pretrain(None, {**changed, "train.lr": 1e-3}, branch_from=tmp_path / "nowhere")


def test_the_probes_measure_collapse_and_attention_entropy(tmp_path):
    same = torch.ones(2, 5, 8)
    assert mean_pairwise_cosine(same) == pytest.approx(1.0)
    assert mean_pairwise_cosine(torch.eye(4).unsqueeze(0)) == pytest.approx(0.0)
    uniform = torch.full((1, 2, 3, 4), 0.25)
    assert attention_entropy(uniform) == pytest.approx([math.log(4)] * 2)
    one_hot = torch.zeros(1, 1, 3, 4)
    one_hot[..., 0] = 1.0
    assert attention_entropy(one_hot) == pytest.approx([0.0])

    corpus = write_austen(tmp_path / "austen.txt")
    extra = {"train.eval_every": 2, "train.probe_blocks": 4}
    pretrain(None, tiny_pretraining(corpus, tmp_path / "run", **extra))
    points = [json.loads(line) for line in (tmp_path / "run" / "probes.jsonl").read_text().splitlines()]
    assert [p["step"] for p in points] == [2, 4]
    for point in points:
        assert len(point["token_cosine"]) == 3  # the embeddings and two layers
        assert all(-1.0 <= c <= 1.0 for c in point["token_cosine"])
        assert [len(layer) for layer in point["attention_entropy"]] == [4, 4]  # two layers of four heads
        assert all(
            0 < e <= point["uniform_entropy"] + 1e-9 for layer in point["attention_entropy"] for e in layer
        )
