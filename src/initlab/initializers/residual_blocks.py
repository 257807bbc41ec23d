"""Residual blocks: where a branch's output is added back onto its input, ``x + f(x)``.

The records (:class:`ResidualBlock`, :class:`Discovery`), the torch.fx graph analysis, PyTorch's
transformer layers and user ``branches=`` rules; :mod:`initlab.initializers.residual_find`
picks among them (and the recorded forward pass of :mod:`~initlab.initializers.residual_record`).

>>> class Block(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 8)
...     def forward(self, x):
...         return x + self.fc2(torch.relu(self.fc1(x)))
>>> [b.name for b in rule_blocks(nn.Sequential(Block(), Block()), "0|1")]
['0', '1']
"""

from __future__ import annotations

import builtins
import fnmatch
import operator
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import fx, nn

from initlab.errors import InitSpecError
from initlab.initializers.apply import NORM_LAYERS
from initlab.initializers.trace import is_weight_layer

_ADD = ({operator.add, operator.iadd, torch.add}, {"add", "add_", "__add__", "__iadd__"})
_SUB = ({operator.sub, operator.isub, torch.sub}, {"sub", "sub_", "__sub__"})
_MUL = ({operator.mul, operator.imul, torch.mul}, {"mul", "mul_", "__mul__"})
_DIV = ({operator.truediv, torch.div}, {"div", "div_", "__truediv__"})
_SHAPE_METHODS = {"size", "dim", "numel", "get_device", "type"}
_SHAPE_ATTRS = {"shape", "device", "dtype", "ndim", "is_cuda"}
_PASS_MODULES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity)
_GATE_WORDS = ("gate", "alpha", "gain", "rezero", "skip")


@dataclass(frozen=True)
class ResidualBlock:
    """One residual branch and what the residual schemes touch in it."""

    name: str  # the module holding the branch (common prefix), or "layer:branch"
    layers: tuple[str, ...]  # weight layers on the branch, in forward order
    norm: str | None = None  # a norm layer that ends the branch, after its last weight layer
    gate: str | None = None  # parameter multiplying the branch output: x + gate * f(x)
    multipliers: tuple[str, ...] = ()  # scalar parameters multiplying inside the branch
    biases: tuple[str, ...] = ()  # scalar parameters added inside the branch
    shortcut: tuple[str, ...] = ()  # weight layers on a projection shortcut
    found_by: str = "fx"  # "fx" | "recorded" | "structure" | "torch layer" | "rule"
    add_node: str = ""  # fx node of the add (for measuring)
    skip_node: str = ""  # fx node of the shortcut's input

    @property
    def last_layer(self) -> str:
        """The branch's last weight layer (the one fixup and gpt2_residual rescale)."""
        return self.layers[-1]

    def to_dict(self) -> dict:
        """Plain data for ``InitReport.extra["residual_blocks"]``."""
        out = asdict(self)
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}
        for key in ("add_node", "skip_node"):
            out.pop(key)
        return out


@dataclass
class Discovery:
    """The blocks of one model, how they were found, and weight layers in call order."""

    blocks: list[ResidualBlock]
    method: str
    order: list[str]  # weight layers in forward call order (fx, recorded), else as declared
    graph_module: fx.GraphModule | None = None  # fx only: runnable for variance_growth
    notes: tuple[str, ...] = ()
    forward_order: bool = False  # ``order`` is the forward call order


def _is(node: fx.Node, kinds) -> bool:
    funcs, methods = kinds
    return (node.op == "call_function" and node.target in funcs) or (
        node.op == "call_method" and node.target in methods
    )


def _is_shape_query(node: fx.Node) -> bool:
    if node.op == "call_method" and node.target in _SHAPE_METHODS:
        return True
    return (
        node.op == "call_function"
        and node.target is builtins.getattr
        and len(node.args) > 1
        and node.args[1] in _SHAPE_ATTRS
    )


def _ancestors(nodes: list[fx.Node], index: dict[fx.Node, int]) -> dict[fx.Node, int]:
    """Each node's data ancestors as a bit mask over node indices (shape queries cut)."""
    anc: dict[fx.Node, int] = {}
    for node in nodes:
        mask = 0
        if not _is_shape_query(node):
            for src in node.all_input_nodes:
                mask |= anc[src] | (1 << index[src])
        anc[node] = mask
    return anc


def expand_layers(layers: list[str], modules: dict[str, nn.Module]) -> tuple[str, ...]:
    """Weight layers, with a MultiheadAttention followed by its out_proj (called inside it)."""
    out: list[str] = []
    for name in layers:
        if name in out:
            continue
        out.append(name)
        if isinstance(modules[name], nn.MultiheadAttention):
            out.append(f"{name}.out_proj")
    return tuple(out)


def _common_prefix(names: list[str]) -> str:
    if not names or not all(names):
        return ""
    parts = [n.split(".") for n in names]
    prefix = []
    for items in zip(*parts):
        if len(set(items)) != 1:
            break
        prefix.append(items[0])
    return ".".join(prefix)


