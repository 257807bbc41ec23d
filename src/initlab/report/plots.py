"""Training-curve figures drawn from plain run records with matplotlib, as SVG bytes.

No pyplot and no global backend switch: figures are ``matplotlib.figure.Figure`` objects
saved under a private rc context (matplotlib's default style, fixed SVG hash salt, no date or
creator metadata), so the same records give byte-identical SVG on every rebuild.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import matplotlib
import matplotlib.style
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullFormatter

from initlab.results.records import RunRecord

# Metric names the trainer records; early-stopping marks are one-point series.
LOSS_METRICS = ("train_loss", "val_loss", "test_loss")
ACCURACY_METRICS = ("train_acc", "val_acc", "test_acc")
MAX_POINTS = 400  # longer curves are averaged over windows: smaller files, readable noise
_STYLE = {"train": "-", "val": "--", "test": ":"}
_RC = {
    "svg.hashsalt": "initlab",  # SVG element ids are random unless salted
    "svg.fonttype": "path",  # glyphs as paths: no dependence on the viewer's fonts
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


@contextmanager
def plot_style() -> Iterator[None]:
    """matplotlib defaults plus our fixed settings, whatever the user's matplotlibrc says."""
    with matplotlib.rc_context():
        matplotlib.style.use("default")
        matplotlib.rcParams.update(_RC)
        yield


