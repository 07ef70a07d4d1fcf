"""Bad input to pretraining (``bert-ode pretrain`` and ``bert_ode.pretrain``): each is refused with one clear
line, before any work where it can be; faults keep the last good checkpoint."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch
from conftest import assert_one_line_error, tiny_pretraining, write_austen

from bert_ode.cli import main
from bert_ode.finetune.config import EvaluateConfig, FinetuneConfig
from bert_ode.pretrain import latest_checkpoint, pretrain
from bert_ode.pretrain.checkpointing import STATE_FILE, load_training_state
from bert_ode.pretrain.config import load_config
from bert_ode.pretrain.loop import NonFiniteLoss
from bert_ode.utils import trackers
from bert_ode.utils.config_io import parse_assignments


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("train.lr=0", r"train\.lr=0\.0 is invalid; it must be > 0"),
        ("train.lr=-1e-3", r"train\.lr=-0\.001 is invalid; it must be > 0"),
        ("train.budget_tokens=0", r"train\.budget_tokens=0 is invalid; it must be >= 1"),
        ("train.budget_tokens=-5", r"train\.budget_tokens=-5 is invalid"),
        ("train.budget_minutes=-1", r"train\.budget_minutes=-1\.0 is invalid; it must be > 0"),
        ("train.max_steps=-1", r"train\.max_steps=-1 is invalid; it must be >= 1"),
        ("train.max_steps=0", r"train\.max_steps=0 is invalid; it must be >= 1"),
        ("train.max_grad_norm=-1", r"train\.max_grad_norm=-1\.0 is invalid; it must be >= 0"),
        ("train.betas=[0.9]", r"train\.betas=\[0\.9\] is invalid; it must be two numbers in \[0, 1\)"),
        ("train.betas=[0.9, 1.5]", r"train\.betas=\[0\.9, 1\.5\] is invalid; it must be in \[0, 1\)"),
        ("train.betas=0.9", r"config key 'train\.betas' must be a list, got 0\.9"),
        ("train.num_threads=-1", r"train\.num_threads=-1 is invalid; it must be >= 1"),
        ("train.output_dir=null", r"config key 'train\.output_dir' must be a string, got None"),
        ("train.eps=0", r"train\.eps=0\.0 is invalid; it must be > 0"),
        ("train.weight_decay=-1", r"train\.weight_decay=-1\.0 is invalid; it must be >= 0"),
        ("train.warmup_fraction=1", r"train\.warmup_fraction=1\.0 is invalid; it must be in \[0, 1\)"),
        ("train.eval_blocks=0", r"train\.eval_blocks=0 is invalid"),
        ("train.keep_checkpoints=0", r"train\.keep_checkpoints=0 is invalid"),
        ("train.lr=fast", r"config key 'train\.lr' must be a number, got 'fast'"),
        ("data.files=[]", r"data\.files is empty"),
        (
            "data.streaming=true",
            r"data\.streaming=true reads a dataset as training goes: it needs data\.dataset",
        ),
        ("data.validation_fraction=1", r"data\.validation_fraction=1\.0 is invalid; it must be in \[0, 1\)"),
        ("data.mlm_probability=0", r"data\.mlm_probability=0\.0 is invalid; it must be in \(0, 1\)"),
        ("data.seq_len=2", r"data\.seq_len=2 is invalid; it must be >= 3"),
        ("tokenizer.vocab_size=0", r"tokenizer\.vocab_size=0 is invalid"),
        ("model.num_attention_heads=0", r"num_attention_heads=0 is invalid; it must be an integer >= 1"),
        ("model.num_attention_heads=3", r"hidden_size=64 must be a multiple of num_attention_heads=3"),
        ("model.hidden_size=-32", r"hidden_size=-32 is invalid; it must be an integer >= 1"),
        ("model.num_hidden_layers=-1", r"num_hidden_layers=-1 is invalid"),
        ("model.type_vocab_size=0", r"type_vocab_size=0 is invalid"),
        ("model.hidden_act=bogus", r"hidden_act='bogus' is unknown; allowed values: .*gelu"),
        ("train.report_to=[bogus]", r"train\.report_to: unknown tracker 'bogus'; allowed: none, tensorboard"),
    ],
)
def test_pretraining_values_out_of_range_are_refused_where_the_config_is_built(assignment, message):
    with pytest.raises(ValueError, match=message):
        load_config("smoke", parse_assignments([assignment]))


@pytest.mark.parametrize(
    ("assignment", "key", "expected"),
    [
        ("train.lr=5e-4", "lr", 5e-4),
        ("train.lr=5E-4", "lr", 5e-4),
        ("train.lr=1e-4", "lr", 1e-4),
        ("train.lr=2.0e-3", "lr", 2e-3),
        ("train.warmup_fraction=.5", "warmup_fraction", 0.5),
        ("train.budget_tokens=1_000_000", "budget_tokens", 1_000_000),
        ("train.budget_tokens=4e6", "budget_tokens", 4_000_000),
    ],
)
def test_numbers_as_users_write_them(assignment, key, expected):
    value = getattr(load_config("smoke", parse_assignments([assignment])).train, key)
    assert value == expected and type(value) is type(expected)


def test_cli_reports_a_bad_value_in_one_line(capsys):
    assert main(["pretrain", "--config", "smoke", "--set", "train.max_steps=-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["bert-ode pretrain: error: train.max_steps=-1 is invalid; it must be >= 1"]
    assert main(["finetune", "unused", "--weight-decay", "-1", "--no-progress"]) == 2
    assert "weight_decay=-1.0 is invalid; it must be >= 0" in capsys.readouterr().err


class _Payload:
    """Pickles to a call that would create a marker file: loading it must not run that call."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_training_state_holding_a_pickled_object_is_refused_without_running_it(tmp_path):

    marker = tmp_path / "code-ran"
    torch.save({"step": 3, "optimizer": {"state": {}}, "payload": _Payload(marker)}, tmp_path / STATE_FILE)
    with pytest.raises(ValueError, match="holds more than tensors and plain values, so it is not loaded"):
        load_training_state(tmp_path)
    assert not marker.exists()
    torch.save(
        {
            "step": 3,
            "train_seconds": 1.5,
            "optimizer": {"state": {0: {"step": torch.tensor(1.0)}}},
            "config": {"train": {"lr": 1e-3, "betas": [0.9, 0.98]}},
        },
        tmp_path / STATE_FILE,
    )
    assert load_training_state(tmp_path)["step"] == 3  # what pretraining writes loads


