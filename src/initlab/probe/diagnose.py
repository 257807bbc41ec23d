"""Rules that turn probe numbers into one-line findings naming a layer and a fix.

Works on the plain :class:`~initlab.results.probe_records.ProbeRecord` only, so a stored
record can be diagnosed again without torch. Each rule reports once, naming the first (or
worst) layer it fired on and how many layers it concerns; an empty list means no warning.
Layers are named as the histogram panels name them, 1-based ("layer 3 (tanh)", see
``layer_labels``); ``Finding.layer`` keeps the module name. ``healthy(record)`` gives the
good half: one line per check that passed.
"""

from __future__ import annotations

import math
from collections import Counter

from initlab.results.probe_records import (
    Finding,
    LayerStats,
    ProbeRecord,
    healthy,
    layer_labels,
)

__all__ = ["RULES", "diagnose", "growth_per_layer", "healthy", "hidden_layers", "layer_labels"]

SATURATED = 0.25  # a quarter of the outputs pass (almost) no gradient
COLLAPSED = 0.05  # std below 5% of the output range (or of |mean| when unbounded)
DEAD_UNITS = 0.10  # a tenth of the ReLU units never fire on any probed example
GROWTH = 0.9  # per-layer std factor below 0.9 (or above 1/0.9) ...
CHANGE = 0.5  # ... that adds up to a factor below 0.5 (or above 2) over the stack
GRAD_RATIO = 0.01  # first/last weight-gradient norm beyond 100x either way
SYMMETRIC_SPREAD = 1e-6  # within-example variance across units, relative to the total
_BOUNDED = {"sigmoid": 1.0, "tanh": 2.0, "hardtanh": 2.0, "softsign": 2.0}


def _act_name(layer: LayerStats) -> str:
    return (layer.activation or "").split(":", 1)[0]


def _name(record: ProbeRecord, layer: LayerStats) -> str:
    return layer_labels(record).get(layer.name, f"layer '{layer.name}'")


def _wname(record: ProbeRecord, module: str) -> str:
    return layer_labels(record).get(module, f"'{module}'")


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _main_activation(record: ProbeRecord) -> str:
    names = Counter(_act_name(x) for x in record.of_kind("activation"))
    return names.most_common(1)[0][0] if names else ""


def _variance_fix(act: str) -> str:
    if act in ("relu", "relu6", "leaky_relu"):
        return "he_normal (or 'auto', which picks the gain for any activation)."
    if act:
        return f"'auto' (the variance-preserving gain for {act})."
    return "'auto' (variance-preserving gain for the activation that follows each layer)."


def _saturated(record: ProbeRecord) -> list[Finding]:
    hits = [x for x in record.of_kind("activation")
            if x.saturation is not None and x.saturation > SATURATED]  # fmt: skip
    if not hits:
        return []
    worst = max(hits, key=lambda x: x.saturation or 0.0)
    n = sum(1 for x in record.of_kind("activation") if x.saturation is not None)
    return [Finding(
        "saturated", worst.name,
        f"{len(hits)} of {n} {_act_name(worst)} layers have over {SATURATED:.0%} of outputs "
        f"within 0.01 of a bound ({_name(record, worst)}: {worst.saturation:.0%}); gradients "
        "through them vanish.",
        "smaller weights: xavier_normal, lecun_normal or 'auto'.",
    )]  # fmt: skip


def _collapsed(record: ProbeRecord) -> list[Finding]:
    hits = []
    for x in record.of_kind("activation"):
        if not (_finite(x.std) and _finite(x.mean)):
            continue
        width = _BOUNDED.get(_act_name(x))
        scale = width if width is not None else abs(x.mean)
        dead = x.dead_units is not None and x.dead_units >= 1.0
        if not dead and (x.std == 0 or x.std < COLLAPSED * scale):
            hits.append(x)
    if not hits:
        return []
    worst = min(hits, key=lambda x: x.std / max(_BOUNDED.get(_act_name(x), abs(x.mean)), 1e-30))
    return [Finding(
        "collapsed", worst.name,
        f"{_name(record, worst)} outputs sit at {worst.mean:.3g} with std "
        f"{worst.std:.2g} ({len(hits)} layers below {COLLAPSED:.0%} of their scale): units "
        "barely respond to the input.",
        "larger weights: xavier_normal, lecun_normal or 'auto' instead of a tiny std.",
    )]  # fmt: skip


def _dead(record: ProbeRecord) -> list[Finding]:
    hits = [x for x in record.layers if x.dead_units is not None and x.dead_units > DEAD_UNITS]
    if not hits:
        return []
    worst = max(hits, key=lambda x: x.dead_units or 0.0)
    return [Finding(
        "dead", worst.name,
        f"{_name(record, worst)}: {worst.dead_units:.0%} of ReLU units never fire on "
        f"{record.samples} examples ({len(hits)} layers with over {DEAD_UNITS:.0%} dead).",
        "he_normal, a small positive bias, or leaky_relu.",
    )]  # fmt: skip


