"""save_pretrained / from_pretrained round trips, the Auto classes, and loading with trust_remote_code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import random_batch, tiny_ode_config
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

import bert_ode

VARIANTS = {
    "default": {},
    "rk2-gated": dict(ode_method="rk2-gated", ode_steps=2),
    "strang-pre": dict(splitting="strang", norm_position="pre", ode_method="heun"),
    "layer-scope": dict(ode_scope="layer", ode_method="rk4"),
    "layer-pre-gated": dict(ode_scope="layer", norm_position="pre", ode_method="rk2-gated"),
}


def _perturb_gates(model) -> int:
    """Moves the learned gates away from their zero initialisation; returns how many tensors changed."""
    changed = 0
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".gate." in name:
                parameter.normal_(0.0, 0.3)
                changed += 1
    return changed


def _assert_close(actual, expected):
    # State dicts round-trip bit for bit; outputs only to float32 rounding, because a loaded tensor's memory
    # alignment can change the summation order inside the CPU matmul kernels (cloning the loaded parameters
    # makes the outputs bitwise equal again).
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-5)


def _assert_same_state(a, b):
    state_a, state_b = a.state_dict(), b.state_dict()
    assert set(state_a) == set(state_b)
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_round_trip_is_exact(variant, tmp_path):
    model = bert_ode.BertOdeForMaskedLM(tiny_ode_config(**VARIANTS[variant])).eval()
    gates = _perturb_gates(model)
    if "gated" in variant:
        assert gates > 0
    model.save_pretrained(tmp_path)
    for loader in (bert_ode.BertOdeForMaskedLM, AutoModelForMaskedLM):
        loaded = loader.from_pretrained(tmp_path).eval()
        assert type(loaded) is bert_ode.BertOdeForMaskedLM
        _assert_same_state(model, loaded)
        for field, value in VARIANTS[variant].items():
            assert getattr(loaded.config, field) == value
        inputs = random_batch()
        with torch.no_grad():
            expected, actual = model(**inputs), loaded(**inputs)
        _assert_close(actual.logits, expected.logits)
        assert expected.nfe == actual.nfe


def test_learned_gates_survive_and_matter(tmp_path):
    model = bert_ode.BertOdeModel(tiny_ode_config(ode_method="rk2-gated", initializer_range=0.2)).eval()
    inputs = random_batch()
    with torch.no_grad():
        heun_like = model(**inputs).last_hidden_state
    _perturb_gates(model)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("gate.bias"):
                parameter.fill_(3.0)  # gamma ~ 0.95: close to Euler, far from Heun
    model.save_pretrained(tmp_path)
    loaded = bert_ode.BertOdeModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        reloaded = loaded(**inputs).last_hidden_state
        _assert_close(reloaded, model(**inputs).last_hidden_state)
    # Had the gates been re-initialised on load, the output would be Heun's again.
    assert (reloaded - heun_like).abs().max() > 1e-2


AUTO = {
    AutoModel: bert_ode.BertOdeModel,
    AutoModelForMaskedLM: bert_ode.BertOdeForMaskedLM,
    AutoModelForSequenceClassification: bert_ode.BertOdeForSequenceClassification,
    AutoModelForTokenClassification: bert_ode.BertOdeForTokenClassification,
    AutoModelForQuestionAnswering: bert_ode.BertOdeForQuestionAnswering,
    AutoModelForMultipleChoice: bert_ode.BertOdeForMultipleChoice,
}


@pytest.mark.parametrize("auto_class", list(AUTO), ids=lambda c: c.__name__)
def test_auto_round_trip(auto_class, tmp_path):
    config = tiny_ode_config(ode_method="rk3", ode_steps=2, num_labels=2)
    model_class = AUTO[auto_class]
    # from_config builds the BertOde class too.
    model = auto_class.from_config(config)
    assert type(model) is model_class
    model.save_pretrained(tmp_path)
    loaded_config = AutoConfig.from_pretrained(tmp_path)
    assert type(loaded_config) is bert_ode.BertOdeConfig
    assert (loaded_config.ode_method, loaded_config.ode_steps) == ("rk3", 2)
    loaded = auto_class.from_pretrained(tmp_path)
    assert type(loaded) is model_class
    _assert_same_state(model, loaded)


def test_auto_model_from_a_head_checkpoint(tmp_path):
    model = bert_ode.BertOdeForSequenceClassification(tiny_ode_config(ode_method="midpoint")).eval()
    model.save_pretrained(tmp_path)
    base = AutoModel.from_pretrained(tmp_path).eval()
    assert type(base) is bert_ode.BertOdeModel
    inputs = random_batch()
    with torch.no_grad():
        _assert_close(base(**inputs).last_hidden_state, model.bert(**inputs).last_hidden_state)


def test_saved_config_names_the_model_type_and_auto_map(tmp_path):
    bert_ode.BertOdeForMaskedLM(tiny_ode_config(ode_method="rk4")).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "bert_ode"
    assert saved["ode_method"] == "rk4"
    assert saved["architectures"] == ["BertOdeForMaskedLM"]
    assert saved["auto_map"]["AutoConfig"].endswith("BertOdeConfig")
    assert saved["auto_map"]["AutoModelForMaskedLM"].endswith("BertOdeForMaskedLM")
    # The model code travels with the checkpoint.
    for code_file in ("modeling_bert_ode.py", "configuration_bert_ode.py", "integrators.py", "tableaux.py"):
        assert (tmp_path / code_file).is_file(), code_file


def test_ode_steps_changed_after_loading_takes_effect(tmp_path):
    bert_ode.BertOdeModel(tiny_ode_config(ode_method="rk4", ode_steps=1)).save_pretrained(tmp_path)
    model = bert_ode.BertOdeModel.from_pretrained(tmp_path).eval()
    inputs = random_batch()
    with torch.no_grad():
        one = model(**inputs)
        model.config.ode_steps = 3
        three = model(**inputs)
    assert one.nfe == 2 * 2 * 1 * 4
    assert three.nfe == 2 * 2 * 3 * 4
    assert all(stats.steps == 3 for stats in three.solver_stats)
    assert not torch.equal(one.last_hidden_state, three.last_hidden_state)
    # ...and the same through a loading keyword.
    again = bert_ode.BertOdeModel.from_pretrained(tmp_path, ode_steps=3).eval()
    assert again.config.ode_steps == 3
    with torch.no_grad():
        assert again(**inputs).nfe == three.nfe
    with pytest.raises(ValueError, match="ode_steps"):
        model.config.ode_steps = 0


def test_fixed_step_method_swapped_after_loading(tmp_path):
    bert_ode.BertOdeModel(tiny_ode_config(ode_method="heun")).save_pretrained(tmp_path)
    model = bert_ode.BertOdeModel.from_pretrained(tmp_path).eval()
    model.config.ode_method = "rk4"
    with torch.no_grad():
        assert model(**random_batch()).nfe == 2 * 2 * 4


REMOTE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["bert_ode"] = None  # transformers is installed, bert_ode is not
    import torch
    import transformers
    from transformers import (
        AutoModel, AutoModelForMaskedLM, AutoModelForMultipleChoice, AutoModelForQuestionAnswering,
        AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer, pipeline,
    )

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(1)
    try:
        import bert_ode  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("bert_ode is importable: the test would prove nothing")
    expected = torch.load(sys.argv[3])
    for auto_class, directory, key in (
        (AutoModelForMaskedLM, sys.argv[1], "mlm"),
        (AutoModelForSequenceClassification, sys.argv[2], "cls"),
    ):
        model = auto_class.from_pretrained(directory, trust_remote_code=True).eval()
        module = type(model).__module__
        assert module.startswith("transformers_modules"), module
        with torch.no_grad():
            output = model(**expected["inputs"])
        torch.testing.assert_close(output.logits, expected[key], rtol=1e-6, atol=1e-5)
        assert output.nfe == expected[key + "_nfe"], output.nfe
        print("OK", key, type(model).__name__, module)
    # Every head from a checkpoint another head saved (the masked-LM one), and the encoder's output unchanged.
    for auto_class in (
        AutoModel, AutoModelForSequenceClassification, AutoModelForTokenClassification,
        AutoModelForQuestionAnswering, AutoModelForMultipleChoice,
    ):
        model = auto_class.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        print("OK head", type(model).__name__)
    # The tokenizer loads without the model code and without asking (no trust_remote_code, no prompt).
    tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
    assert tokenizer("a b c")["input_ids"][0] == tokenizer.cls_token_id
    extractor = pipeline("feature-extraction", model=sys.argv[1], trust_remote_code=True)
    features = extractor("a b c")
    assert len(features[0][0]) == expected["hidden_size"], len(features[0][0])
    print("OK pipeline")
    """
)


