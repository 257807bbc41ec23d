"""The one registry mechanism, checked on every registry that uses it.

Initializers, optimizers, schedules, datasets, presets, activations (and early stopping) all
go through :class:`initlab.registry.Registry`: each name resolves, each alias resolves to its
canonical name, a one-letter typo gets a did-you-mean naming the right one, ``names(glob)``
filters like timm's ``list_models("resnet*")``, and an unknown name is one line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

import initlab
import initlab.experiments.presets  # noqa: F401  (registers every preset)
from initlab import activations
from initlab.data import datasets
from initlab.errors import ConfigError, InitlabError, InitSpecError
from initlab.experiments import preset_registry
from initlab.initializers import registry as initializers
from initlab.models import mup
from initlab.registry import Configurable, Registry
from initlab.train import early_stopping, optim, schedules


@dataclass(frozen=True)
class Case:
    """One registry and its public face: the function that resolves a name to its canonical
    name, and the module-level ``names(pattern)``."""

    registry: Registry
    resolve: Callable[[str], str]
    names: Callable[..., list[str]]
    error: type[Exception] = InitSpecError


CASES = {
    "initializers": Case(initializers.REGISTRY, lambda n: initializers.scheme_class(n).name,
                         initlab.names),
    "optimizers": Case(optim.OPTIMIZERS, lambda n: optim.resolve_optimizer(n)[0], optim.names),
    "schedules": Case(schedules.REGISTRY, lambda n: schedules.REGISTRY.cls(n).name,
                      schedules.names),
    "datasets": Case(datasets.DATASETS, datasets.canonical_name, datasets.names),
    "presets": Case(preset_registry.PRESETS, lambda n: preset_registry.get_preset(n).name,
                    preset_registry.names, ConfigError),
    "activations": Case(activations.ACTIVATIONS, lambda n: activations.resolve(n).name,
                        activations.names),
    "early_stopping": Case(early_stopping.REGISTRY, lambda n: early_stopping.get(n).name,
                           lambda pattern=None: early_stopping.REGISTRY.names(pattern)),
}  # fmt: skip
IDS = list(CASES)


@pytest.fixture(params=IDS)
def case(request) -> Case:
    return CASES[request.param]


def _typo(name: str) -> str:
    """``name`` with its middle letter doubled (a one-letter typo)."""
    letters = [i for i, c in enumerate(name) if c.isalpha()]
    i = letters[len(letters) // 2]
    return name[:i] + name[i] + name[i:]


def test_every_registry_has_names(case):
    names = case.registry.names()
    assert names and names == sorted(names) == case.names()
    assert case.registry.names(include_aliases=True) == sorted(
        names + list(case.registry.aliases())
    )


def test_every_name_resolves_to_itself(case):
    for name in case.registry.names():
        assert case.resolve(name) == name
        assert case.registry.canonical(name) == name
        assert case.registry.entry(name) is case.registry[name]


def test_every_alias_resolves_to_its_canonical_name(case):
    for alias, canonical in case.registry.aliases().items():
        assert canonical in case.registry.names()
        assert case.resolve(alias) == canonical
        assert case.registry.entry(alias) is case.registry[canonical]


def test_a_typo_gets_a_did_you_mean_naming_it(case):
    known = set(case.registry.names(include_aliases=True))
    for name in case.registry.names():
        typo = _typo(name)
        assert typo not in known
        with pytest.raises(case.error) as info:
            case.resolve(typo)
        message = str(info.value)
        assert f"Did you mean '{name}'?" in message, message
        assert message.startswith(f"Unknown {case.registry.kind} '{typo}'.")


def test_names_filter_with_a_glob(case):
    names = case.registry.names()
    for first in sorted({n[0] for n in names}):
        want = [n for n in names if n.startswith(first)]
        assert case.names(f"{first}*") == case.registry.names(f"{first}*") == want
    longest = max(names, key=len)
    assert case.names(longest) == [longest]
    assert case.names("?" * len(longest)) == [n for n in names if len(n) == len(longest)]
    assert case.names(f"*{longest[-2:]}") == [n for n in names if n.endswith(longest[-2:])]
    assert case.names("no_such_thing*") == []


def test_the_unknown_name_message_is_one_line(case):
    # a line break is no spec name, so that one goes to the registry directly
    for call, bad in ((case.resolve, "no_such_thing"), (case.registry.entry, "no\nsuch")):
        with pytest.raises(InitlabError) as info:
            call(bad)
        message = str(info.value)
        assert isinstance(info.value, case.error)
        assert "\n" not in message and len(message.splitlines()) == 1
        assert "Allowed: " in message and case.registry.names()[0] in message


def test_spellings_a_registry_normalizes():
    assert optim.canonical_optimizer("SGD") == "sgd"
    assert datasets.canonical_name("Fashion_MNIST") == "fashion-mnist"
    assert datasets.names("fashion_*") == ["fashion-mnist"]
    assert activations.resolve("ReLU").name == "relu"
    assert initlab.names("he_*") == ["he_normal", "he_uniform"]
    assert "kaiming_normal" in initlab.names("kaiming_*", include_aliases=True)
    assert initlab.names(["zeros", "ones"]) == ["ones", "zeros"]


def test_one_option_error_style():
    """Optimizers, datasets and activations say the same thing about a bad option."""
    cases = [
        (lambda: optim.canonical_optimizer("adam:beta=0.9"), "optimizer 'adam'", "betas"),
        (lambda: datasets.canonical_name("blobs:clases=3"), "dataset 'blobs'", "classes"),
        (lambda: activations.resolve("elu:alpa=2"), "activation 'elu'", "alpha"),
    ]
    for call, owner, right in cases:
        with pytest.raises(InitSpecError) as info:
            call()
        key = str(info.value).split("'")[1]
        assert str(info.value).startswith(f"Unknown option '{key}' for {owner}. Did you mean "
                                          f"'{right}'? Allowed: ")  # fmt: skip
    with pytest.raises(InitSpecError, match="for activation 'relu'. It takes none."):
        activations.resolve("relu:alpha=1")


def test_registering_by_call_and_by_decorator():
    things = Registry("thing", normalize=str.lower)
    assert things.register("small", 1, aliases=("s",)) == 1

    @things.register("big")
    def big():
        return 3

    assert things.entry("S") == 1 and things.entry("BIG") is big and len(things) == 2
    assert list(things) == ["small", "big"] and things.items() == [("small", 1), ("big", big)]
    with pytest.raises(ValueError, match="registered twice"):
        things.register("s", 2)
    with pytest.raises(ValueError, match="not spelled as it is looked up"):
        things.register("Medium", 2)
    with pytest.raises(TypeError, match="no Configurable base"):
        things.get("small")
    with pytest.raises(InitSpecError, match="Thing 'small:2': give options as KEY=VALUE."):
        things.parse("small:2")


def test_configurable_registries_keep_their_spec_parsing():
    normal = initializers.get("normal:std=0.01")
    assert initializers.get(normal.to_config()) == normal
    assert (
        initializers.get(normal.to_spec())
        == normal
        == initializers.get('{"name": "normal", "std": 0.01}')
    )
    assert initializers.get({"name": "kaiming_normal"}).to_spec() == "he_normal"
    assert schedules.get("sgdr").name == "cosine_restarts" and issubclass(
        schedules.REGISTRY.cls("sgdr"), Configurable
    )


@pytest.mark.parametrize("optimizer", mup.OPTIMIZERS)
def test_the_optimizer_factory_over_mup_groups_is_bit_identical(optimizer):
    """The one optimizer factory (``train.optim.make_optimizer``) over ``mup.param_groups``
    gives the same parameter groups, state and weights after a few steps as torch.optim's
    SGD/Adam built by hand over the same groups (what width runs used before)."""

    def run(factory: str):
        torch.manual_seed(0)
        plan = mup.plan_widths(mup.mlp, width=64, base_width=32, optimizer=optimizer,
                               in_shape=(8,), n_classes=3)  # fmt: skip
        model = mup.apply_readout(mup.mlp(width=64, in_shape=(8,), n_classes=3), plan)
        if factory == "torch":
            groups = mup.param_groups(model, plan, 0.05)
            opt = (torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam)(groups, lr=0.05)
        else:
            groups = mup.param_groups(model, plan, 0.05)
            opt = optim.make_optimizer(optimizer, groups, lr=0.05, foreach=None)
        g = torch.Generator().manual_seed(1)
        for _ in range(4):
            x, y = torch.randn(16, 8, generator=g), torch.randint(0, 3, (16,), generator=g)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        return model, opt.state_dict()

    (model_a, state_a), (model_b, state_b) = run("torch"), run("optim")
    assert state_a["param_groups"] == state_b["param_groups"]
    assert state_a["state"].keys() == state_b["state"].keys()
    for i, entry in state_a["state"].items():
        assert all(torch.equal(v, state_b["state"][i][k]) for k, v in entry.items())
    assert all(torch.equal(a, b) for a, b in zip(model_a.parameters(), model_b.parameters()))
