"""Bad input to the model (``BertOdeConfig``, checkpoints, solvers): one clear error naming the problem, in
every command that loads a checkpoint."""

from __future__ import annotations

import re
import shutil
import time

import pytest
import torch
from conftest import assert_one_line_error

from bert_ode import BertOdeConfig, BertOdeForMaskedLM, BertOdeForSequenceClassification, BertOdeModel
from bert_ode.cli import main
from bert_ode.solvers import ADAPTIVE_MAX_NFE_PER_UNIT, MaxNfeExceeded


def test_model_sizes_are_checked_where_transformers_checks_them():
    # A config may be made one field at a time (transformers' ConfigTester sets hidden_size=32 with the
    # default 12 heads), as BertConfig allows; building a model from it refuses, with the clear message.
    config = BertOdeConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match="hidden_size=30 must be a multiple of num_attention_heads=4"):
        BertOdeModel(config)
    assert BertOdeConfig(hidden_size=32).hidden_size == 32
    with pytest.raises(ValueError, match="hidden_size=0 is invalid; it must be an integer >= 1"):
        BertOdeConfig(hidden_size=0)


def test_an_adaptive_solve_is_bounded_without_ode_max_nfe():

    config = BertOdeConfig(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=37,
        initializer_range=1.0,
        ode_method="dopri5",
        ode_backend="torchdiffeq",
        ode_rtol=1e-14,
        ode_atol=1e-14,
    )
    assert config.ode_max_nfe is None
    torch.manual_seed(0)
    model = BertOdeModel(config).eval()
    started = time.perf_counter()
    with pytest.raises(
        MaxNfeExceeded,
        match=f"more than {ADAPTIVE_MAX_NFE_PER_UNIT} vector-field evaluations "
        r"\(the default bound of an adaptive solve",
    ):
        with torch.no_grad():
            model(torch.randint(0, 99, (2, 8)))
    assert time.perf_counter() - started < 60


