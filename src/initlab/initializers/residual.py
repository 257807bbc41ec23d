"""Residual-aware schemes: a base scheme for every layer, then each residual branch scaled.

A residual stream adds one branch per block, so under He alone its variance grows with
depth (about 3x per block in a ReLU residual MLP). These schemes start from a formula scheme
(``base``) and change only what their papers change, on the blocks that
:mod:`initlab.initializers.residual_blocks` finds (fx tracing, PyTorch's transformer layers, or
``branches="glob|glob"``):

* ``zero_last_gamma`` (Goyal et al. 2017): the norm layer ending each branch gets gamma 0.
* ``fixup`` (Zhang et al. 2019): the last layer of each branch 0, the other branch layers
  scaled by ``L^(-1/(2m-2))`` (L branches, m layers in the branch), scalar multipliers 1 and
  scalar biases 0 where the model has them, and the classification layer 0.
* ``skipinit`` (De & Smith 2020): the scalar gate of each branch (``x + a * f(x)``) 0.
* ``gpt2_residual`` (Radford et al. 2019): N(0, std^2) everywhere, residual output projections
  (the last layer of each branch) divided by ``sqrt(2 * n_layers)``.

A parameter a user rule sets is left as the rule made it. ``report.extra["residual_blocks"]``
lists the blocks, and one note line names them. ``initlab.probe.variance_growth`` measures
the effect.

>>> import torch, initlab
>>> from initlab.models.residual import residual_mlp
>>> model = residual_mlp(depth=4, width=32)
>>> report = initlab.init_(model, "fixup", generator=torch.Generator().manual_seed(0))
>>> float(model.blocks[0].fc2.weight.detach().abs().max()), len(report.extra["residual_blocks"])
(0.0, 4)
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass

import torch
from torch import nn

from initlab.errors import InitSpecError
from initlab.initializers.apply import NORM_LAYERS, _parse_rules, init_, realized_std
from initlab.initializers.init_report import InitReport, InitRow
from initlab.initializers.registry import ModelProcedure, TensorScheme, get, register
from initlab.initializers.residual_blocks import Discovery, ResidualBlock, block_note
from initlab.initializers.residual_find import find_blocks
from initlab.initializers.simple import Normal


class _Edits:
    """Changes to parameters after the base init, mirrored in the report's rows."""

    def __init__(self, model: nn.Module, report: InitReport, rules, spec: str) -> None:
        self.model, self.report, self.spec = model, report, spec
        self.rule_globs = [pattern for pattern, _ in _parse_rules(rules)]
        self.kept_by_rule: list[str] = []

    def _ruled(self, name: str) -> bool:
        if any(fnmatch.fnmatchcase(name, g) for g in self.rule_globs):
            self.kept_by_rule.append(name)
            return True
        return False

    def _row(self, name: str) -> InitRow | None:
        return next((r for r in self.report.rows if r.name == name), None)

    def weights(self, layer: str) -> list[str]:
        """The weight matrices of one layer (MultiheadAttention's own: in_proj or q/k/v)."""
        module = self.model.get_submodule(layer)
        return [f"{layer}.{n}" for n, p in module.named_parameters(recurse=False)
                if n.endswith("weight") and p.dim() >= 2]  # fmt: skip

    def scale(self, name: str, factor: float) -> None:
        row = self._row(name)
        if row is None or self._ruled(name):
            return
        param = self.model.get_parameter(name)
        with torch.no_grad():
            param.mul_(factor)
        row.scheme = self.spec
        row.gain = None if row.gain is None else row.gain * factor
        row.target_std = None if row.target_std is None else row.target_std * factor
        row.realized_std = realized_std(param)

    def fill(self, name: str, value: float, *, new_row: bool = False) -> None:
        """Set a parameter to ``value``; ``new_row`` for parameters the base init skipped."""
        param = self.model.get_parameter(name)
        row = self._row(name)
        if self._ruled(name):
            return
        if row is None:
            if not new_row:
                return  # shared with a parameter filled under another name
            self.report.skipped = [s for s in self.report.skipped if s[0] != name]
            row = InitRow(name, list(param.shape), 1, 1, self.spec, None, 0.0, 0.0)
            self.report.rows.append(row)
        with torch.no_grad():
            param.fill_(value)
        row.scheme, row.gain, row.target_std = self.spec, 0.0 if value == 0 else row.gain, 0.0
        row.realized_std = realized_std(param)

    def finish(self, who: str) -> None:
        if self.kept_by_rule:
            self.report.notes.append(
                f"{who}: left as a rule set them: {', '.join(self.kept_by_rule)}"
            )