def test_a_diverging_run_stops_at_the_first_non_finite_loss_and_keeps_its_last_good_checkpoint(tmp_path):

    overrides = tiny_pretraining(
        write_austen(tmp_path / "austen.txt"),
        tmp_path / "run",
        **{
            "train.max_steps": 60,
            "train.lr": 1e6,
            "train.max_grad_norm": None,
            "train.warmup_fraction": 0.0,
            "train.schedule": "constant",
            "train.log_every": 2,
        },
    )
    with pytest.raises(
        NonFiniteLoss, match=r"NaN or infinite between steps \d+ and \d+; the last good checkpoint"
    ):
        pretrain(None, overrides)
    assert not (tmp_path / "run" / "final").exists()  # no broken final model
    last = latest_checkpoint(tmp_path / "run")
    if last is not None:  # every checkpoint kept holds finite weights
        from safetensors.torch import load_file

        weights = load_file(last / "model.safetensors")
        assert all(torch.isfinite(w).all() for w in weights.values())
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]
    assert all(math.isfinite(float(row.split(",")[4])) for row in rows)  # nothing non-finite was logged


def test_resume_refuses_a_changed_model_or_data_config_and_accepts_a_longer_budget(tmp_path):
    overrides = tiny_pretraining(write_austen(tmp_path / "austen.txt"), tmp_path / "run")
    pretrain(None, overrides)
    for change, listed in (
        ({"model.ode_method": "heun"}, "model.ode_method: 'euler' -> 'heun'"),
        ({"model.hidden_size": 64}, "model.hidden_size: 32 -> 64"),
        ({"train.batch_size": 4}, "train.batch_size: 8 -> 4"),
        ({"tokenizer.vocab_size": 400}, "tokenizer.vocab_size: 300 -> 400"),
        ({"data.seq_len": 16}, "data.seq_len: 32 -> 16"),
    ):
        with pytest.raises(ValueError, match="--resume of .* with another config") as error:
            pretrain(None, {**overrides, **change}, resume=True)
        assert listed in str(error.value) and "train.max_steps" in str(error.value)  # says what may change
    result = pretrain(None, {**overrides, "train.max_steps": 6}, resume=True)  # a longer budget is fine
    assert result.steps == 6


@pytest.mark.parametrize("where", ["file", "below-file"])
def test_output_locations_that_cannot_be_folders_are_refused_before_any_work(tmp_path, where):
    blocker = tmp_path / "taken"
    blocker.write_text("a file")
    target = blocker if where == "file" else blocker / "sub" / "dir"
    expected = "it is a file" if where == "file" else "it is below .*taken, a file"
    with pytest.raises(ValueError, match=rf"train\.output_dir=.* cannot be an output folder: {expected}"):
        load_config("smoke", {"train.output_dir": str(target)})
    with pytest.raises(ValueError, match=rf"output_dir=.* cannot be an output folder: {expected}"):
        FinetuneConfig(checkpoint="unused", output_dir=str(target))

    with pytest.raises(ValueError, match=r"output_dir=.* cannot be an output folder"):
        EvaluateConfig(checkpoint="unused", output_dir=str(target))
    assert main(["finetune", "unused", "--output-dir", str(target), "--no-progress"]) == 2


def test_a_tracker_whose_package_is_missing_is_named(monkeypatch):

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "wandb" else real(name))
    with pytest.raises(ValueError, match=r"train\.report_to: tracker 'wandb' needs the package wandb"):
        load_config("smoke", parse_assignments(["train.report_to=[wandb]"]))
    assert trackers.check_trackers(["none"], "report_to") == []


def test_a_jsonl_record_with_null_text_is_refused_naming_file_and_line(tmp_path, capsys):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"text": "one fine line"}\n{"text": null}\n')
    code = main(
        ["pretrain", "--set", f"data.files=[{corpus}]", "--set", f"train.output_dir={tmp_path / 'run'}"]
    )
    assert_one_line_error(capsys, code, 2, f"{corpus}:2", "'text' is null, not a string")
