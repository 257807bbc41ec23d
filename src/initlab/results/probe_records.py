"""Plain records of a probe: what an initialization does to activations and gradients.

A :class:`ProbeRecord` is what ``initlab.probe(...)`` measures, converted to dataclasses of
floats, ints, strings and lists. Reports and stored results read these and never import torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Histogram:
    """Fixed-bin counts over ``[lo, hi]``; values outside land in underflow / overflow."""

    lo: float
    hi: float
    counts: list[int]
    underflow: int = 0
    overflow: int = 0
    nonfinite: int = 0  # NaN and +-inf, kept out of every other count

    @property
    def edges(self) -> list[float]:
        """The bins + 1 bin edges, evenly spaced from lo to hi."""
        n = len(self.counts)
        return [self.lo + (self.hi - self.lo) * i / n for i in range(n + 1)]

    @property
    def total(self) -> int:
        """Every value counted: in the bins, under or over the range, or not finite."""
        return sum(self.counts) + self.underflow + self.overflow + self.nonfinite


@dataclass
class LayerStats:
    """Statistics of one layer's output, accumulated over every probed batch.

    ``kind`` is "activation" (an elementwise activation module), "linear" or "conv" (the
    output of a weight layer, i.e. a pre-activation; HF's Conv1D is "linear"), "rnn" (a
    recurrent layer's output sequence), "embedding" (looked-up vectors), or "block"
    (a module of an ``nn.ModuleList``, e.g. a transformer block: its output is the residual
    stream). Fractions are in [0, 1]; a field is None where it does not apply (saturation
    only for bounded activations, dead only for ReLUs, weight fields only for weight layers).
    """

    name: str  # qualified module name, e.g. "features.3"
    kind: str
    module: str  # class name, e.g. "Linear", "Sigmoid"
    index: int  # position in call order
    activation: str | None = None  # activation spec for kind == "activation"
    count: int = 0  # finite elements seen
    nonfinite: int = 0  # NaN / inf elements (kept out of every other statistic)
    units: int = 0  # elements per example
    mean: float = float("nan")
    std: float = float("nan")
    min: float = float("nan")
    max: float = float("nan")
    saturation: float | None = None  # fraction within 0.01 of a bound of the range
    dead_elements: float | None = None  # fraction of outputs that are exactly <= 0
    dead_units: float | None = None  # fraction of units never > 0 on any probed example
    unit_spread: float | None = None  # mean within-example variance / total variance (2-d)
    histogram: Histogram | None = None
    grad_std: float | None = None  # gradient of the loss w.r.t. this output
    grad_norm: float | None = None  # RMS over batches of the per-batch gradient norm
    weight_std: float | None = None  # weight layers: std of the weight entries
    weight_rows_identical: bool | None = None  # every output unit has the same weights
    predicted_var: float | None = None  # mean-field prediction of this output's variance
    predicted_lower: float | None = None  # finite-width band (about 95% of single networks)
    predicted_upper: float | None = None

    @property
    def var(self) -> float:
        """``std`` squared."""
        return self.std * self.std

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LayerStats:
        """Rebuild from plain data (``asdict`` of a LayerStats)."""
        d = dict(d)
        if d.get("histogram") is not None:
            d["histogram"] = Histogram(**d["histogram"])
        return cls(**d)


@dataclass
class WeightGrad:
    """Gradient of the loss w.r.t. one weight tensor (std over entries, RMS of batch norms)."""

    name: str  # parameter name, e.g. "0.weight"
    layer: str  # owning module
    shape: list[int]
    std: float
    norm: float


@dataclass
class Finding:
    """One diagnosis: which rule fired, on which layer, what it means, and what to try."""

    kind: str  # saturated | collapsed | dead | exploding | vanishing | symmetric | ...
    layer: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message} Try: {self.fix}"


@dataclass
class ProbeRecord:
    """Everything one probe measured, in call order, plus the diagnosis."""

    layers: list[LayerStats] = field(default_factory=list)
    weight_grads: list[WeightGrad] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    batches: int = 0
    samples: int = 0
    loss: float | None = None  # mean loss over batches when a loss was given
    step: int | None = None  # training step, for records taken by watch()

    def layer(self, name: str) -> LayerStats:
        """The statistics of layer ``name``; a KeyError listing the names when there is none."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer {name!r} in this probe; have {[x.name for x in self.layers]}")

    def of_kind(self, kind: str) -> list[LayerStats]:
        """The layers of one ``kind`` (``activation``, ``linear``, ``conv``...), in call order."""
        return [x for x in self.layers if x.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data; :meth:`from_dict` rebuilds the record."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProbeRecord:
        """Rebuild a record from :meth:`to_dict` data."""
        d = dict(d)
        d["layers"] = [LayerStats.from_dict(x) for x in d.get("layers", [])]
        d["weight_grads"] = [WeightGrad(**x) for x in d.get("weight_grads", [])]
        d["findings"] = [Finding(**x) for x in d.get("findings", [])]
        return cls(**d)


@dataclass
class WatchHistory:
    """Probe records taken every ``every`` steps during training."""

    every: int
    records: list[ProbeRecord] = field(default_factory=list)

    @property
    def steps(self) -> list[int]:
        """The training step of each record (0 when a record has none)."""
        return [int(r.step or 0) for r in self.records]

    def series(self, layer: str, stat: str = "std") -> tuple[list[int], list[float | None]]:
        """(steps, values) of one statistic of one layer, e.g. ``series("2", "std")``."""
        steps, values = [], []
        for r in self.records:
            for x in r.layers:
                if x.name == layer:
                    steps.append(int(r.step or 0))
                    values.append(getattr(x, stat))
        return steps, values

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data; :meth:`from_dict` rebuilds the history."""
        return {"every": self.every, "records": [r.to_dict() for r in self.records]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WatchHistory:
        """Rebuild a history from :meth:`to_dict` data."""
        return cls(d["every"], [ProbeRecord.from_dict(r) for r in d.get("records", [])])


@dataclass
class HistogramRun:
    """One cell of the classic figure: a stack of Linear + activation, one init, one seed."""

    activation: str
    init: str
    layers: int
    width: int
    samples: int
    seed: int
    bias: bool
    probe: ProbeRecord

    def activation_layers(self) -> list[LayerStats]:
        """The statistics of the activation layers, in order."""
        return self.probe.of_kind("activation")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data; :meth:`from_dict` rebuilds the run."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HistogramRun:
        """Rebuild a run from :meth:`to_dict` data."""
        d = dict(d)
        d["probe"] = ProbeRecord.from_dict(d["probe"])
        return cls(**d)