def _broken_checkpoints(tmp_path):
    """A good tiny checkpoint and one broken copy of it per way a checkpoint folder can be wrong, with the
    message each must give."""

    good = tmp_path / "good"
    BertOdeForMaskedLM(
        BertOdeConfig(
            vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
        )
    ).save_pretrained(good)
    weights = (good / "model.safetensors").read_bytes()

    def copy(name, change):
        broken = tmp_path / name
        shutil.copytree(good, broken)
        change(broken)
        return broken

    (tmp_path / "a-file").write_text("not a folder")
    return [
        (tmp_path / "missing" / "checkpoint", "not found: no such directory"),
        (tmp_path / "a-file", "is a file, not a checkpoint directory"),
        (
            copy("no-config", lambda p: (p / "config.json").unlink()),
            "is not a checkpoint: it has no config.json",
        ),
        (
            copy("bad-config", lambda p: (p / "config.json").write_text("{oops")),
            "config.json is not valid JSON",
        ),
        (
            copy("no-weights", lambda p: (p / "model.safetensors").unlink()),
            "it has none of model.safetensors",
        ),
        (
            copy("truncated", lambda p: (p / "model.safetensors").write_bytes(weights[: len(weights) // 2])),
            "corrupt weights file .*truncated/model.safetensors",
        ),
        (copy("empty", lambda p: (p / "model.safetensors").write_bytes(b"")), "corrupt weights file .*empty"),
        (
            copy("garbage", lambda p: (p / "model.safetensors").write_bytes(b"\x00garbage" * 100)),
            "corrupt weights file .*garbage",
        ),
    ]


def test_every_way_a_checkpoint_folder_is_wrong_is_one_clear_line_in_every_command(tmp_path, capsys):
    for checkpoint, message in _broken_checkpoints(tmp_path):
        commands = [
            ["convert", str(checkpoint), str(tmp_path / "converted")],
            ["finetune", str(checkpoint), "--no-progress", "--output-dir", str(tmp_path / "ft")],
            ["evaluate", str(checkpoint), "--no-progress"],
            ["pretrain", "--config", "smoke", "--set", f"train.init_from={checkpoint}",
             "--set", f"train.output_dir={tmp_path / 'pt'}"],
        ]  # fmt: skip
        for command in commands:
            assert main(command) == 2, (command, checkpoint)
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and re.search(message, err[0]), (command, err)
            assert err[0].startswith(f"bert-ode {command[0]}: error: ")


def test_from_bert_names_the_broken_checkpoint(tmp_path):
    for checkpoint, message in _broken_checkpoints(tmp_path):
        with pytest.raises(ValueError, match=message):
            BertOdeForSequenceClassification.from_bert(checkpoint)


def test_a_structural_field_changed_after_building_and_a_mask_of_the_wrong_shape_are_refused():
    model = BertOdeModel(BertOdeConfig(**TINY_FOR_MASKS)).eval()
    ids = torch.randint(1, 99, (3, 7))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 5\); it must be .* \(3, 7\)"):
        model(ids, attention_mask=torch.ones(2, 5))
    for field, value in (("ode_scope", "layer"), ("continuous_depth", True)):
        model = BertOdeModel(BertOdeConfig(**TINY_FOR_MASKS)).eval()
        setattr(model.config, field, value)
        with pytest.raises(ValueError, match=rf"config.{field} was set to .* after the model was built"):
            model(ids)
    model.config.continuous_depth = False
    model.config.ode_method = "heun"  # a solver field is not structural: it may change after training
    assert model(ids).nfe == 2 * 2 * 2


TINY_FOR_MASKS = dict(
    vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37
)


def test_cli_errors_from_the_layers_underneath_are_one_line(tmp_path, capsys):
    code = main(["pretrain", "--config", "smoke", "--set", "model.hidden_size=abc"])
    assert_one_line_error(capsys, code, 2, "hidden_size", "expected int, got str")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("train:\n  output_dir: caf\xe9\n".encode("latin-1"))
    code = main(["pretrain", "--config", str(bad)])
    assert_one_line_error(capsys, code, 2, str(bad), "not UTF-8")
    out = tmp_path / "run"
    settings = {
        "train.output_dir": out,
        "train.max_steps": 1,
        "train.progress_bar": "false",
        "train.compile": "false",
        "train.batch_size": 2,
        "model.ode_method": "dopri5",
        "model.ode_backend": "torchdiffeq",
        "model.ode_rtol": "1e-13",
        "model.ode_atol": "1e-13",
        "model.ode_max_nfe": 50,
        "model.hidden_size": 32,
        "model.num_attention_heads": 2,
        "model.intermediate_size": 64,
        "data.builtin": "austen",
        "data.max_documents": 50,
        "tokenizer.vocab_size": 300,
    }
    tight = [part for key, value in settings.items() for part in ("--set", f"{key}={value}")]
    code = main(["pretrain", "--config", "smoke", *tight])
    assert_one_line_error(capsys, code, 2, "vector-field evaluations")


BAD_INPUTS = {
    "float ids": (
        dict(input_ids=torch.rand(2, 5)),
        r"input_ids has dtype torch.float32; it must hold integer token ids \(torch.long\)",
    ),
    "1-D ids": (
        dict(input_ids=torch.ones(5, dtype=torch.long)),
        r"input_ids has shape \(5,\); it must be \(batch, sequence\); for one sequence add the batch "
        r"dimension: input_ids.unsqueeze\(0\)",
    ),
    "3-D ids": (dict(input_ids=torch.ones(2, 3, 4, dtype=torch.long)), r"shape \(2, 3, 4\); it must be"),
    "empty batch": (
        dict(input_ids=torch.ones(0, 5, dtype=torch.long)),
        r"input_ids has shape \(0, 5\): empty; a batch needs at least one sequence of at least one token",
    ),
    "zero-length sequences": (dict(input_ids=torch.ones(2, 0, dtype=torch.long)), r"shape \(2, 0\): empty"),
    "2-D embeddings": (
        dict(inputs_embeds=torch.rand(2, 5)),
        r"inputs_embeds has shape \(2, 5\); it must be \(batch, sequence, 32\)",
    ),
    "integer embeddings": (
        dict(inputs_embeds=torch.ones(2, 5, 32, dtype=torch.long)),
        "inputs_embeds has dtype torch.int64; it must be floating point",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
@pytest.mark.parametrize("model_class", [BertOdeModel, BertOdeForMaskedLM, BertOdeForSequenceClassification])
def test_a_forward_names_bad_inputs_with_their_shape_or_dtype(case, model_class):
    inputs, message = BAD_INPUTS[case]
    config = BertOdeConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37
    )
    model = model_class(config).eval()
    with pytest.raises(ValueError, match=message):
        model(**inputs)
