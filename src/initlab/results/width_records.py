"""Plain records of width-scaling experiments, and what they say (no torch here).

:class:`CoordCheck` holds a coordinate check: mean |activation| of every weight layer, per
width, seed and step. :func:`transfer_points` turns width-transfer runs into one point per
(parametrization, width, learning rate), and :func:`best_lrs` picks each width's optimum.

>>> cc = CoordCheck("mup", "adam", 0.01, 64, "mlp", "mnist", widths=[64, 256], steps=[0],
...                 seeds=1, layers=["3"], kinds=["hidden"],
...                 values=[[[[1.0]]], [[[1.5]]]])
>>> cc.growth("3", 0), cc.spread("3", 0)
(1.5, 1.5)
>>> growing_layers(cc)
[]
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

GROWTH_LIMIT = 2.0  # a layer whose size changes by more than this across widths is flagged


@dataclass
class CoordCheck:
    """A coordinate check. ``values[w][s][t][l]``: mean |output| of layer ``layers[l]`` at
    width ``widths[w]``, seed ``s``, after ``steps[t]`` optimizer steps (NaN if diverged)."""

    parametrization: str
    optimizer: str
    lr: float
    base_width: int
    arch: str
    dataset: str
    widths: list[int]
    steps: list[int]
    seeds: int
    layers: list[str]
    kinds: list[str]  # input / hidden / output / fixed, parallel to layers
    values: list[list[list[list[float]]]] = field(default_factory=list)
    batch_size: int = 128

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CoordCheck:
        """Rebuild from stored data (a ``kind`` key is dropped)."""
        d = {k: v for k, v in d.items() if k != "kind"}
        return cls(**d)

    def label(self, layer: str) -> str:
        """The layer with its kind, e.g. ``0 (input)``."""
        return f"{layer} ({self.kinds[self.layers.index(layer)]})"

    def seed_values(self, layer: str, step: int, width_index: int) -> list[float]:
        """One value per seed: ``layer`` after ``step`` steps at width ``widths[width_index]``."""
        li, ti = self.layers.index(layer), self.steps.index(step)
        return [float(v[ti][li]) for v in self.values[width_index]]

    def mean(self, layer: str, step: int) -> list[float]:
        """Mean over seeds, one value per width."""
        return [_mean(self.seed_values(layer, step, w)) for w in range(len(self.widths))]

    def growth(self, layer: str, step: int) -> float:
        """Mean at the largest width over mean at the smallest."""
        m = self.mean(layer, step)
        return _ratio(m[-1], m[0])

    def spread(self, layer: str, step: int) -> float:
        """Largest over smallest mean across widths (>= 1; inf if any is 0 or NaN)."""
        m = self.mean(layer, step)
        if not all(math.isfinite(x) and x > 0 for x in m):
            return math.inf
        return max(m) / min(m)

    def slope(self, layer: str, step: int) -> float:
        """Least-squares slope of log(mean) against log(width): 0 is width-independent."""
        xs = [math.log(w) for w in self.widths]
        ys = [
            math.log(v) if v > 0 and math.isfinite(v) else math.nan for v in self.mean(layer, step)
        ]
        if len(xs) < 2 or any(math.isnan(y) for y in ys):
            return math.nan
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def _ratio(a: float, b: float) -> float:
    if not (math.isfinite(a) and math.isfinite(b)) or b <= 0:
        return math.inf
    return a / b


def growing_layers(cc: CoordCheck, limit: float = GROWTH_LIMIT) -> list[tuple[str, int, float]]:
    """(layer, step, growth) for each layer whose largest-width mean exceeds ``limit`` times
    its smallest-width mean at some step; the step of largest growth is reported."""
    found = []
    for layer in cc.layers:
        step, g = max(((t, cc.growth(layer, t)) for t in cc.steps), key=lambda p: p[1])
        if g > limit:
            found.append((layer, step, g))
    return found


def coord_diagnosis(cc: CoordCheck, limit: float = GROWTH_LIMIT) -> list[str]:
    """Plain-text lines naming the layers whose size grows with width."""
    w0, w1 = cc.widths[0], cc.widths[-1]
    lines = []
    for layer, step, g in growing_layers(cc, limit):
        slope = cc.slope(layer, step)
        lines.append(
            f"{cc.parametrization}: layer {cc.label(layer)} grows with width: "
            f"x{g:.3g} from width {w0} to {w1} at step {step} (log-log slope {slope:.2f})."
        )
    if not lines:
        lines.append(
            f"{cc.parametrization}: no layer grows more than {limit:g}x from width {w0} to {w1} "
            f"over steps {cc.steps[0]}-{cc.steps[-1]}."
        )
    return lines


@dataclass(frozen=True)
class TransferPoint:
    """Width-transfer metric of one (parametrization, width, lr) over its seeds."""

    parametrization: str
    width: int
    lr: float
    values: tuple[float, ...]  # one per seed; inf when the run diverged

    @property
    def mean(self) -> float:
        """Mean over the seeds; inf when any seed diverged."""
        return _mean(self.values) if all(math.isfinite(v) for v in self.values) else math.inf


def tail_mean(losses: Sequence[float], last: int) -> float:
    """Mean of the last ``last`` losses; inf if any of them (or the series) is not finite."""
    tail = list(losses)[-last:]
    if len(tail) < last or not all(math.isfinite(x) for x in tail):
        return math.inf
    return sum(tail) / len(tail)


def transfer_points(rows: Iterable[tuple[str, int, float, float]]) -> list[TransferPoint]:
    """Group (parametrization, width, lr, metric) rows over seeds, sorted."""
    groups: dict[tuple[str, int, float], list[float]] = defaultdict(list)
    for p, w, lr, value in rows:
        groups[(p, int(w), float(lr))].append(float(value))
    return [TransferPoint(p, w, lr, tuple(v)) for (p, w, lr), v in sorted(groups.items())]


def best_lrs(points: Iterable[TransferPoint]) -> dict[tuple[str, int], float]:
    """(parametrization, width) -> the learning rate with the lowest mean metric.

    >>> pts = [TransferPoint("sp", 64, 0.1, (1.0,)), TransferPoint("sp", 64, 0.2, (0.5,))]
    >>> best_lrs(pts)
    {('sp', 64): 0.2}
    """
    best: dict[tuple[str, int], TransferPoint] = {}
    for pt in points:
        key = (pt.parametrization, pt.width)
        if key not in best or pt.mean < best[key].mean:
            best[key] = pt
    return {k: v.lr for k, v in best.items()}


def lr_text(lr: float) -> str:
    """``2^-7`` for a power of two, else ``%g``: ``lr_text(0.0078125) == "2^-7"``."""
    k = math.log2(lr) if lr > 0 else math.nan
    return f"2^{k:.0f}" if math.isfinite(k) and k == round(k) else f"{lr:g}"


def transfer_diagnosis(points: Sequence[TransferPoint]) -> list[str]:
    """One line per parametrization: the best lr at each width, and how many grid steps
    (factors of 2, the preset's grid) it moves from the smallest to the largest width."""
    best = best_lrs(points)
    lines = []
    for p in dict.fromkeys(k[0] for k in best):
        widths = sorted(w for q, w in best if q == p)
        shown = ", ".join(f"{w}: {lr_text(best[(p, w)])}" for w in widths)
        moved = abs(math.log2(best[(p, widths[-1])] / best[(p, widths[0])]))
        lines.append(
            f"{p}: best learning rate by width {shown}; moves {moved:.0f} grid step(s) "
            f"from width {widths[0]} to {widths[-1]}."
        )
    return lines
