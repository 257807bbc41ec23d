"""Plain records of a probe: what an initialization does to activations and gradients.

A :class:`ProbeRecord` is what ``initlab.probe(...)`` measures, converted to dataclasses of
floats, ints, strings and lists. Reports and stored results read these and never import torch.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from initlab.atomic import atomic_write_text


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


def layer_labels(record: ProbeRecord) -> dict[str, str]:
    """Module name -> the 1-based name figures and the diagnosis use, e.g. "layer 3 (tanh)".

    Layers are counted by activation: the k-th activation and the weight layer feeding it
    are both layer k (a readout after the last activation is one more); without any
    activation every probed layer is its own number. A module with a non-numeric name
    keeps it: "layer 2 (relu, features.5)".

    >>> r = ProbeRecord(layers=[LayerStats("0", "linear", "Linear", 0),
    ...     LayerStats("1", "activation", "Tanh", 1, activation="tanh")])
    >>> layer_labels(r)
    {'0': 'layer 1 (linear)', '1': 'layer 1 (tanh)'}
    """
    has_acts = any(x.kind == "activation" for x in record.layers)
    labels, depth = {}, 0
    for i, x in enumerate(record.layers):
        if not has_acts:
            k = i + 1
        elif x.kind == "activation":
            depth += 1
            k = depth
        else:
            k = depth + 1
        what = x.activation or x.kind
        where = "" if x.name.isdigit() or not x.name else f", {x.name}"
        labels[x.name] = f"layer {k} ({what}{where})"
    return labels


def near_zero(layer: LayerStats) -> float | None:
    """Share of a layer's outputs in the histogram bin holding 0 (for a ReLU: the zeros and
    the smallest positive values), of every value counted; None without a histogram."""
    h = layer.histogram
    if h is None or not h.counts or h.total == 0:
        return None
    if not h.lo <= 0.0 <= h.hi:
        return 0.0
    width = (h.hi - h.lo) / len(h.counts)
    i = min(int((0.0 - h.lo) / width), len(h.counts) - 1) if width > 0 else 0
    return h.counts[i] / h.total


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def healthy(record: ProbeRecord) -> list[str]:
    """What looks right, one line each ("healthy: ..."), for the checks no finding of
    ``record.findings`` contradicts: the good half of a diagnosis.

    >>> r = ProbeRecord(layers=[LayerStats("1", "activation", "Tanh", 0, std=0.6),
    ...     LayerStats("3", "activation", "Tanh", 1, std=0.5)])
    >>> healthy(r)
    ['healthy: activation std stays within 0.5..0.6 across 2 layers (layer 1 to layer 2).']
    """
    kinds = {f.kind for f in record.findings}
    signal = {"vanishing", "exploding", "collapsed", "saturated", "symmetric", "dead"}
    labels = layer_labels(record)
    lines = []
    acts = [x for x in record.of_kind("activation") if _finite(x.std)]
    if len(acts) >= 2 and not kinds & signal:
        lo, hi = min(x.std for x in acts), max(x.std for x in acts)
        first, last = (labels[x.name].split(" (")[0] for x in (acts[0], acts[-1]))
        lines.append(f"healthy: activation std stays within {lo:.3g}..{hi:.3g} across "
                     f"{len(acts)} layers ({first} to {last}).")  # fmt: skip
    sat = [x.saturation for x in acts if x.saturation is not None]
    if sat and not kinds & {"saturated", "collapsed", "symmetric"}:
        lines.append(f"healthy: no saturation: at most {max(sat):.0%} of outputs within 0.01 "
                     f"of a bound in any of {len(sat)} layers.")  # fmt: skip
    dead = [x.dead_units for x in record.layers if x.dead_units is not None]
    if dead and not kinds & {"dead", "symmetric"}:
        lines.append(f"healthy: ReLU units fire: at most {max(dead):.0%} never fire "
                     f"in any of {len(dead)} layers.")  # fmt: skip
    grads = [g.norm for g in record.weight_grads if _finite(g.norm)]
    if (
        len(grads) >= 2
        and grads[-1] > 0
        and not kinds & (signal | {"vanishing gradients", "exploding gradients"})
    ):
        lines.append(f"healthy: weight-gradient norms are balanced: first/last layer "
                     f"x{grads[0] / grads[-1]:.2g} (within 100x) across {len(grads)} "
                     "weight layers.")  # fmt: skip
    return lines


WATCH_COLUMNS = (
    "step", "layer", "label", "kind", "mean", "std", "near_zero", "min", "max", "saturation",
    "dead_elements", "grad_std", "grad_norm",
)  # fmt: skip


@dataclass
class WatchHistory:
    """Probe records taken every ``every`` training steps (forwards in ``model.training``
    mode with gradients on); evaluation forwards are skipped, not measured: ``eval_skipped``
    counts them.

    ``rows()`` gives one flat row per (step, layer); ``to_csv`` / ``to_json`` write them
    (JSON: the whole history, histograms included, that :meth:`from_dict` reads back).
    """

    every: int
    records: list[ProbeRecord] = field(default_factory=list)
    eval_skipped: int = 0  # evaluation forwards seen and not counted as steps

    @property
    def steps(self) -> list[int]:
        """The training step of each record (0 when a record has none)."""
        return [int(r.step or 0) for r in self.records]

    def layer_names(self) -> list[str]:
        """Every layer's module name, in first-seen call order."""
        return list(dict.fromkeys(x.name for r in self.records for x in r.layers))

    def labels(self) -> dict[str, str]:
        """Module name -> "layer k (act)", as :func:`layer_labels` names them."""
        out: dict[str, str] = {}
        for r in self.records:
            for name, label in layer_labels(r).items():
                out.setdefault(name, label)
        return out

    def series(self, layer: str, stat: str = "std") -> tuple[list[int], list[float | None]]:
        """(steps, values) of one statistic of one layer, e.g. ``series("2", "std")``;
        ``stat="near_zero"`` gives :func:`near_zero`."""
        steps, values = [], []
        for r in self.records:
            for x in r.layers:
                if x.name == layer:
                    steps.append(int(r.step or 0))
                    values.append(near_zero(x) if stat == "near_zero" else getattr(x, stat))
        return steps, values

    def rows(self) -> list[dict[str, Any]]:
        """One dict per (step, layer) with the :data:`WATCH_COLUMNS`."""
        labels = self.labels()
        out = []
        for r in self.records:
            for x in r.layers:
                row: dict[str, Any] = {"step": int(r.step or 0), "layer": x.name,
                                       "label": labels.get(x.name, x.name), "kind": x.kind,
                                       "near_zero": near_zero(x)}  # fmt: skip
                for col in WATCH_COLUMNS:
                    row.setdefault(col, getattr(x, col, None))
                out.append(row)
        return out

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`rows` as CSV (empty cells for None) and return the path."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(WATCH_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for row in self.rows():
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
        return atomic_write_text(path, buf.getvalue())

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON (``WatchHistory.from_dict(json.load(f))`` reads it
        back) and return the path."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data; :meth:`from_dict` rebuilds the history."""
        return {"every": self.every, "eval_skipped": self.eval_skipped,
                "records": [r.to_dict() for r in self.records]}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WatchHistory:
        """Rebuild a history from :meth:`to_dict` data."""
        records = [ProbeRecord.from_dict(r) for r in d.get("records", [])]
        return cls(d["every"], records, int(d.get("eval_skipped", 0)))


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
