"""ProbeReport: a probe's plain record with a rich table and the diagnosis."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from initlab.results.probe_records import (
    Finding,
    LayerStats,
    ProbeRecord,
    WeightGrad,
    healthy,
    layer_labels,
)

if TYPE_CHECKING:  # only for readers: the spectrum is made by probe.jacobian
    from initlab.probe.jacobian import JacobianSpectrum


def _fmt(x: float | None, spec: str = ".3g") -> str:
    return "" if x is None else format(x, spec)


def _from_record(name: str, doc: str):
    """A read-only property giving ``self.record.<name>``."""
    return property(lambda self: getattr(self.record, name), doc=doc)


class ProbeReport:
    """What ``initlab.probe`` measured; ``.to_record()`` gives the plain dataclasses.

    ``report.layers`` lists :class:`LayerStats` in call order, ``report.findings`` the
    diagnosis (empty when nothing looks wrong), ``report.print()`` shows both.

    >>> import torch, initlab
    >>> model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.Tanh())
    >>> _ = initlab.init_(model, "normal:std=1", generator=torch.Generator().manual_seed(0))
    >>> x = torch.randn(256, 16, generator=torch.Generator().manual_seed(1))
    >>> report = initlab.probe(model, x)
    >>> report
    ProbeReport(2 layers, 256 samples: saturated)
    >>> [(x.name, x.kind) for x in report.layers], report.findings[0].layer
    ([('0', 'linear'), ('1', 'activation')], '1')
    """

    def __init__(self, record: ProbeRecord, jacobian: JacobianSpectrum | None = None) -> None:
        self.record = record
        # the input-output Jacobian's spectrum, when ``probe(..., jacobian=True)`` asked
        self.jacobian = jacobian

    # the record's lists, read through (the report adds views, never copies)
    layers: list[LayerStats] = _from_record(
        "layers", "One LayerStats per probed layer, in call order."
    )
    findings: list[Finding] = _from_record(
        "findings", "The diagnosis: one finding per rule that fired (empty: no warning)."
    )
    weight_grads: list[WeightGrad] = _from_record(
        "weight_grads", "Gradient statistics per weight (empty without ``loss_fn``)."
    )
    notes: list[str] = _from_record("notes", "What the probe could not see or had to assume.")

    def layer(self, name: str) -> LayerStats:
        """The statistics of layer ``name``; a KeyError listing the names when there is none."""
        return self.record.layer(name)

    def to_record(self) -> ProbeRecord:
        """The plain :class:`ProbeRecord` (no torch in it)."""
        return self.record

    def to_dict(self) -> dict:
        """The record as plain JSON-able data."""
        return self.record.to_dict()

    def diagnosis(self) -> list[str]:
        """The findings as one-line strings ("saturated: ... Try: ...")."""
        return [str(f) for f in self.findings]

    def healthy(self) -> list[str]:
        """What looks right, one line per check that passed ("healthy: ...")."""
        return healthy(self.record)

    def table(self, title: str = "initlab probe"):
        """A rich Table: one row per layer in call order."""
        t = Table(
            title=title,
            caption="#: the layer number the diagnosis and the figures use; band: std of "
            "~95% of single finite-width nets; sat/dead: "
            "saturated, or dead elements/units (u); under/over: counts outside the "
            "histogram range",
            padding=(0, 1),
        )
        grads = any(x.grad_std is not None for x in self.layers)
        cols = ["#", "layer", "kind", "mean", "std", "pred. std", "band", "sat/dead", "under/over"]
        for col in cols + (["grad std"] if grads else []):
            left = col in ("#", "layer", "kind")
            names = [len(x.name) for x in self.layers] + [5]
            width = {"layer": min(max(names), 24), "kind": 7}.get(col)
            t.add_column(col, justify="left" if left else "right", no_wrap=left, min_width=width)
        numbers = {k: v.split(" (")[0].removeprefix("layer ") for k, v in
                   layer_labels(self.record).items()}  # fmt: skip
        for x in self.layers:
            pred = band = ""
            if x.predicted_var is not None:
                lo, hi = x.predicted_lower or 0.0, x.predicted_upper or 0.0
                pred, band = f"{x.predicted_var**0.5:.3g}", f"{lo**0.5:.2g}..{hi**0.5:.2g}"
            flag = ""
            if x.saturation is not None:
                flag = f"{x.saturation:.0%} sat"
            elif x.dead_units is not None:
                flag = f"{x.dead_elements:.0%}/{x.dead_units:.0%}u"
            h = x.histogram
            out = f"{h.underflow}/{h.overflow}" if h is not None else ""
            row = [numbers.get(x.name, ""), x.name or "(model)", x.activation or x.kind, _fmt(x.mean), _fmt(x.std), pred,
                   band, flag, out]  # fmt: skip
            t.add_row(*row, *([_fmt(x.grad_std)] if grads else []))
        return t

    def __rich_console__(self, console, options):
        yield self.table()
        for note in self.notes:
            yield f"[dim]note:[/] {escape(note)}"
        if not self.findings:
            yield "[green]diagnosis: no warning[/]"
        for f in self.findings:
            yield f"[yellow]{escape(f.kind)}[/]: {escape(f.message)} [dim]Try:[/] {escape(f.fix)}"
        for line in self.healthy():
            yield f"[green]{escape(line)}[/]"

    def print(self) -> None:
        """Print the table, the notes and the diagnosis to the terminal."""
        Console().print(self)

    def __repr__(self) -> str:
        kinds = ", ".join(f.kind for f in self.findings) or "no warning"
        return f"ProbeReport({len(self.layers)} layers, {self.record.samples} samples: {kinds})"