def test_trust_remote_code_without_the_package(tmp_path):
    mlm_dir, cls_dir = tmp_path / "mlm", tmp_path / "cls"
    mlm = bert_ode.BertOdeForMaskedLM(tiny_ode_config(ode_method="rk2-gated", ode_steps=2)).eval()
    _perturb_gates(mlm)
    cls = bert_ode.BertOdeForSequenceClassification(
        tiny_ode_config(splitting="strang", norm_position="pre", ode_method="rk3", num_labels=3)
    ).eval()
    mlm.save_pretrained(mlm_dir)
    cls.save_pretrained(cls_dir)
    _save_tiny_tokenizer(mlm_dir, mlm.config.vocab_size)
    inputs = random_batch()
    with torch.no_grad():
        mlm_out, cls_out = mlm(**inputs), cls(**inputs)
    expected_file = tmp_path / "expected.pt"
    torch.save(
        {
            "inputs": inputs,
            "mlm": mlm_out.logits,
            "mlm_nfe": mlm_out.nfe,
            "cls": cls_out.logits,
            "cls_nfe": cls_out.nfe,
            "hidden_size": mlm.config.hidden_size,
        },
        expected_file,
    )
    script = tmp_path / "load_remote.py"
    script.write_text(REMOTE_SCRIPT)
    env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_MODULES_CACHE": str(tmp_path / "hf_modules"),
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "PYTHONPATH": "",
    }
    result = subprocess.run(
        [sys.executable, str(script), str(mlm_dir), str(cls_dir), str(expected_file)],
        cwd=tmp_path,  # not the repository: src/ must not be importable from the working directory
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a cold import of transformers on a loaded machine can take minutes
        stdin=subprocess.DEVNULL,  # a "run the custom code?" prompt fails instead of waiting forever
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("OK") == 8, result.stdout
    auto_map = json.loads((mlm_dir / "config.json").read_text())["auto_map"]
    assert set(auto_map) == {
        "AutoConfig",
        "AutoModel",
        "AutoModelForMaskedLM",
        "AutoModelForSequenceClassification",
        "AutoModelForTokenClassification",
        "AutoModelForQuestionAnswering",
        "AutoModelForMultipleChoice",
    }


def _save_tiny_tokenizer(directory, vocab_size: int) -> None:
    """A WordPiece tokenizer of the model's vocabulary size, saved beside it as a pretraining run does."""
    from bert_ode.data import train_wordpiece

    words = [f"w{i}" for i in range(vocab_size)] + ["a b c"]
    train_wordpiece(words, vocab_size=vocab_size, min_frequency=1).save_pretrained(directory)
