"""The preset registry: a preset is a small function registered under a name.

It takes the run folder and a ``quick`` flag (the short version ``make demo`` runs) and
returns what it produced. The modules that define presets (``presets_classic``,
``presets_training``, ``presets_width``) import this one; :mod:`initlab.experiments.presets`
imports them all, so go through it for the complete list.

What a preset prints about its run comes from the config it ran (:func:`describe`), never
from a description written beside the code; what it claims to show is a :class:`Lesson`
computed from the summaries (:func:`lesson`): shown only when the 95% CIs do not overlap.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from initlab.errors import ConfigError
from initlab.experiments.config import CompareConfig
from initlab.registry import Registry
from initlab.results.records import InitSummary, Stat
from initlab.results.summary import cis_overlap, format_stat


@dataclass(frozen=True)
class Preset:
    """A registered preset: its name, the one-line summary ``initlab run --list`` shows, the
    function that runs it, and whether ``make demo`` runs its quick version."""

    name: str
    summary: str
    run: Callable[..., Any]
    in_demo: bool = True


PRESETS = Registry("preset", error=ConfigError)  # name -> Preset


def preset(name: str, summary: str, in_demo: bool = True):
    """Decorator: register ``fn(out: Path, quick: bool, progress) -> result`` as a preset."""

    def wrap(fn):
        PRESETS.register(name, Preset(name, summary, fn, in_demo))
        return fn

    return wrap


def names(pattern: str | None = None) -> list[str]:
    """The preset names, sorted; a glob ``pattern`` keeps those it matches.

    >>> import initlab.experiments.presets  # registers every preset
    >>> names("lr-*")
    ['lr-schedules']
    """
    return PRESETS.names(pattern)


def presets(pattern: str | None = None) -> list[Preset]:
    """Every registered preset (or those whose names match the glob ``pattern``), sorted by
    name."""
    return [PRESETS[n] for n in PRESETS.names(pattern)]


def get_preset(name: str) -> Preset:
    """The preset called ``name``; a ConfigError with the closest names when there is none."""
    return PRESETS.entry(name)


def run_preset(
    name: str,
    out: str | Path | None = None,
    *,
    quick: bool = False,
    progress=None,
    dataset: str | None = None,
):
    """Run a preset into ``out`` (default ``runs/NAME``, ``runs/NAME-quick`` when quick).

    ``dataset`` replaces the preset's dataset, for presets that take one."""
    p = get_preset(name)
    folder = Path(out) if out else Path("runs") / (f"{name}-quick" if quick else name)
    options = {}
    if dataset is not None:
        if "dataset" not in inspect.signature(p.run).parameters:
            raise ConfigError(f"Preset '{name}' has a fixed dataset; drop --dataset.")
        options["dataset"] = dataset
    return p.run(folder, quick=quick, progress=progress, **options)


@dataclass
class MultiResult:
    """Several comparisons of one preset, plus plain-text lines printed first (what ran,
    notes about the folder, the lessons), and the lessons themselves."""

    run_dir: Path
    parts: list
    lines: list[str]
    lessons: list[Lesson] = field(default_factory=list)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def describe(config: dict[str, Any] | CompareConfig, train_size: int | None = None) -> str:
    """One line saying what a comparison runs, from its (resolved) config: dataset, model,
    optimizer, steps (and epochs when ``train_size`` is given), seeds, the non-default
    controls and the inits.

    >>> text = describe(dict(dataset="mnist", arch="mlp:100x4", inits="lecun_normal,he_normal",
    ...                      seeds=3, steps=500, eval_every=250), train_size=55_000)
    >>> text.split(", ")[:5]
    ['mnist', 'mlp:100x4 relu', 'sgd lr 0.01', 'batch 128', '500 steps (1.2 epochs of 55,000)']
    >>> text.split(", ", 5)[5]
    'eval every 250 steps, 3 seeds (0-2): lecun_normal vs he_normal'
    """
    if not isinstance(config, CompareConfig):
        config = CompareConfig(
            **{k: v for k, v in config.items() if k in CompareConfig.model_fields}
        )
    c = config
    steps = _plural(c.steps, "step")
    if train_size:
        steps += f" ({c.steps * c.batch_size / train_size:.2g} epochs of {train_size:,})"
    seeds = _plural(c.seeds, "seed") + (f" (0-{c.seeds - 1})" if c.seeds > 1 else " (0)")
    parts = [
        c.dataset,
        f"{c.model_arch()} {c.activation}",
        f"{c.optimizer} lr {c.lr:g}",
        f"batch {c.batch_size}",
        steps,
        f"eval every {_plural(c.eval_every, 'step')}",
    ]
    defaults = CompareConfig()
    for key in ("schedule", "l1", "l2", "weight_decay", "activity_l1", "activity_l2",
                "early_stopping"):  # fmt: skip
        value = getattr(c, key)
        if value != getattr(defaults, key):
            parts.append(f"{key} {value}")
    parts.append(seeds)
    return ", ".join(parts) + ": " + " vs ".join(c.inits)