class _Residual(ModelProcedure):
    """Shared flow: find blocks, check them, base init, then the scheme's edits."""

    formula = ""

    def _base(self) -> TensorScheme:
        return get(self.base)  # type: ignore[attr-defined]

    def _check_base(self) -> None:
        if isinstance(get(self.base), ModelProcedure):  # type: ignore[attr-defined]
            raise InitSpecError(
                f"'{self.name}' base={self.base!r} must be a formula scheme such as "  # type: ignore[attr-defined]
                "he_normal, not a model-level one."
            )

    def _check(self, found: Discovery) -> None:
        """Raise when the scheme has nothing to act on (before anything is drawn)."""

    def _edit(self, found: Discovery, edits: _Edits, report: InitReport) -> None:
        raise NotImplementedError

    def apply(
        self, model: nn.Module, *, data=None, generator: torch.Generator, bias=None,
        rules=None, example_input=None,
    ) -> InitReport:  # fmt: skip
        """Base init from ``generator``, then this scheme's changes to the residual blocks."""
        found = find_blocks(model, getattr(self, "branches", ""), example_input)
        if not found.blocks:
            raise InitSpecError(
                f"'{self.name}' found no residual block (x + f(x)) in {type(model).__name__} "
                f"({found.method}); name the branch modules with "
                f"'{self.name}:branches=GLOB' or use a plain scheme."
            )
        self._check(found)
        base = self._base()
        report = init_(model, base, generator=generator, bias=bias, rules=rules,
                       example_input=example_input)  # fmt: skip
        if data is not None:
            report.notes.append(f"{self.name}: data= is not used by this scheme")
        report.notes.extend(found.notes)
        report.notes.append(block_note(found))
        report.extra["residual_blocks"] = [b.to_dict() for b in found.blocks]
        edits = _Edits(model, report, rules, self.to_spec())
        self._edit(found, edits, report)
        edits.finish(self.name)
        return report


def _skipped_blocks(blocks: list[ResidualBlock], what: str) -> str:
    return f"{len(blocks)} block(s) without {what} left at the base init: " + ", ".join(
        b.name for b in blocks
    )


@dataclass(frozen=True)
class _OnBase(_Residual):
    """A residual scheme that starts from a formula scheme ``base`` (checked on creation)."""

    base: str = "he_normal"
    branches: str = ""

    def __post_init__(self) -> None:
        self._check_base()


@register("zero_last_gamma", aliases=("zero_init_residual",))
@dataclass(frozen=True)
class ZeroLastGamma(_OnBase):
    """``base`` everywhere, then gamma 0 in the norm layer that ends each residual branch,
    so every block starts as the identity (Goyal et al. 2017; torchvision's
    ``zero_init_residual``)."""

    formula = "base init; gamma = 0 in the norm layer ending each residual branch"

    def _check(self, found):
        if not any(b.norm for b in found.blocks):
            raise InitSpecError(
                f"'zero_last_gamma' needs residual branches that end in a norm layer; none of "
                f"the {len(found.blocks)} block(s) found does ({found.method}). Pre-norm "
                "branches (GPT-2, Llama) start with their norm and post-norm layers (BERT) "
                "normalize the sum x + f(x), so neither has a gamma that silences a branch; "
                "use 'fixup' or 'gpt2_residual' there."
            )

    def _edit(self, found, edits, report):
        modules = dict(edits.model.named_modules())
        for block in found.blocks:
            if block.norm and getattr(modules[block.norm], "weight", None) is None:
                raise InitSpecError(
                    f"'zero_last_gamma': norm layer {block.norm} has no gamma (affine=False)."
                )
            if block.norm:
                edits.fill(f"{block.norm}.weight", 0.0)
        rest = [b for b in found.blocks if not b.norm]
        if rest:
            report.notes.append("zero_last_gamma: " + _skipped_blocks(rest, "a closing norm"))


