"""Fuzzing the spec parser and the config loader with hypothesis.

Any input gives either a valid object or the matching one-line InitlabError
(InitSpecError / ConfigError), never another exception.
"""

from __future__ import annotations

import pytest
import tomllib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import initlab
from initlab.errors import ConfigError, InitSpecError
from initlab.experiments.config import CompareConfig, load_toml, make_config
from initlab.initializers.registry import names as init_names
from initlab.specs import format_spec, parse_spec, split_specs

# Each property runs twice: a quick pass in the fast suite, and 3000 examples under `slow`
# (about a minute for all six properties on one core).
QUICK = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEEP = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fuzz(*strategies):
    """Decorate ``check``: return the quick test; the deep one goes into the module globals."""

    def wrap(check):
        deep = pytest.mark.slow(DEEP(given(*strategies)(check)))
        deep.__name__ = check.__name__ + "_deep"
        globals()[deep.__name__] = deep
        return QUICK(given(*strategies)(check))

    return wrap


# Spec-shaped text: names, option keys and values that the grammar knows, glued with its
# punctuation, plus arbitrary unicode; pure st.text() rarely reaches past the name check.
NAMES = st.sampled_from([*init_names(), "he_normal", "normal", "orthogonal", "x.y:f", "Normal"])
KEYS = st.sampled_from(["std", "mean", "gain", "mode", "a", "nonlinearity", "scale", "low", "x"])
VALUES = st.one_of(
    st.sampled_from(["0", "-1", "1e-3", "nan", "inf", "-inf", "true", "none", "fan_in", "relu",
                     "", "1e400", "0.0", "1,2", "=", ":"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.text(max_size=6),
)  # fmt: skip
ITEMS = st.one_of(st.tuples(KEYS, VALUES).map("=".join), VALUES)
SPECS = st.one_of(
    st.builds(lambda n, items: n + (":" + ",".join(items) if items else ""),
              NAMES, st.lists(ITEMS, max_size=4)),
    st.text(max_size=40),
    st.text(alphabet=":,=._-0123456789abcdefhilmnorstuv ", max_size=30),
)  # fmt: skip


def _one_line(error: Exception) -> None:
    message = str(error)
    assert message and "\n" not in message, repr(message)


@fuzz(SPECS)
def test_spec_parser_gives_a_spec_or_init_spec_error(text):
    try:
        spec = parse_spec(text)
    except InitSpecError as e:
        _one_line(e)
        return
    # what parses formats back to a spec that parses to the same thing
    again = parse_spec(format_spec(spec.name, spec.kwargs, spec.args))
    assert again.name == spec.name


@fuzz(SPECS)
def test_split_specs_gives_specs_or_init_spec_error(text):
    try:
        parts = split_specs(text)
    except InitSpecError as e:
        _one_line(e)
        return
    assert all(isinstance(p, str) and p for p in parts)


@fuzz(st.one_of(SPECS, st.dictionaries(st.sampled_from(["name", "std", "gain", "mode"]),
                                        st.one_of(VALUES, st.floats(), st.integers()),
                                        max_size=3)))  # fmt: skip
def test_get_gives_an_initializer_or_init_spec_error(spec):
    try:
        init = initlab.get(spec)
    except InitSpecError as e:
        _one_line(e)
        return
    # a valid initializer round-trips through its own spec and config
    assert initlab.get(init.to_spec()) == init
    assert initlab.get(init.to_config()) == init


FIELDS = list(CompareConfig.model_fields)
JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20),
              st.floats(allow_nan=True), st.text(max_size=12), SPECS),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)  # fmt: skip
KEY_NAMES = st.one_of(st.sampled_from(FIELDS), st.text(min_size=1, max_size=10))


@fuzz(st.dictionaries(KEY_NAMES, JSONISH, max_size=4))
def test_make_config_gives_a_config_or_config_error(values):
    try:
        config = make_config(CompareConfig, **values)
    except (ConfigError, InitSpecError) as e:
        _one_line(e)
        return
    assert isinstance(config, CompareConfig)
    assert make_config(CompareConfig, **config.resolved()) == config


@fuzz(st.text(max_size=200))
def test_load_toml_gives_a_config_or_config_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("toml") / "exp.toml"
    path.write_text(text, encoding="utf-8")
    try:
        config = load_toml(path)
    except (ConfigError, InitSpecError) as e:
        _one_line(e)
        return
    assert isinstance(config, CompareConfig)


TOML_VALUES = st.one_of(
    st.integers(-5, 5).map(str), st.sampled_from(["0.1", "-0.1", "true", "[]", "[1]", "{}",
                                                 "nan", "inf", "1979-05-27"]),
    SPECS.map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.lists(SPECS, max_size=3).map(lambda xs: "[" + ", ".join(repr(x) for x in xs) + "]"),
)  # fmt: skip


@fuzz(st.dictionaries(KEY_NAMES.filter(lambda k: k.isidentifier()), TOML_VALUES, max_size=4))
def test_toml_shaped_files_give_a_config_or_config_error(tmp_path_factory, table):
    text = "\n".join(f"{k} = {v}" for k, v in table.items())
    path = tmp_path_factory.mktemp("toml") / "exp.toml"
    path.write_text(text, encoding="utf-8")
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        pass  # the loader must still say so in one line
    try:
        load_toml(path)
    except (ConfigError, InitSpecError) as e:
        _one_line(e)


def test_fuzz_found_cases_stay_fixed(tmp_path):
    """Inputs the fuzzers found once, kept as plain regression cases."""
    with pytest.raises(ConfigError, match="inits"):  # was a TypeError
        make_config(CompareConfig, inits=3)
    # user text with line breaks: the message stays one line, the break shown escaped
    with pytest.raises(ConfigError) as info:
        make_config(CompareConfig, **{"\n": []})
    assert str(info.value).startswith("Unknown key '\\n'.")
    with pytest.raises(InitSpecError) as info:
        initlab.get({"name": "he\u2028normal"})
    assert len(str(info.value).splitlines()) == 1 and "he\\u2028normal" in str(info.value)
