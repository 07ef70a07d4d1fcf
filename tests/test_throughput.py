"""The throughput work changes no number: a compiled encoder and the fused AdamW give the loss curve of the
eager, per-parameter step; without a working compiler the run falls back to eager with a one-line notice."""

from __future__ import annotations

import csv
import re

import pytest
import torch
from conftest import tiny_pretraining
from transformers import BertConfig

from bert_ode import BertOdeConfig, BertOdeForMaskedLM
from bert_ode.data import load_builtin
from bert_ode.pretrain import pretrain
from bert_ode.pretrain.compile import AUTO_MIN_STEPS, should_compile
from bert_ode.pretrain.config import TrainConfig
from bert_ode.pretrain.loop import _optimizer


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "austen.txt"
    path.write_text("\n\n".join(load_builtin("austen")[:6]), encoding="utf-8")
    return path


def _run(corpus_file, output_dir, **extra):
    overrides = tiny_pretraining(
        corpus_file,
        output_dir,
        **{
            "model.norm_position": "pre",
            "model.ode_method": "heun",
            "train.max_steps": 12,
            "train.lr": 5e-3,
            "train.save_every": 0,
            "train.log_every": 1,
            **extra,
        },
    )
    result = pretrain(None, overrides)
    with open(output_dir / "log.csv", newline="", encoding="utf-8") as handle:
        return result, [float(row["train_loss"]) for row in csv.DictReader(handle)]


def test_compiled_encoder_gives_the_eager_loss_curve(corpus_file, tmp_path, capsys):
    _, eager = _run(corpus_file, tmp_path / "eager", **{"train.compile": False})
    assert "compiling" not in capsys.readouterr().err
    _, compiled = _run(corpus_file, tmp_path / "compiled", **{"train.compile": True})
    err = capsys.readouterr().err  # the silent minute of compiling is announced, and its end
    assert "pretrain: compiling the encoder" in err and re.search(r"pretrain: compiled in \d+ s", err), err
    assert len(eager) == len(compiled) == 12
    torch.testing.assert_close(torch.tensor(compiled), torch.tensor(eager), rtol=1e-4, atol=1e-4)
    assert eager[-1] < eager[0] - 0.1  # it trains: the comparison is of a moving curve, not a flat one


def test_without_a_compiler_the_run_falls_back_to_eager(corpus_file, tmp_path, monkeypatch, capsys):
    import torch._inductor.config as inductor_config

    torch._dynamo.reset()
    monkeypatch.setattr(inductor_config.cpp, "cxx", ("/nonexistent/c++",))
    monkeypatch.setattr(inductor_config, "fx_graph_cache", False)
    result, losses = _run(corpus_file, tmp_path / "fallback", **{"train.compile": True})
    torch._dynamo.reset()
    notice = [line for line in capsys.readouterr().err.splitlines() if "torch.compile is unavailable" in line]
    assert len(notice) == 1 and "training eager" in notice[0] and "train.compile=false" in notice[0]
    assert result.steps == 12 and len(losses) == 12


def test_fused_adamw_updates_as_the_per_parameter_one():
    config = BertOdeConfig(
        **BertConfig(
            vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37
        ).to_dict()
    )
    models = []
    for fused in (True, False):
        torch.manual_seed(0)
        model = BertOdeForMaskedLM(config)
        optimizer = _optimizer(model, TrainConfig(lr=1e-2), torch.device("cpu"))
        for group in optimizer.param_groups:
            assert group["fused"] is True
            group["fused"] = fused
        for step in range(5):
            input_ids = torch.randint(0, 99, (4, 16), generator=torch.Generator().manual_seed(step))
            model(input_ids=input_ids, labels=input_ids).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        models.append(model)
    for (name, fused), (_, plain) in zip(
        models[0].named_parameters(), models[1].named_parameters(), strict=True
    ):
        torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize(
    ("mode", "backend", "steps", "expected"),
    [
        ("auto", "native", AUTO_MIN_STEPS, True),
        ("auto", "native", AUTO_MIN_STEPS - 1, False),
        ("auto", "native", None, True),
        (True, "native", 1, True),
        (False, "native", 10**6, False),
        (True, "torchdiffeq", 10**6, False),
        ("auto", "torchode", 10**6, False),
    ],
)
def test_when_to_compile(mode, backend, steps, expected):
    config = BertOdeConfig(ode_backend=backend, ode_method="euler")
    assert should_compile(mode, config, steps) is expected