@register("fixup")
@dataclass(frozen=True)
class Fixup(_OnBase):
    """Fixup (Zhang et al. 2019) for networks without normalization."""

    formula = "base init; branch layers x L^(-1/(2m-2)), last branch layer 0, classifier 0"
    zero_head: bool = True  # Fixup rule 1: the classification layer starts at zero

    def _edit(self, found, edits, report):
        n_branches = len(found.blocks)
        factors = []
        for block in found.blocks:
            m = len(block.layers)
            factor = n_branches ** (-1.0 / (2 * m - 2)) if m > 1 else 1.0
            factors.append(factor)
            for layer in block.layers[:-1]:
                for name in edits.weights(layer):
                    edits.scale(name, factor)
            for name in edits.weights(block.last_layer):
                edits.fill(name, 0.0)
            for name in block.multipliers:
                edits.fill(name, 1.0, new_row=True)
            for name in block.biases:
                edits.fill(name, 0.0, new_row=True)
        report.notes.append(
            f"fixup: L = {n_branches} branches; branch layers scaled by "
            f"{min(factors):.4g}..{max(factors):.4g}, last layer of each branch zero"
        )
        norms = sum(isinstance(m, NORM_LAYERS) for m in edits.model.modules())
        if norms:  # allowed (the branches still start at zero), but not what Fixup replaces
            report.notes.append(f"fixup: the model has {norms} normalization layer(s); Fixup is "
                                "meant for networks without normalization")  # fmt: skip
        self._head(found, edits, report)

    def _head(self, found, edits, report) -> None:
        if not self.zero_head or not found.order:
            return
        head = found.order[-1]
        in_blocks = {name for b in found.blocks for name in b.layers + b.shortcut}
        if head in in_blocks:
            report.notes.append(f"fixup: the last layer {head} is in a residual branch; no "
                                "classification layer zeroed")  # fmt: skip
            return
        how = "in forward order" if found.forward_order else "declared"
        weights = edits.weights(head)
        if any(edits._row(name) is None for name in weights):  # a tied weight: not its own row
            report.notes.append(f"fixup: the last layer {head} ({how}) shares its weight with "
                                "another layer (tied embeddings); not zeroed")  # fmt: skip
            return
        for name in weights:
            edits.fill(name, 0.0)
        report.notes.append(f"fixup: classification layer {head} (last {how}) zeroed")


@register("skipinit")
@dataclass(frozen=True)
class SkipInit(_OnBase):
    """SkipInit (De & Smith 2020): ``base`` everywhere, the scalar gate ``a`` of each branch
    ``x + a * f(x)`` set to 0. The model must provide the gate (an ``nn.Parameter``)."""

    formula = "base init; the scalar gate of each residual branch = 0"

    def _check(self, found):
        if not any(b.gate for b in found.blocks):
            raise InitSpecError(
                f"'skipinit' needs a gate parameter on the residual branches (x + a * f(x), "
                f"a an nn.Parameter); none of the {len(found.blocks)} block(s) has one. Build "
                "the model with one (residual_mlp(..., gate=True)) or use 'fixup'."
            )

    def _edit(self, found, edits, report):
        for block in found.blocks:
            if block.gate:
                edits.fill(block.gate, 0.0, new_row=True)
        rest = [b for b in found.blocks if not b.gate]
        if rest:
            report.notes.append("skipinit: " + _skipped_blocks(rest, "a gate"))


@register("gpt2_residual", aliases=("gpt2",))
@dataclass(frozen=True)
class GPT2Residual(_Residual):
    """GPT-2: every weight N(0, std^2) (embeddings too), biases 0, norms 1/0, and each residual
    output projection (last layer of a branch) divided by ``sqrt(2 * n_layers)``.
    ``n_layers=0`` counts the branches found instead (two per transformer layer)."""

    formula = "N(0, std^2); residual output projections N(0, std^2 / (2 n_layers))"
    std: float = 0.02
    n_layers: int = 0
    branches: str = ""

    def __post_init__(self) -> None:
        if not (self.std > 0 and math.isfinite(self.std)) or self.n_layers < 0:
            raise InitSpecError(
                f"'gpt2_residual' needs std > 0 and n_layers >= 0, got std={self.std}, "
                f"n_layers={self.n_layers}."
            )

    def _base(self) -> TensorScheme:
        return Normal(std=self.std)

    def _edit(self, found, edits, report):
        count = 2 * self.n_layers if self.n_layers else len(found.blocks)
        factor = 1.0 / math.sqrt(count)
        for block in found.blocks:
            for name in edits.weights(block.last_layer):
                edits.scale(name, factor)
        source = f"n_layers={self.n_layers}" if self.n_layers else f"{count} branches found"
        report.notes.append(
            f"gpt2_residual: residual output projections std {self.std} / sqrt({count}) = "
            f"{self.std * factor:.4g} ({source})"
        )
