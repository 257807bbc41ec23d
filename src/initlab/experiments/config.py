"""Experiment configs: pydantic models with ``extra="forbid"``, loaded from TOML or options.

Every bad key or value becomes one :class:`ConfigError` line that names the key, what is
allowed and, for typos, the closest key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from initlab.errors import ConfigError, InitlabError, did_you_mean
from initlab.initializers.activations import resolve
from initlab.initializers.registry import get
from initlab.specs import split_specs

DEVICES = ("cpu", "cuda", "mps")


class CompareConfig(BaseModel):
    """Everything ``initlab compare`` needs; the CLI, TOML files and Python share the names."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str | None = Field(None, description="A label for the experiment (shown in reports).")
    dataset: str = Field("mnist", description="mnist | fashion-mnist | digits | blobs")
    data_dir: str | None = Field(None, description="Where to look for data files first.")
    arch: str = Field("mlp:100x4", description="Model spec or package.module:factory.")
    activation: str = Field("relu", description="Activation after each hidden layer.")
    inits: list[str] = Field(
        default_factory=lambda: ["normal:std=0.01", "lecun_normal", "he_normal"],
        description="Initializer specs to compare.",
    )
    bias: str = Field("zeros", description="Initializer spec for biases.")
    seeds: int = Field(3, ge=1, description="Seeds per init (seed indices 0..seeds-1).")
    optimizer: str = Field("sgd", description="Optimizer spec, e.g. adam:betas=0.9,0.999.")
    lr: float = Field(0.01, gt=0, description="Learning rate.")
    batch_size: int = Field(128, ge=1)
    steps: int = Field(2000, ge=1, description="Optimizer steps per model.")
    eval_every: int = Field(500, ge=1, description="Validation/test evaluation interval.")
    target_loss: float = Field(0.5, gt=0, description="Train loss for 'steps to target'.")
    device: str = Field("cpu", description="cpu | cuda | mps")
    threads: int | None = Field(None, ge=1, description="torch threads (default: all cores).")

    @field_validator("inits", mode="before")
    @classmethod
    def _split_inits(cls, value: Any) -> list[str]:
        if isinstance(value, str):
            value = split_specs(value)
        elif isinstance(value, (list, tuple)):
            value = [v if isinstance(v, dict) else str(v) for v in value]
            value = [x for v in value for x in ([v] if isinstance(v, dict) else split_specs(v))]
        else:
            raise ValueError("give a comma-separated string or a list of initializer specs")
        if not value:
            raise ValueError("give at least one initializer")
        # canonical spec strings: aliases and spellings collapse to one name
        return [get(v).to_spec() for v in value]

    @field_validator("bias")
    @classmethod
    def _bias(cls, value: str) -> str:
        return get(value).to_spec()

    @field_validator("activation")
    @classmethod
    def _activation(cls, value: str) -> str:
        return resolve(value).spec

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value.split(":")[0] not in DEVICES:
            raise ValueError(f"device {value!r} is not one of {', '.join(DEVICES)}")
        return value

    def resolved(self) -> dict[str, Any]:
        """The fully resolved config as plain JSON-able data (written to config.json)."""
        return self.model_dump()


def make_config(cls: type[BaseModel] = CompareConfig, **values: Any) -> Any:
    """Build a config, turning pydantic's errors into one :class:`ConfigError` line."""
    try:
        return cls(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as e:
        raise ConfigError(_one_line(e, cls)) from None


def load_toml(path: str | Path, cls: type[BaseModel] = CompareConfig, **overrides: Any) -> Any:
    """Read a TOML config file; options given in ``overrides`` (not None) win over the file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"Config file '{path}' does not exist.") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"Config file '{path}' is not valid TOML: {e}.") from None
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return make_config(cls, **data)
    except ConfigError as e:
        raise ConfigError(f"{e} (in '{path}')") from None


def _one_line(error: ValidationError, cls: type[BaseModel]) -> str:
    first = error.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "config"
    if first["type"] == "extra_forbidden":
        keys = list(cls.model_fields)
        return f"Unknown key '{loc}'.{did_you_mean(loc, keys)} Allowed: {', '.join(keys)}."
    ctx_error = (first.get("ctx") or {}).get("error")
    if isinstance(ctx_error, InitlabError):
        return str(ctx_error)
    msg = first["msg"].removeprefix("Value error, ")
    value = first.get("input")
    return f"Bad value for '{loc}': {msg} (got {value!r})."