def _param(model: nn.Module, node) -> torch.Tensor | None:
    if not isinstance(node, fx.Node) or node.op != "get_attr":
        return None
    try:
        value = model.get_parameter(node.target)
    except AttributeError:
        return None
    return value


class FxBlocks:
    """Blocks found in one fx graph (traced, or recorded from a forward pass)."""

    def __init__(self, model: nn.Module, graph: fx.Graph) -> None:
        self.model = model
        self.modules = dict(model.named_modules())
        self.nodes = list(graph.nodes)
        self.index = {n: i for i, n in enumerate(self.nodes)}
        self.anc = _ancestors(self.nodes, self.index)

    def _between(self, skip: fx.Node, out: fx.Node) -> list[fx.Node]:
        """Nodes computed from ``skip`` that feed ``out`` (``out`` included)."""
        bit, target = 1 << self.index[skip], self.anc[out]
        lo, hi = self.index[skip] + 1, self.index[out]
        inner = [n for n in self.nodes[lo:hi] if self.anc[n] & bit and target >> self.index[n] & 1]
        return [*inner, out]

    def _weight_layers(self, nodes: list[fx.Node]) -> list[str]:
        return [
            n.target
            for n in nodes
            if n.op == "call_module" and is_weight_layer(self.modules[n.target])
        ]

    def _split(self, node: fx.Node):
        """(skip, branch_out, shortcut layers) of an add, or None when it is no residual."""
        operands = [a for a in node.args[:2] if isinstance(a, fx.Node)]
        if len(operands) != 2 or any(_param(self.model, a) is not None for a in operands):
            return None
        a, b = operands
        if self.anc[b] >> self.index[a] & 1:
            return a, b, []
        if self.anc[a] >> self.index[b] & 1:
            return b, a, []
        common = self.anc[a] & self.anc[b]
        if not common:
            return None
        fork = self.nodes[common.bit_length() - 1]  # the latest common ancestor
        side_a = self._weight_layers(self._between(fork, a))
        side_b = self._weight_layers(self._between(fork, b))
        if len(side_a) >= len(side_b):
            return fork, a, side_b
        return fork, b, side_a

    def _end(self, out: fx.Node) -> tuple[str | None, str | None]:
        """(norm ending the branch, gate): walk back over dropout and scalar multiplies."""
        node, gate = out, None
        while isinstance(node, fx.Node):
            if node.op == "call_module":
                mod = self.modules[node.target]
                if isinstance(mod, NORM_LAYERS):
                    return node.target, gate
                if not isinstance(mod, _PASS_MODULES):
                    break
                node = node.args[0]
            elif node.op == "call_function" and node.target in (F.dropout, F.dropout1d):
                node = node.args[0]
            elif _is(node, _MUL):
                params = [a for a in node.args if _param(self.model, a) is not None]
                rest = [a for a in node.args if isinstance(a, fx.Node) and a not in params]
                if len(params) != 1 or len(rest) != 1 or _param(self.model, params[0]).dim() > 1:
                    break
                gate = gate or params[0].target
                node = rest[0]
            else:
                break
        return None, gate

    def _scalars(self, nodes: list[fx.Node]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        mult: list[str] = []
        bias: list[str] = []
        for node in nodes:
            for arg in node.args:
                p = _param(self.model, arg)
                if p is None or p.numel() != 1:
                    continue
                if _is(node, _MUL) or _is(node, _DIV):
                    mult.append(arg.target)
                elif _is(node, _ADD) or _is(node, _SUB):
                    bias.append(arg.target)
        return tuple(dict.fromkeys(mult)), tuple(dict.fromkeys(bias))

    def blocks(self) -> tuple[list[ResidualBlock], list[str]]:
        """The innermost residual blocks of the graph, and notes on adds that were left out."""
        found: list[tuple[ResidualBlock, int]] = []
        for node in self.nodes:
            if not _is(node, _ADD):
                continue
            split = self._split(node)
            if split is None:
                continue
            skip, out, shortcut = split
            between = self._between(skip, out)
            layers = self._weight_layers(between)
            if not layers:
                continue
            norm, gate = self._end(out)
            mult, bias = self._scalars(between)
            names = [n.target for n in between if n.op == "call_module"] + list(mult + bias)
            # the block is the module holding the branch's modules: common prefix of parents
            name = _common_prefix([n.rpartition(".")[0] for n in names]) or f"<{node.name}>"
            block = ResidualBlock(
                name=name, layers=expand_layers(layers, self.modules), norm=norm, gate=gate,
                multipliers=mult, biases=bias, shortcut=expand_layers(shortcut, self.modules),
                add_node=node.name, skip_node=skip.name,
            )  # fmt: skip
            mask = sum(1 << self.index[n] for n in between)
            found.append((block, mask, 1 << self.index[node]))
        kept, notes = [], []
        for block, mask, _ in found:
            if any(other is not block and mask & bit for other, _, bit in found):
                notes.append(f"residual add {block.name} wraps other blocks; left out")
            else:
                kept.append(block)
        return kept, notes

    def order(self) -> list[str]:
        """The weight layers in the order the graph runs them."""
        return list(expand_layers(self._weight_layers(self.nodes), self.modules))


def _unique_names(blocks: list[ResidualBlock]) -> list[ResidualBlock]:
    """Two branches in one module ("h.0") become "h.0:attn" and "h.0:mlp" (the submodule
    holding each branch's last layer), as does a block named like the module holding another
    (BERT's feed-forward "layer.0" around "layer.0.attention" becomes "layer.0:output"); a
    root-level add gets that submodule's name alone."""
    counts: dict[str, int] = {}
    for b in blocks:
        counts[b.name] = counts.get(b.name, 0) + 1
    outer = {b.name for b in blocks for o in blocks if o.name.startswith(f"{b.name}.")}
    out = []
    for b in blocks:
        if counts[b.name] > 1 or b.name in outer or b.name.startswith("<"):
            base = "" if b.name.startswith("<") else b.name
            rest = b.last_layer[len(base) + 1 :] if base else b.last_layer
            label = rest.split(".")[0]
            b = replace(b, name=f"{base}:{label}" if base else label)
        out.append(b)
    return out


def torch_layer_blocks(model: nn.Module) -> list[ResidualBlock]:
    """The branches of PyTorch's own transformer encoder and decoder layers."""
    blocks = []
    for name, module in model.named_modules():
        p = f"{name}." if name else ""
        branches: list[tuple[str, tuple[str, ...]]] = []
        if isinstance(module, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
            branches.append(("self_attn", (f"{p}self_attn", f"{p}self_attn.out_proj")))
        if isinstance(module, nn.TransformerDecoderLayer):
            mha = f"{p}multihead_attn"
            branches.append(("cross_attn", (mha, f"{mha}.out_proj")))
        if branches:
            branches.append(("feed_forward", (f"{p}linear1", f"{p}linear2")))
        for label, layers in branches:
            full = f"{name}:{label}" if name else label
            blocks.append(ResidualBlock(full, layers, found_by="torch layer"))
    return blocks


def rule_blocks(model: nn.Module, branches: str) -> list[ResidualBlock]:
    """One block per module whose name matches a glob of ``branches`` ("glob|glob")."""
    globs = [g.strip() for g in branches.split("|") if g.strip()]
    names = [n for n, _ in model.named_modules() if n]
    blocks = []
    for name, module in model.named_modules():
        if not name or not any(fnmatch.fnmatchcase(name, g) for g in globs):
            continue
        inside = list(module.named_modules(prefix=name))
        attention = [n for n, m in inside if isinstance(m, nn.MultiheadAttention)]
        leaves = [(n, m) for n, m in inside  # MultiheadAttention internals come with it
                  if (is_weight_layer(m) or isinstance(m, NORM_LAYERS))
                  and not any(n.startswith(f"{a}.") for a in attention)]  # fmt: skip
        layers = [n for n, m in leaves if is_weight_layer(m)]
        if not layers:
            raise InitSpecError(
                f"branches={branches!r} names module {name!r}, which holds no weight layer; "
                "name the module whose output is added onto its input."
            )
        modules = dict(model.named_modules())
        norm = leaves[-1][0] if isinstance(leaves[-1][1], NORM_LAYERS) else None
        scalars = [f"{name}.{n}" for n, p in module.named_parameters() if p.numel() == 1]
        biases = tuple(s for s in scalars if "bias" in s.rsplit(".", 1)[1])
        mult = tuple(s for s in scalars if s not in biases)
        gates = [s for s in mult if any(w in s.rsplit(".", 1)[1].lower() for w in _GATE_WORDS)]
        gate = gates[0] if gates else (mult[0] if len(mult) == 1 else None)
        blocks.append(ResidualBlock(name, expand_layers(layers, modules), norm, gate, mult, biases,
                                    found_by="rule"))  # fmt: skip
    if not blocks:
        sample = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        raise InitSpecError(
            f"branches={branches!r} matched no module; module names look like: {sample} "
            "(use globs such as 'blocks.*' separated by '|')."
        )
    return blocks


def merge_layer_blocks(
    found: list[ResidualBlock], layer_blocks: list[ResidualBlock]
) -> list[ResidualBlock]:
    """Blocks from a graph plus PyTorch's transformer layers that the graph kept whole; a graph
    block of such a layer (the model is one, or subclasses one) keeps the layer's name."""
    by_last = {b.last_layer: b.name for b in layer_blocks}
    found = _unique_names([replace(b, name=by_last.get(b.last_layer, b.name)) for b in found])
    taken = {b.last_layer for b in found}
    return found + [b for b in layer_blocks if b.last_layer not in taken]


def block_note(found: Discovery, shown: int = 12) -> str:
    """One line naming the blocks found, for ``InitReport.notes``."""
    names = [b.name for b in found.blocks]
    listed = ", ".join(names[:shown]) + (f", ... ({len(names) - shown} more)" if len(names) > shown
                                         else "")  # fmt: skip
    return f"residual blocks: {len(names)} {found.method}: {listed}"
