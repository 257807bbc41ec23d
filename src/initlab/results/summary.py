"""Aggregate runs over seeds: mean, std and 95% confidence interval (Student's t) per init.

Rule used everywhere: ``Stat.values`` lists every seed's value in seed order (NaN where a run
has none, e.g. it diverged or never reached the target loss); mean, std and CI are computed
over the finite values only, and the ``diverged`` count sits beside them so a reader sees
how many seeds the numbers rest on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from initlab.results.records import InitSummary, RunRecord, Stat
from initlab.results.tdist import t_ppf

CONFIDENCE = 0.95


def stat(values: Sequence[float | None]) -> Stat:
    """Mean, sample std (ddof=1) and 95% CI half-width ``t(0.975, n-1) * std / sqrt(n)``.

    With fewer than two finite values std and CI are NaN: one seed gives no interval.

    >>> s = stat([1.0, 2.0, 3.0])
    >>> (s.mean, s.std, round(s.ci95, 6))
    (2.0, 1.0, 2.484138)
    """
    all_values = [math.nan if v is None else float(v) for v in values]
    finite = [v for v in all_values if math.isfinite(v)]
    n = len(finite)
    mean = math.fsum(finite) / n if n else math.nan
    if n < 2:
        return Stat(mean=mean, std=math.nan, ci95=math.nan, values=all_values)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1))
    half = 0.5 + CONFIDENCE / 2.0
    ci95 = t_ppf(half, n - 1) * std / math.sqrt(n)
    return Stat(mean=mean, std=std, ci95=ci95, values=all_values)


def summarize(
    records: Iterable[RunRecord], labels: Sequence[str] | None = None
) -> list[InitSummary]:
    """One :class:`InitSummary` per init, in order of first appearance; seeds sorted inside.

    ``labels`` (one per record, e.g. from :func:`initlab.results.grouping.group_labels`)
    groups by label instead of by init spec; the summary's ``init`` field holds the label.

    >>> from initlab.results.records import RunRecord
    >>> from initlab.runspec import RunSpec
    >>> cfg = RunSpec("digits", "mlp:32x2", "relu", "he_normal", 0, "sgd", 0.1, 32, 10)
    >>> [s.init for s in summarize([RunRecord(cfg, test_accuracy=0.9)])]
    ['he_normal']
    """
    records = list(records)
    if labels is None:
        labels = [r.config.init for r in records]
    elif len(labels) != len(records):
        raise ValueError(f"got {len(labels)} labels for {len(records)} records")
    groups: dict[str, list[RunRecord]] = {}
    for record, label in zip(records, labels):
        groups.setdefault(label, []).append(record)
    out = []
    for init, runs in groups.items():
        runs = sorted(runs, key=lambda r: r.config.seed)
        steps = [None if r.steps_to_target is None else float(r.steps_to_target) for r in runs]
        steps_stat = stat(steps) if any(s is not None for s in steps) else None
        out.append(
            InitSummary(
                init=init,
                seeds=len(runs),
                final_train_loss=stat([r.final_train_loss for r in runs]),
                test_accuracy=stat([r.test_accuracy for r in runs]),
                steps_to_target=steps_stat,
                diverged=sum(_is_diverged(r) for r in runs),
                val_loss=_optional_stat([r.val_loss for r in runs]),
                stopped=sum(r.status == "stopped" for r in runs),
            )
        )
    return out


def _optional_stat(values: list[float]) -> Stat | None:
    """A Stat, or None when no run has the value (e.g. records from before it existed)."""
    return stat(values) if any(math.isfinite(v) for v in values) else None


def _is_diverged(record: RunRecord) -> bool:
    return record.status == "diverged" or record.diverged_step is not None


def _json_number(x: float) -> float | None:
    # Strict JSON has no NaN or Infinity; scripts get null for "no value".
    return float(x) if math.isfinite(x) else None


def _stat_json(s: Stat) -> dict[str, Any]:
    return {
        "mean": _json_number(s.mean),
        "ci95": _json_number(s.ci95),
        "values": [_json_number(v) for v in s.values],
    }


def summary_json(summaries: Sequence[InitSummary]) -> dict[str, Any]:
    """The ``summary.json`` payload: ``{"inits": [one entry per init]}``.

    Each entry: ``init``, ``seeds``, ``final_train_loss``, ``test_accuracy`` and
    ``val_loss`` (each ``{"mean", "ci95", "values"}``, null where a value is missing),
    ``diverged`` and ``stopped`` (counts; stopped = ended by early stopping).
    """
    return {
        "inits": [
            {
                "init": s.init,
                "seeds": s.seeds,
                "final_train_loss": _stat_json(s.final_train_loss),
                "test_accuracy": _stat_json(s.test_accuracy),
                "val_loss": _stat_json(s.val_loss or stat([])),
                "diverged": s.diverged,
                "stopped": s.stopped,
            }
            for s in summaries
        ]
    }


def summary_from_dict(d: dict[str, Any]) -> InitSummary:
    """Rebuild an :class:`InitSummary` from ``InitSummary.to_dict()`` output."""
    steps = d.get("steps_to_target")
    return InitSummary(
        init=d["init"],
        seeds=int(d["seeds"]),
        final_train_loss=Stat(**d["final_train_loss"]),
        test_accuracy=Stat(**d["test_accuracy"]),
        steps_to_target=None if steps is None else Stat(**steps),
        diverged=int(d["diverged"]),
        val_loss=None if d.get("val_loss") is None else Stat(**d["val_loss"]),
        stopped=int(d.get("stopped", 0)),
    )


def format_stat(s: Stat | None, digits: int = 4) -> str:
    """``"0.9340 ± 0.0021"``; ``"—"`` when there is no value, no ``±`` part with one seed."""
    if s is None or not math.isfinite(s.mean):
        return "—"
    if not math.isfinite(s.ci95):
        return f"{s.mean:.{digits}f}"
    return f"{s.mean:.{digits}f} ± {s.ci95:.{digits}f}"


def cis_overlap(a: Stat, b: Stat) -> bool | None:
    """Whether the 95% intervals of two means overlap; None when either has no interval."""
    if not (math.isfinite(a.ci95) and math.isfinite(b.ci95)):
        return None
    return a.mean - a.ci95 <= b.mean + b.ci95 and b.mean - b.ci95 <= a.mean + a.ci95


def verdict(summaries: Sequence[InitSummary]) -> str:
    """One sentence: the init with the best mean test accuracy, its margin over the runner-up,
    and whether their 95% CIs overlap (if they do, the difference is not established).

    The rule is deliberately conservative: overlapping intervals can hide a real difference,
    but non-overlapping ones cannot come from noise at the 95% level.
    """
    ranked = sorted(
        (s for s in summaries if math.isfinite(s.test_accuracy.mean)),
        key=lambda s: -s.test_accuracy.mean,
    )
    if not ranked:
        return "No run has a test accuracy yet, so there is no verdict."
    best = ranked[0]
    best_text = f"{best.init} has the best mean test accuracy ({format_stat(best.test_accuracy)}"
    best_text += _seeds_note(best) + ")"
    if len(ranked) == 1:
        return best_text + "; it is the only init with a test accuracy, so nothing to compare."
    runner = ranked[1]
    margin = best.test_accuracy.mean - runner.test_accuracy.mean
    head = (
        f"{best_text}, {margin:.4f} above the runner-up {runner.init} "
        f"({format_stat(runner.test_accuracy)}{_seeds_note(runner)})"
    )
    overlap = cis_overlap(best.test_accuracy, runner.test_accuracy)
    if overlap is None:
        return (
            head
            + "; with fewer than two seeds there is no 95% CI, so the difference is not established."
        )
    if overlap:
        return head + "; their 95% CIs overlap, so the difference is not established."
    return head + "; their 95% CIs do not overlap."


def _seeds_note(s: InitSummary) -> str:
    n = sum(math.isfinite(v) for v in s.test_accuracy.values)
    note = f", {n} seed{'s' if n != 1 else ''}"
    if s.diverged:
        note += f", {s.diverged} diverged"
    return note
