"""BertOdeConfig: BERT's defaults; each bad value raises a ValueError naming the field and allowed values."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config_dict
from transformers import AutoConfig, BertConfig

from bert_ode import TABLEAUX, BertOdeConfig

ALLOWED = {
    "ode_method": tuple(TABLEAUX),
    "ode_scope": ("sublayer", "layer"),
    "norm_position": ("post", "pre"),
    "splitting": ("lie", "strang"),
}


def test_defaults_reproduce_bert():
    config = BertOdeConfig()
    assert isinstance(config, BertConfig)
    assert config.model_type == "bert_ode"
    c = config
    ode_fields = (c.ode_method, c.ode_steps, c.ode_scope, c.norm_position, c.splitting)
    assert ode_fields == ("euler", 1, "sublayer", "post", "lie")
    # Every BERT field keeps BERT's default.
    bert = BertConfig().to_dict()
    ode = config.to_dict()
    for key, value in bert.items():
        if key not in ("model_type", "transformers_version", "architectures"):
            assert ode[key] == value, key


def test_required_methods_are_offered():
    assert set(ALLOWED["ode_method"]) >= {"euler", "midpoint", "heun", "rk3", "rk4", "rk2-gated"}


@pytest.mark.parametrize("field", sorted(ALLOWED))
def test_every_allowed_value_is_accepted(field):
    for value in ALLOWED[field]:
        extra = {"intermediate_size": 38} if field == "splitting" else {}
        config = BertOdeConfig(**{field: value, **extra})
        assert getattr(config, field) == value


@pytest.mark.parametrize(
    "field, value",
    [
        ("ode_method", "rk5"),
        ("ode_method", "RK4"),
        ("ode_method", "dopri5x"),
        ("ode_method", None),
        ("ode_scope", "block"),
        ("ode_scope", "Layer"),
        ("norm_position", "middle"),
        ("norm_position", None),
        ("splitting", "macaron"),
        ("splitting", ""),
    ],
)
def test_unknown_choice_names_field_and_allowed_values(field, value):
    with pytest.raises(ValueError) as excinfo:
        BertOdeConfig(**{field: value})
    message = str(excinfo.value)
    assert field in message
    for allowed in ALLOWED[field]:
        assert allowed in message


@pytest.mark.parametrize("value", [0, -1, "2", True, False, 1.5, 2.0, None])
def test_ode_steps_must_be_a_positive_int(value):
    with pytest.raises(ValueError, match="ode_steps") as excinfo:
        BertOdeConfig(ode_steps=value)
    assert ">= 1" in str(excinfo.value)


@pytest.mark.parametrize(
    "field, value",
    [
        ("ode_steps", 0),
        ("ode_steps", "3"),
        ("ode_method", "rk5"),
        ("ode_scope", "x"),
        ("norm_position", "x"),
        ("splitting", "x"),
    ],
)
def test_assignment_after_construction_is_validated(field, value):
    config = BertOdeConfig()
    before = getattr(config, field)
    with pytest.raises(ValueError, match=field):
        setattr(config, field, value)
    assert getattr(config, field) == before  # the bad value was not stored


def test_valid_assignment_after_construction():
    config = BertOdeConfig()
    config.ode_steps = 4
    config.ode_method = "rk4"
    assert (config.ode_steps, config.ode_method) == (4, "rk4")


def test_strang_builds_with_an_odd_intermediate_size():
    import bert_ode

    model = bert_ode.BertOdeModel(BertOdeConfig(**tiny_config_dict(splitting="strang", intermediate_size=37)))
    layer = model.encoder.layer[0]
    assert (layer.macaron_intermediate.dense.out_features, layer.intermediate.dense.out_features) == (19, 18)
    assert model(torch.tensor([[1, 2, 3]])).last_hidden_state.shape == (1, 3, 32)


@pytest.mark.parametrize("field", ["is_decoder", "add_cross_attention"])
def test_decoder_is_rejected(field):
    with pytest.raises(ValueError, match=field):
        BertOdeConfig(**{field: True})


def test_to_dict_from_dict_round_trip():
    config = BertOdeConfig(
        **tiny_config_dict(
            ode_method="rk2-gated", ode_steps=3, ode_scope="layer", norm_position="pre", splitting="strang"
        )
    )
    restored = BertOdeConfig.from_dict(config.to_dict())
    assert restored.to_dict() == config.to_dict()
    for field in (
        "ode_method",
        "ode_steps",
        "ode_scope",
        "norm_position",
        "splitting",
        "hidden_size",
        "intermediate_size",
    ):
        assert getattr(restored, field) == getattr(config, field)


def test_from_dict_validates():
    data = BertOdeConfig().to_dict()
    data["ode_steps"] = 0
    with pytest.raises(ValueError, match="ode_steps"):
        BertOdeConfig.from_dict(data)


def test_save_and_auto_config_round_trip(tmp_path):
    config = BertOdeConfig(**tiny_config_dict(ode_method="rk3", ode_steps=2, norm_position="pre"))
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert type(loaded) is BertOdeConfig
    drop = lambda d: {k: v for k, v in d.items() if k != "_name_or_path"}  # noqa: E731
    assert drop(loaded.to_dict()) == drop(config.to_dict())


def test_auto_config_for_model_type():
    config = AutoConfig.for_model("bert_ode", ode_method="heun")
    assert type(config) is BertOdeConfig and config.ode_method == "heun"
