"""`bert-ode convert`: a BERT checkpoint directory in, a BertOde checkpoint out, errors in one line."""

from __future__ import annotations

import torch
from conftest import assert_one_line_error
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
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "transformers" and card.data.license == "mit"
    assert card.data.base_model == str(source) and card.data.pipeline_tag == "feature-extraction"
    assert {"bert-ode", "custom_code"} <= set(card.data.tags)
    assert "heun x 1 step(s) per block" in card.text and "trust_remote_code=True" in card.text


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