def svg_bytes(fig: Figure) -> bytes:
    """Deterministic SVG of a figure (call inside :func:`plot_style`)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    return buf.getvalue()


def plain(text: str) -> str:
    """User text for a figure: every ``$`` escaped, so an init spec is never mathtext."""
    return str(text).replace("$", r"\$")


def log_axis(ax, axis: str = "y") -> None:
    """Log scale with plain tick labels ("0.001", "1e-05"): mathtext labels are slow to draw."""
    getattr(ax, f"set_{axis}scale")("log")
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())


def color(i: int) -> str:
    """The colour of group ``i`` (tab10, cycling)."""
    return f"C{i % 10}"


def _groups(records: Sequence[RunRecord], labels: Sequence[str]) -> dict[str, list[RunRecord]]:
    groups: dict[str, list[RunRecord]] = {}
    for r, label in zip(records, labels):
        groups.setdefault(label, []).append(r)
    return groups


def band(
    series: Sequence[tuple[Sequence[int], Sequence[float]]], max_points: int = MAX_POINTS
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, mean, min, max) over seeds of several (steps, values) series.

    Non-finite values are left out; with more than ``max_points`` steps each seed is first
    averaged over equal windows of consecutive steps (the x of a window is its last step).
    """
    steps = np.array(sorted({int(s) for st, _ in series for s in st}), dtype=float)
    where = {int(s): i for i, s in enumerate(steps)}
    grid = np.full((len(series), len(steps)), np.nan)
    for row, (st, vals) in enumerate(series):
        for s, v in zip(st, vals):
            grid[row, where[int(s)]] = v
    grid[~np.isfinite(grid)] = np.nan
    if len(steps) > max_points:
        width = math.ceil(len(steps) / max_points)
        pad = (-len(steps)) % width
        grid = np.pad(grid, ((0, 0), (0, pad)), constant_values=np.nan)
        steps = np.pad(steps, (0, pad), mode="edge")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows stay NaN
            grid = np.nanmean(grid.reshape(len(series), -1, width), axis=2)
        steps = steps.reshape(-1, width)[:, -1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return steps, np.nanmean(grid, 0), np.nanmin(grid, 0), np.nanmax(grid, 0)


def _series(r: RunRecord, name: str) -> tuple[list[int], list[float]] | None:
    m = r.metrics.get(name)
    return (m.steps, m.values) if m is not None and m.steps else None


def kept_best(r: RunRecord) -> bool:
    """Did early stopping put the run's best weights back (``restore_best``, the default)?"""
    rule = str(r.config.extra.get("early_stopping") or "")
    return r.best_step is not None and "restore_best=false" not in rule


def monitored(r: RunRecord) -> str:
    """The metric a run's early stopping watched (``monitor=``; ``val_loss`` by default)."""
    rule = str(r.config.extra.get("early_stopping") or "")
    for part in rule.split(":", 1)[-1].split(","):
        key, _, value = part.partition("=")
        if key.strip() == "monitor" and value.strip():
            return value.strip()
    return "val_loss"


def metric_at(r: RunRecord, metric: str, step: int) -> float | None:
    """The value of ``metric`` recorded at ``step`` (the nearest recorded step), or None."""
    s = _series(r, metric)
    if s is None:
        return None
    i = min(range(len(s[0])), key=lambda k: abs(s[0][k] - step))
    v = float(s[1][i])
    return v if math.isfinite(v) else None


def _marks(ax, runs: Sequence[RunRecord], c: str, metrics: Sequence[str] = ()) -> set[str]:
    """Early-stop and divergence marks along the top/bottom edge of the axes; the kept best
    step as a star on the monitored metric's curve, at its value (when this figure draws
    that metric)."""
    used: set[str] = set()
    edge = ax.get_xaxis_transform()  # x in data units, y in axes fraction
    for r in runs:
        if r.stopped_step is not None:
            ax.plot(r.stopped_step, 1.0, "v", color=c, ms=7, transform=edge, clip_on=False)
            used.add("stop")
        if kept_best(r) and monitored(r) in metrics:
            y = metric_at(r, monitored(r), int(r.best_step))
            if y is not None:
                ax.plot(r.best_step, y, "*", color=c, ms=10, mec="k", mew=0.5, zorder=5)
                used.add("best")
        if r.diverged_step is not None:
            ax.plot(r.diverged_step, 0.03, "X", color=c, ms=7, transform=edge, clip_on=False)
            used.add("diverged")
    return used


_MARK_LEGEND = {
    "stop": Line2D([], [], color="0.3", marker="v", ls="", label="early stop"),
    "best": Line2D([], [], color="0.3", marker="*", ls="", label="best step (kept), at its value"),
    "diverged": Line2D([], [], color="0.3", marker="X", ls="", label="diverged"),
}


def curve_figure(
    records: Sequence[RunRecord],
    labels: Sequence[str],
    metrics: Sequence[str],
    title: str,
    ylabel: str,
) -> bytes | None:
    """SVG of ``metrics`` (e.g. train and val loss) per group: mean line, min-max band over
    seeds, early-stopping and divergence marks. None when no record has any of them."""
    groups = _groups(records, labels)
    present = [m for m in metrics if any(_series(r, m) for r in records)]
    if not present:
        return None
    with plot_style():
        fig = Figure(figsize=(7.5, 3.6))
        ax = fig.add_subplot()
        positive, marks = True, set()
        for i, runs in enumerate(groups.values()):
            c = color(i)
            for metric in present:
                series = [s for r in runs if (s := _series(r, metric)) is not None]
                if not series:
                    continue
                x, mean, lo, hi = band(series)
                ls = _STYLE.get(metric.split("_")[0], "-")
                ax.plot(x, mean, color=c, ls=ls, lw=1.4, marker="o" if len(x) == 1 else None)
                if len(series) > 1:
                    ax.fill_between(x, lo, hi, color=c, alpha=0.18, lw=0)
                finite = lo[np.isfinite(lo)]
                positive = positive and bool(finite.size) and bool((finite > 0).all())
            marks |= _marks(ax, runs, c, present)
        _maybe_log(ax, positive)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        handles = [
            Line2D([], [], color=color(i), lw=2, label=plain(g)) for i, g in enumerate(groups)
        ]
        handles += [
            Line2D([], [], color="0.3", ls=_STYLE.get(m.split("_")[0], "-"), label=m)
            for m in present
        ]
        handles += [_MARK_LEGEND[k] for k in ("stop", "best", "diverged") if k in marks]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        return svg_bytes(fig)


def _maybe_log(ax, positive: bool) -> None:
    # A diverging run's spike would flatten every other curve on a linear axis.
    lo, hi = ax.get_ylim()
    data = [ln.get_ydata() for ln in ax.get_lines() if len(ln.get_ydata()) > 1]
    vals = np.concatenate([np.asarray(d, dtype=float) for d in data]) if data else np.array([])
    vals = vals[np.isfinite(vals)]
    if positive and vals.size and vals.min() > 0 and vals.max() / vals.min() > 100:
        log_axis(ax)


def lr_figure(records: Sequence[RunRecord], labels: Sequence[str]) -> bytes | None:
    """SVG of the learning rate used at each step, one line per distinct schedule per group."""
    groups = _groups(records, labels)
    if not any(_series(r, "lr") for r in records):
        return None
    with plot_style():
        fig = Figure(figsize=(7.5, 2.6))
        ax = fig.add_subplot()
        values: list[float] = []
        for i, (label, runs) in enumerate(groups.items()):
            seen: set[tuple] = set()
            for r in runs:
                s = _series(r, "lr")
                if s is None or (key := (tuple(s[0]), tuple(s[1]))) in seen:
                    continue  # seeds sharing one schedule draw one line
                seen.add(key)
                ax.plot(
                    s[0],
                    s[1],
                    color=color(i),
                    lw=1.2,
                    label=plain(label) if len(seen) == 1 else None,
                )
                values.extend(v for v in s[1] if math.isfinite(v))
        if values and min(values) > 0 and max(values) / min(values) > 10:
            log_axis(ax)
        ax.set_title("Learning rate")
        ax.set_xlabel("step")
        ax.set_ylabel("lr")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        return svg_bytes(fig)
