"""Presets: the classic initialization experiments, one command each.

A preset is a small function registered under a name; it takes the run folder and a
``quick`` flag (the short version ``make demo`` runs) and returns what it produced.
``initlab run --list`` prints them; ``initlab run NAME`` runs one.

This module only assembles: the registry lives in :mod:`~initlab.experiments.preset_registry`
and the presets in the modules that import it (``presets_classic``: the init comparisons
and histograms; ``presets_deep``: DBN pretraining and residual depth; ``presets_training``:
regularization and lr schedules; ``presets_width``: width transfer; ``presets_chaos``: the
edge of chaos), each registering its presets on import.
"""

from __future__ import annotations

from initlab.experiments import (  # noqa: F401
    presets_chaos,  # noqa: F401  (edge of chaos)
    presets_classic,
    presets_deep,  # noqa: F401  (DBN pretraining, residual depth: after the classic ones)
    presets_training,
    presets_width,
)
from initlab.experiments.preset_registry import (
    MultiResult,
    Preset,
    get_preset,
    preset,
    presets,
    run_preset,
)
from initlab.experiments.presets_classic import HistogramResult

__all__ = [
    "HistogramResult",
    "MultiResult",
    "Preset",
    "get_preset",
    "preset",
    "presets",
    "run_preset",
]