@dataclass(frozen=True)
class Lesson:
    """A claim a preset sets out to show and whether its run shows it: ``shown`` is True when
    the better group's mean is better and the two 95% CIs do not overlap, False when they
    overlap or the order is reversed, None when a group lacks a CI (one seed) or a value."""

    claim: str
    text: str  # the claim, both groups' mean ± 95% CI, and the outcome
    shown: bool | None


_METRICS = {  # metric -> (words, higher is better)
    "test_accuracy": ("test accuracy", True),
    "final_train_loss": ("final train loss", False),
    "val_loss": ("final val loss", False),
}


def _find(summaries: Sequence[InitSummary], label: str) -> InitSummary:
    for s in summaries:
        if s.init == label:
            return s
    raise ConfigError(f"No group '{label}' in {[s.init for s in summaries]}.")


def lesson(
    claim: str,
    summaries: Sequence[InitSummary],
    better: str,
    worse: str,
    metric: str = "test_accuracy",
    names: tuple[str, str] | None = None,
) -> Lesson:
    """Whether the group ``better`` beats ``worse`` on ``metric`` with 95% CIs that do not
    overlap; ``names`` replaces the group labels in the text."""
    words, higher = _METRICS[metric]
    a, b = _find(summaries, better), _find(summaries, worse)
    return compare_stats(claim, words, higher, (names or (better, worse)),
                         getattr(a, metric), getattr(b, metric), (a.seeds, b.seeds))  # fmt: skip


def compare_stats(
    claim: str,
    words: str,
    higher: bool,
    names: tuple[str, str],
    a: Stat | None,
    b: Stat | None,
    seeds: tuple[int, int],
    digits: int = 4,
) -> Lesson:
    """The :class:`Lesson` of two Stats (``a`` should be the better one): ``shown`` when its
    mean is better and the 95% CIs do not overlap.

    >>> from initlab.results.summary import stat
    >>> compare_stats("He beats LeCun", "test accuracy", True, ("he", "lecun"),
    ...               stat([0.90, 0.91, 0.92]), stat([0.80, 0.82, 0.81]), (3, 3)).shown
    True
    """
    head = (
        f"{claim}: {names[0]} {words} {format_stat(a, digits)} vs {names[1]} "
        f"{format_stat(b, digits)} (mean ± 95% CI, {seeds[0]} and {seeds[1]} seeds)"
    )
    if a is None or b is None or not (math.isfinite(a.mean) and math.isfinite(b.mean)):
        return Lesson(claim, head + ": a value is missing, so this run does not show it.", None)
    if (a.mean > b.mean) != higher or a.mean == b.mean:
        return Lesson(claim, head + ": the order is reversed, so this run does not show it.", False)
    overlap = cis_overlap(a, b)
    if overlap is None:
        return Lesson(claim, head + ": with one seed there is no CI, so this run does not "
                      "establish it.", None)  # fmt: skip
    if overlap:
        return Lesson(claim, head + ": the CIs overlap, so this run does not establish it.", False)
    return Lesson(claim, head + ": the CIs do not overlap, so this run shows it.", True)
