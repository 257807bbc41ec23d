"""InitReport: what ``init_`` did to each parameter, as plain rows and a rich table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass
class InitRow:
    """One initialized parameter: its fans, the scheme, the gain and the std aimed at and got.

    >>> import torch, initlab
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh())
    >>> row = initlab.init_(model, generator=torch.Generator().manual_seed(0)).row("0.weight")
    >>> row.shape, row.fan_in, row.scheme, row.activation, round(row.gain, 3)
    ([3, 4], 4, 'auto', 'tanh', 1.593)
    """

    name: str
    shape: list[int]
    fan_in: int
    fan_out: int
    scheme: str
    gain: float | None
    target_std: float | None
    realized_std: float
    activation: str | None = None  # the activation found after the layer ("" = not traced)
    blocks: int = 1  # > 1 when filled per gate / per packed projection


@dataclass
class InitReport:
    """Rows per parameter, parameters left untouched (with why), and notes on the method.

    >>> import torch, initlab
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.LayerNorm(3))
    >>> report = initlab.init_(model, "auto", generator=torch.Generator().manual_seed(0))
    >>> [(r.name, r.scheme) for r in report.rows]
    [('0.weight', 'auto'), ('0.bias', 'zeros'), ('2.weight', 'ones'), ('2.bias', 'zeros')]
    >>> report.notes, report.to_dict()["rows"][0]["fan_out"]
    (['activations found by torch.fx tracing'], 3)
    """

    rows: list[InitRow] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # filled by data-driven schemes

    def row(self, name: str) -> InitRow:
        """The row of parameter ``name``; a KeyError listing the names when there is none."""
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no parameter {name!r} in this report; have {[r.name for r in self.rows]}")

    def to_dicts(self) -> list[dict[str, Any]]:
        """The rows as plain dicts."""
        return [asdict(r) for r in self.rows]

    def to_dict(self) -> dict[str, Any]:
        """Rows, untouched parameters, notes and extra as plain data."""
        return {
            "rows": self.to_dicts(),
            "skipped": [list(s) for s in self.skipped],
            "notes": list(self.notes),
            "extra": self.extra,
        }

    def table(self):
        """A rich Table with one row per initialized parameter."""
        t = Table(title="initlab init report", show_lines=False)
        for col in ("parameter", "shape", "fan_in", "fan_out", "scheme", "activation", "gain",
                    "target std", "realized std"):  # fmt: skip
            t.add_column(col, justify="right" if col not in ("parameter", "scheme") else "left")
        for r in self.rows:
            t.add_row(
                r.name + (f" ({r.blocks} blocks)" if r.blocks > 1 else ""),
                "x".join(map(str, r.shape)),
                str(r.fan_in),
                str(r.fan_out),
                r.scheme,
                r.activation or "",
                _fmt(r.gain),
                _fmt(r.target_std),
                _fmt(r.realized_std),
            )
        return t

    def __rich_console__(self, console, options):
        yield self.table()
        for name, why in self.skipped:
            yield f"[yellow]untouched[/] {name}: {why}"
        for note in self.notes:
            yield f"[dim]note:[/] {note}"

    def print(self) -> None:
        """Print the table, the untouched parameters and the notes to the terminal."""
        Console().print(self)


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.4g}"
