"""The one config mechanism: YAML / --set values, dotted overrides, typed dataclasses with unknown-key
errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from bert_ode.utils.config_io import (
    from_dict,
    load_yaml,
    merge,
    nest,
    parse_assignments,
    parse_value,
    to_dict,
)
from bert_ode.utils.records import Record


@dataclass
class Inner:
    rate: float = 1e-3
    steps: int | None = None
    mode: Literal["fast", "exact"] = "fast"


@dataclass
class Outer:
    name: str = "run"
    seeds: list[int] = field(default_factory=lambda: [0])
    inner: Inner = field(default_factory=Inner)
    items: list[Inner] = field(default_factory=list)
    extra: dict[str, int] = field(default_factory=dict)
    optional: Inner | None = None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5e-4", 5e-4),
        ("5E-4", 5e-4),
        ("1e-4", 1e-4),
        ("2.0e-3", 2e-3),
        (".5", 0.5),
        ("1_000_000", 1_000_000),
        ("-3e2", -300.0),
        ("7", 7),
        ("true", True),
        ("null", None),
        ("[0, 1]", [0, 1]),
        ("rk4", "rk4"),
        ("runs/x", "runs/x"),
        ("[unclosed", "[unclosed"),
    ],
)
def test_values_are_read_as_users_write_them(text, expected):
    value = parse_value(text)
    assert value == expected and type(value) is type(expected)


def test_yaml_files_read_exponents_as_numbers(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 5e-4\n  eps: 1E-8\n  name: 1e-4x\n")
    assert load_yaml(path) == {"train": {"lr": 5e-4, "eps": 1e-8, "name": "1e-4x"}}
    path.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="must be a mapping"):
        load_yaml(path)
    path.write_text("a: [\n")
    with pytest.raises(ValueError, match="cannot parse"):
        load_yaml(path)


def test_assignments_and_nesting():
    assert parse_assignments(["a.b=1", "c=[1,2]", "d=x=y"]) == {"a.b": 1, "c": [1, 2], "d": "x=y"}
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_assignments(["novalue"])
    assert nest({"a.b.c": 1, "a.d": 2, "e": 3}) == {"a": {"b": {"c": 1}, "d": 2}, "e": 3}
    with pytest.raises(ValueError, match="is a value, not a section"):
        nest({"a": 1, "a.b": 2})
    assert merge({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 3}}) == {"a": {"x": 1, "y": 3}, "b": 1}
    # Neither leaves the caller's mappings changed.
    section = {"x": 1}
    assert nest({"a": section, "a.y": 2}) == {"a": {"x": 1, "y": 2}} and section == {"x": 1}
    base = {"a": {"x": 1}}
    merge(base, {"a": {"x": 2}})["a"]["z"] = 3
    assert base == {"a": {"x": 1}}


def test_from_dict_builds_nested_typed_dataclasses():
    config = from_dict(
        Outer,
        {
            "seeds": [1, 2],
            "inner": {"rate": 1, "steps": 1e3},
            "items": [{"mode": "exact"}],
            "extra": {"k": 4},
            "optional": {"rate": 0.5},
        },
    )
    assert config.seeds == [1, 2] and config.extra == {"k": 4}
    assert config.inner == Inner(rate=1.0, steps=1000, mode="fast") and isinstance(config.inner.rate, float)
    assert isinstance(config.inner.steps, int)
    assert config.items == [Inner(mode="exact")] and config.optional == Inner(rate=0.5)
    assert from_dict(Outer, to_dict(config)) == config  # round trip


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"nmae": "x"},
            r"unknown config key 'nmae': the config has unknown key\(s\) \['nmae'\]; allowed: extra, inner, "
            r"items",
        ),
        (
            {"inner": {"rte": 1}},
            r"unknown config key 'inner\.rte': inner has unknown key\(s\) \['rte'\]; allowed: mode, rate, "
            r"steps",
        ),
        ({"inner": {"rate": "fast"}}, r"config key 'inner\.rate' must be a number, got 'fast'"),
        ({"inner": {"steps": 2.5}}, r"config key 'inner\.steps' must be an integer, got 2\.5"),
        ({"inner": {"steps": True}}, r"config key 'inner\.steps' must be an integer, got True"),
        ({"inner": {"mode": "slow"}}, r"inner\.mode='slow' is invalid; allowed values: 'fast', 'exact'"),
        ({"inner": 3}, r"inner must be a mapping, got 3"),
        ({"seeds": 3}, r"config key 'seeds' must be a list, got 3"),
        ({"seeds": [0, "a"]}, r"config key 'seeds\[1\]' must be an integer, got 'a'"),
        ({"items": [{"bad": 1}]}, r"unknown config key 'items\[0\]\.bad'"),
        ({"extra": {"k": "v"}}, r"config key 'extra\.k' must be an integer, got 'v'"),
        ({"name": 5}, r"config key 'name' must be a string, got 5"),
    ],
)
def test_from_dict_names_the_bad_key(values, message):
    with pytest.raises(ValueError, match=message):
        from_dict(Outer, values)


@dataclass
class Result(Record):
    loss: float
    by_steps: dict[str, Inner] = field(default_factory=dict)


def test_records_round_trip_through_json_and_index_like_model_outputs(tmp_path):
    result = Result(loss=1.5, by_steps={"2": Inner(rate=0.1)})
    path = result.write_json(tmp_path / "r.json")
    assert Result.read_json(path) == result
    assert result["loss"] == 1.5 and result["by_steps"]["2"].rate == 0.1 and "loss" in result
    with pytest.raises(KeyError):
        result["missing"]
    assert not list(tmp_path.glob(".*"))  # no staging file left behind
