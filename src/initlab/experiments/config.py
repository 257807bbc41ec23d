"""Experiment configs: pydantic models with ``extra="forbid"``, loaded from TOML or options.

Every bad key or value becomes one :class:`ConfigError` line that names the key, what is
allowed and, for typos, the closest key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from initlab.activations import resolve
from initlab.errors import ConfigError, InitlabError, did_you_mean
from initlab.initializers.registry import get
from initlab.models.specs import canonical_arch, is_factory, parse_arch
from initlab.specs import format_spec, split_specs
from initlab.train import early_stopping as stopping_rules  # not the field early_stopping
from initlab.train import schedules
from initlab.train.controls import TrainControls
from initlab.train.device import check_device
from initlab.train.precision import canonical_precision
from initlab.train.regularize import Regularization


class CompareConfig(BaseModel):
    """Everything ``initlab compare`` needs; the CLI, TOML files and Python share the names.

    >>> config = CompareConfig(dataset="blobs", inits="kaiming_normal,lecun_normal", seeds=2)
    >>> config.inits, config.seeds, config.steps  # specs in canonical spelling
    (['he_normal', 'lecun_normal'], 2, 2000)
    >>> CompareConfig(arch="mlp:64x2", dropout=0.1).model_arch()
    'mlp:64,64,dropout=0.1'
    """

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
    precision: str = Field("fp32", description="fp32 | bf16 (bf16 autocast, fp32 weights)")
    # -- after the init: schedule, regularization, early stopping ------------------------------
    schedule: str = Field("constant", description="LR schedule spec, e.g. cosine:decay_steps=2000.")
    l1: float = Field(0.0, ge=0, description="L1 penalty on weights: + l1 * sum|W|.")
    l2: float = Field(0.0, ge=0, description="L2 penalty on weights (coupled): + l2 * sum W^2.")
    weight_decay: float = Field(0.0, ge=0, description="Decoupled decay: W *= 1 - lr * wd.")
    activity_l1: float = Field(0.0, ge=0, description="+ activity_l1 * mean_batch sum|h|.")
    activity_l2: float = Field(0.0, ge=0, description="+ activity_l2 * mean_batch sum h^2.")
    activity_layers: list[int] | None = Field(
        None, description="1-based hidden activations the activity penalty acts on (all)."
    )
    dropout: float | list[float] | None = Field(
        None, description="Dropout rate after each hidden activation, or one per layer."
    )
    batchnorm: bool | None = Field(None, description="Batch norm before each activation.")
    early_stopping: str | None = Field(
        None, description="Early-stopping options, e.g. patience=5,monitor=val_loss."
    )

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

    @field_validator("precision")
    @classmethod
    def _precision(cls, value: str) -> str:
        return canonical_precision(value)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        return check_device(value)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        return schedules.get(value).to_spec()

    @field_validator("early_stopping")
    @classmethod
    def _early_stopping(cls, value: str | None) -> str | None:
        if value is None or str(value).strip().lower() in ("", "none", "off", "false"):
            return None
        if str(value).strip().lower() in ("on", "true", "yes"):
            value = "early_stopping"
        return stopping_rules.get(value).to_spec()

    @field_validator("dropout")
    @classmethod
    def _dropout(cls, value):
        rates = value if isinstance(value, list) else [value]
        if value is not None and any(not 0.0 <= r < 1.0 for r in rates):
            raise ValueError("dropout rates must be in [0, 1)")
        return value

    def controls(self):
        """The :class:`~initlab.train.controls.TrainControls` of these settings."""
        reg = Regularization(
            l1=self.l1, l2=self.l2, weight_decay=self.weight_decay,
            activity_l1=self.activity_l1, activity_l2=self.activity_l2,
            activity_layers=None if self.activity_layers is None else tuple(self.activity_layers),
        )  # fmt: skip
        return TrainControls(self.schedule, reg, self.early_stopping, self.precision).canonical()

    def model_arch(self) -> str:
        """``arch`` with ``dropout`` and ``batchnorm`` folded in as arch options."""
        if self.dropout is None and self.batchnorm is None:
            return self.arch
        spec = parse_arch(self.arch)
        kwargs = dict(spec.kwargs)
        rates = self.dropout
        if rates is not None:
            rates = tuple(rates) if isinstance(rates, list) else rates
            if rates == 0 or (isinstance(rates, tuple) and not any(rates)):
                kwargs.pop("dropout", None)
            else:
                kwargs["dropout"] = rates
        if self.batchnorm is not None:
            kwargs["batchnorm"] = self.batchnorm
        text = format_spec(spec.name, kwargs, spec.args)
        return text if is_factory(spec.name) else canonical_arch(text)

    def resolved(self) -> dict[str, Any]:
        """The fully resolved config as plain JSON-able data (written to config.json)."""
        return self.model_dump()


def make_config(cls: type[BaseModel] = CompareConfig, **values: Any) -> Any:
    """Build a config, turning pydantic's errors into one :class:`ConfigError` line."""
    try:
        return cls(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as e:
        raise ConfigError(_one_line(e, cls)) from None


def read_toml(path: Path, kind: str = "Config file") -> dict[str, Any]:
    """The TOML data of ``path``; a missing or malformed file is one ConfigError line."""
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{kind} '{path}' does not exist.") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{kind} '{path}' is not valid TOML: {e}.") from None


def load_toml(path: str | Path, cls: type[BaseModel] = CompareConfig, **overrides: Any) -> Any:
    """Read a TOML config file; options given in ``overrides`` (not None) win over the file."""
    path = Path(path)
    data = read_toml(path)
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
