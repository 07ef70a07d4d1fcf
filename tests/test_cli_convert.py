"""`bert-ode convert`: a BERT checkpoint directory in, a BertOde checkpoint out, errors in one line."""

from __future__ import annotations

import json

import torch
import transformers
from conftest import assert_hub_ready_card, assert_one_line_error
from transformers import BertConfig, BertForMaskedLM

import bert_ode
from bert_ode.cli import main


def _bert_dir(tmp_path):
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37
    )
    model = BertForMaskedLM(config).eval()
    model.save_pretrained(tmp_path / "bert")
    return model, tmp_path / "bert"


def test_convert_writes_an_equivalent_checkpoint_and_sets_fields(tmp_path, capsys):
    bert, source = _bert_dir(tmp_path)
    assert main(["convert", str(source), str(tmp_path / "euler"), "--head", "masked-lm"]) == 0
    assert (
        main(
            [
                "convert",
                str(source),
                str(tmp_path / "rk4"),
                "--head",
                "masked-lm",
                "--set",
                "ode_method=rk4",
                "--set",
                "ode_steps=2",
            ]
        )
        == 0
    )
    assert "saved BertOdeForMaskedLM (rk4, 2 step(s)" in capsys.readouterr().out
    ids = torch.randint(0, 99, (2, 7))
    euler = bert_ode.BertOdeForMaskedLM.from_pretrained(tmp_path / "euler").eval()
    assert torch.allclose(euler(ids).logits, bert(ids).logits, atol=1e-5)
    rk4 = bert_ode.BertOdeForMaskedLM.from_pretrained(tmp_path / "rk4").eval()
    assert (rk4.config.ode_method, rk4.config.ode_steps) == ("rk4", 2)
    assert rk4(ids).nfe == 2 * 2 * 2 * 4


def test_convert_errors_are_one_line(tmp_path, capsys):
    _, source = _bert_dir(tmp_path)
    assert main(["convert", str(source), str(tmp_path / "x"), "--set", "ode_method=rk5"]) == 2
    assert main(["convert", str(tmp_path / "missing"), str(tmp_path / "y")]) == 2
    assert main(["convert", str(source), str(tmp_path / "z"), "--set", "ode_stpes=2"]) == 2
    err = capsys.readouterr().err
    assert "ode_method='rk5'" in err and "ode_stpes" in err and "not found: no such directory" in err
    assert "Traceback" not in err


def test_convert_writes_a_model_card_that_keeps_the_source_license(tmp_path):
    from huggingface_hub import ModelCard

    _, source = _bert_dir(tmp_path)
    (source / "README.md").write_text("---\nlicense: mit\n---\n\n# a BERT\n")
    out = tmp_path / "heun"
    assert main(["convert", str(source), str(out), "--set", "ode_method=heun"]) == 0
    assert_hub_ready_card(out, base_model=None)  # a source that exists only here has no Hub id
    card = ModelCard.load(out / "README.md")
    assert card.data.license == "mit" and card.data.pipeline_tag == "feature-extraction"
    assert {"bert-ode", "custom_code"} <= set(card.data.tags)
    assert "heun x 1 step(s) per block" in card.text and "trust_remote_code=True" in card.text
    assert "# bert as an ODE-BERT (heun)" in card.text


def test_convert_names_the_hub_model_a_local_source_stands_for_and_every_new_weight(tmp_path, capsys):
    from huggingface_hub import ModelCard

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37
    )
    source = tmp_path / "sentence-model"
    transformers.BertModel(config).save_pretrained(source)  # no masked-LM head, as sentence-transformers
    recorded = json.loads((source / "config.json").read_text())
    recorded["_name_or_path"] = "nreimers/MiniLM-L6-H384-uncased"  # what a Hub download records
    (source / "config.json").write_text(json.dumps(recorded))
    out = tmp_path / "mlm"
    code = main(["convert", str(source), str(out), "--head", "masked-lm", "--set", "ode_method=ab2-learned"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = [line for line in captured.err.splitlines() if "newly initialised" in line]
    assert len(lines) == 1 and "the masked-LM head" in lines[0], captured.err
    assert "newly initialised" not in captured.out and captured.out.startswith("saved "), captured.out
    assert "LOAD REPORT" not in captured.err + captured.out  # transformers' table, expected here
    assert_hub_ready_card(out, base_model="nreimers/MiniLM-L6-H384-uncased")
    card = ModelCard.load(out / "README.md")
    assert card.data.license == "unknown"
    assert "Newly initialised, because the source has no weights for them: the masked-LM head" in card.text
    assert "the learned multistep coefficients" in card.text  # set to reproduce the source, not random


def test_save_pretrained_writes_a_card_and_keeps_one_already_there(tmp_path):
    model = bert_ode.BertOdeForMaskedLM(
        bert_ode.BertOdeConfig(
            vocab_size=99,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=37,
            ode_method="heun",
        )
    )
    model.save_pretrained(tmp_path / "fresh")
    assert_hub_ready_card(tmp_path / "fresh", base_model=None)
    assert "BertOde heun: 2 layers, hidden 32" in (tmp_path / "fresh" / "README.md").read_text()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "README.md").write_text("my own card")
    model.save_pretrained(tmp_path / "mine")
    assert (tmp_path / "mine" / "README.md").read_text() == "my own card"


def test_convert_refuses_an_output_that_is_a_file_and_a_size_change_before_loading(tmp_path, capsys):
    _, source = _bert_dir(tmp_path)
    (tmp_path / "taken").write_text("a file")
    code = main(["convert", str(source), str(tmp_path / "taken")])
    assert_one_line_error(capsys, code, 2, "output_dir=", "cannot be an output folder: it is a file")
    code = main(["convert", str(source), str(tmp_path / "taken" / "below")])
    assert_one_line_error(capsys, code, 2, "is below", "a file")
    for change in ("hidden_size=64", "vocab_size=10", "intermediate_size=38"):
        code = main(["convert", str(source), str(tmp_path / "out"), "--set", change])
        name = change.split("=")[0]
        assert_one_line_error(capsys, code, 2, "a conversion keeps the checkpoint's sizes", f"{name}=")
    assert not (tmp_path / "out").exists()