def growth_per_layer(stds: list[float]) -> float:
    """exp of the least-squares slope of log std over layers, skipping the first layer when
    there are three or more (the raw input's scale is not a hidden layer's)."""
    ys = [math.log(max(s, 1e-30)) for s in stds]
    if len(ys) >= 3:
        ys = ys[1:]
    n = len(ys)
    if n < 2:
        return 1.0
    xbar, ybar = (n - 1) / 2.0, sum(ys) / n
    num = sum((i - xbar) * (y - ybar) for i, y in enumerate(ys))
    den = sum((i - xbar) ** 2 for i in range(n))
    return math.exp(num / den)


def hidden_layers(record: ProbeRecord) -> list[LayerStats]:
    """Weight-layer outputs that feed an activation: the signal the std-growth rule follows.
    A readout layer (nothing after it) is left out: its init targets a different scale."""
    layers = record.layers
    return [x for x, nxt in zip(layers, layers[1:], strict=False)
            if x.kind in ("linear", "conv") and nxt.kind == "activation"]  # fmt: skip


def _signal(record: ProbeRecord) -> list[Finding]:
    broken = [x for x in record.layers if x.nonfinite]
    if broken:
        x = broken[0]
        return [Finding(
            "exploding", x.name,
            f"{_name(record, x)} produced {x.nonfinite} NaN/inf values.",
            f"smaller weights: {_variance_fix(_main_activation(record))}",
        )]  # fmt: skip
    chain = hidden_layers(record)
    if len(chain) < 2:
        chain = record.of_kind("activation")
    chain = [x for x in chain if _finite(x.std)]
    if len(chain) < 2:
        return []
    g = growth_per_layer([x.std for x in chain])
    change = g ** (len(chain) - 1)
    fix = _variance_fix(_main_activation(record))
    where = f"{_name(record, chain[0])} to {_name(record, chain[-1])}"
    if g < GROWTH and change < CHANGE:
        return [Finding(
            "vanishing", chain[-1].name,
            f"the std shrinks about x{g:.2f} per layer (x{change:.2g} from {where}); deep "
            "layers see almost no signal.", fix,
        )]  # fmt: skip
    if g > 1 / GROWTH and change > 1 / CHANGE:
        return [Finding(
            "exploding", chain[-1].name,
            f"the std grows about x{g:.2f} per layer (x{change:.2g} from {where}).", fix,
        )]  # fmt: skip
    return []


def _symmetric(record: ProbeRecord) -> list[Finding]:
    for x in record.layers:
        if x.weight_rows_identical:
            return [Finding(
                "symmetric", x.name,
                f"{_name(record, x)} has identical weight rows: its units compute the same "
                "function and get the same gradient, so they can never differ.",
                "a random init (he_normal, xavier_normal, 'auto'); constants suit only biases.",
            )]  # fmt: skip
    for x in record.layers:
        if x.unit_spread is not None and x.unit_spread < SYMMETRIC_SPREAD and x.std > 0:
            return [Finding(
                "symmetric", x.name,
                f"every unit of {_name(record, x)} outputs the same value on each example "
                "(symmetric weights upstream), so the units cannot differ.",
                "a random init (he_normal, xavier_normal, 'auto').",
            )]  # fmt: skip
    return []


def _gradients(record: ProbeRecord) -> list[Finding]:
    grads = [g for g in record.weight_grads if _finite(g.norm)]
    if len(grads) < 2 or grads[-1].norm <= 0:
        return []
    first, last = grads[0], grads[-1]
    ratio = first.norm / last.norm
    fix = _variance_fix(_main_activation(record))
    if ratio < GRAD_RATIO:
        return [Finding(
            "vanishing gradients", first.layer,
            f"the weight-gradient norm of {_wname(record, first.layer)} is x{ratio:.2g} that "
            f"of {_wname(record, last.layer)}: early layers barely learn.", fix,
        )]  # fmt: skip
    if ratio > 1 / GRAD_RATIO:
        return [Finding(
            "exploding gradients", first.layer,
            f"the weight-gradient norm of {_wname(record, first.layer)} is x{ratio:.2g} that "
            f"of {_wname(record, last.layer)}.", fix,
        )]  # fmt: skip
    return []


RULES = (_symmetric, _saturated, _collapsed, _dead, _signal, _gradients)


def diagnose(record: ProbeRecord) -> list[Finding]:
    """All findings for one probe record, most fundamental first (empty: nothing wrong).

    >>> diagnose(ProbeRecord())
    []
    """
    findings: list[Finding] = []
    for rule in RULES:
        findings.extend(rule(record))
    return findings
