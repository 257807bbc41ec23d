"""Name the groups of runs a comparison shows: the init, plus whatever else differs.

Runs of one experiment usually differ only in init and seed, and the group is the init spec.
Presets such as ``regularization`` vary other settings under one init; grouping those by
init alone would pool different experiments, so the label names the differing settings too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from initlab.results.records import RunRecord

_NOT_A_VARIANT = ("init", "seed")


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as one level; ``extra``'s keys (schedule, l2, ...) keep their own
    names, and an empty ``extra`` adds nothing (a run without those settings)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, "" if k == "extra" else f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _show(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True)


def group_labels(records: Sequence[RunRecord]) -> list[str]:
    """One label per record: its init spec, with ``[key=value, ...]`` appended for every
    config setting (other than init and seed) that is not the same across all records.

    >>> from initlab.runspec import RunSpec
    >>> a = RunRecord(RunSpec("digits", "mlp:8", "relu", "he_normal", 0, "sgd", 0.1, 8, 5))
    >>> b = RunRecord(RunSpec("digits", "mlp:8", "relu", "he_normal", 0, "sgd", 0.5, 8, 5))
    >>> group_labels([a, b])
    ['he_normal [lr=0.1]', 'he_normal [lr=0.5]']
    """
    flat = [_flatten(r.config.to_dict()) for r in records]
    keys: list[str] = []
    for f in flat:
        keys.extend(k for k in f if k not in keys)
    varying = [
        k for k in keys if k not in _NOT_A_VARIANT and len({_show(f.get(k)) for f in flat}) > 1
    ]
    labels = []
    for r, f in zip(records, flat):
        # a setting at its defaults reads as its bare name ("early_stopping", not "=early_stopping")
        parts = [k if _show(f[k]) == k else f"{k}={_show(f[k])}" for k in varying if k in f]
        labels.append(f"{r.config.init} [{', '.join(parts)}]" if parts else r.config.init)
    return labels
