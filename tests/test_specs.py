"""The spec grammar, tested with the parser alone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from initlab.errors import InitSpecError
from initlab.specs import format_spec, parse_spec, split_specs


def test_list_grammar_splits_three_init_specs():
    assert split_specs("normal:std=0.01,lecun_normal,he_normal") == [
        "normal:std=0.01",
        "lecun_normal",
        "he_normal",
    ]


def test_bare_numbers_extend_a_value_to_a_tuple():
    assert split_specs("adam:betas=0.89,0.999") == ["adam:betas=0.89,0.999"]
    spec = parse_spec("adam:betas=0.89,0.999,eps=1e-7")
    assert spec.name == "adam"
    assert spec.kwargs == {"betas": (0.89, 0.999), "eps": 1e-7}


def test_list_of_specs_with_tuples_and_keys():
    text = "adam:betas=0.9,0.99,eps=1e-8,sgd:momentum=0.9,nesterov=true,rmsprop"
    assert split_specs(text) == [
        "adam:betas=0.9,0.99,eps=1e-8",
        "sgd:momentum=0.9,nesterov=true",
        "rmsprop",
    ]
    assert parse_spec("sgd:momentum=0.9,nesterov=true").kwargs == {
        "momentum": 0.9,
        "nesterov": True,
    }


def test_values_are_typed():
    kw = parse_spec("x:a=1,b=1.5,c=true,d=none,e=fan_in,f=-2,g=1e-3").kwargs
    assert kw == {"a": 1, "b": 1.5, "c": True, "d": None, "e": "fan_in", "f": -2, "g": 1e-3}
    assert isinstance(kw["a"], int) and isinstance(kw["b"], float)


def test_positional_values_for_model_specs():
    assert parse_spec("mlp:100x4").args == ("100x4",)
    assert parse_spec("cnn:32,64").args == (32, 64)
    assert split_specs("mlp:100x4,cnn:32,64") == ["mlp:100x4", "cnn:32,64"]


def test_factory_path_keeps_its_colon():
    spec = parse_spec("mypkg.models:make_net")
    assert spec.name == "mypkg.models:make_net" and not spec.kwargs
    spec = parse_spec("mypkg.models:make_net:width=64")
    assert spec.name == "mypkg.models:make_net" and spec.kwargs == {"width": 64}


def test_repeated_options_are_accepted_as_a_list():
    assert split_specs(["he_normal,lecun_normal", "normal:std=0.01"]) == [
        "he_normal",
        "lecun_normal",
        "normal:std=0.01",
    ]


@pytest.mark.parametrize(
    "bad, words",
    [
        ("", "Empty spec"),
        ("normal:", "ends with ':'"),
        ("normal:std=", "has no value"),
        ("normal:std=1,std=2", "given twice"),
        ("normal:std=1,fan_in", "only numbers may follow"),
        ("9lives", "Bad spec name"),
        ("normal:s-d=1", "Bad option name"),
    ],
)
def test_bad_specs_raise_one_line(bad, words):
    with pytest.raises(InitSpecError) as e:
        parse_spec(bad)
    assert words in str(e.value)
    assert "\n" not in str(e.value)


def test_format_round_trips():
    for text in [
        "normal:std=0.01",
        "adam:betas=0.89,0.999,eps=1e-07",
        "he_normal",
        "x:flag=true,m=fan_in",
    ]:
        spec = parse_spec(text)
        assert parse_spec(format_spec(spec.name, spec.kwargs)) == spec


@given(st.text(max_size=40))
def test_any_string_parses_or_raises_initspecerror(text):
    try:
        parse_spec(text)
    except InitSpecError:
        pass
    try:
        split_specs(text)
    except InitSpecError:
        pass
