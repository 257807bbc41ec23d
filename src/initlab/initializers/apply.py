"""``init_``: apply one scheme to a whole model from one generator, with a report.

>>> import torch, initlab
>>> model = torch.nn.Sequential(torch.nn.Linear(784, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10))
>>> report = initlab.init_(model, "auto", generator=torch.Generator().manual_seed(0))
>>> report.row("0.weight").activation, round(report.row("0.weight").gain, 3)
('relu', 1.414)
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin

from initlab.activations import Activation, resolve
from initlab.errors import InitSpecError, did_you_mean
from initlab.initializers.fans import Block, module_blocks, tensor_fans
from initlab.initializers.init_report import InitReport, InitRow
from initlab.initializers.registry import (
    Initializer,
    LayerContext,
    ModelProcedure,
    TensorScheme,
    get,
)
from initlab.initializers.schemes import Auto
from initlab.initializers.trace import Found, find_activations, is_weight_layer, run_example

NORM_LAYERS = (
    nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm,
    nn.modules.instancenorm._InstanceNorm, nn.RMSNorm,
)  # fmt: skip
Rules = Iterable[tuple[str, "str | dict | Initializer"]] | Mapping[str, "str | dict | Initializer"]


NO_GENERATOR = "no generator given: used torch.Generator().manual_seed(0)"


def has_uninitialized_params(module: nn.Module) -> bool:
    """A lazy module (``nn.LazyLinear``...) whose parameters have no shape yet."""
    return isinstance(module, LazyModuleMixin) and module.has_uninitialized_params()


def default_generator(seed: int = 0) -> torch.Generator:
    """``torch.Generator().manual_seed(seed)``: what every draw uses when no generator is given."""
    return torch.Generator().manual_seed(seed)


def _parse_rules(rules: Rules | None) -> list[tuple[str, Initializer]]:
    if rules is None:
        return []
    items = rules.items() if isinstance(rules, Mapping) else rules
    out = []
    for item in items:
        try:
            pattern, spec = item
        except (TypeError, ValueError):
            raise InitSpecError(
                f"Bad rule {item!r}: a rule is a (parameter-name glob, spec) pair, "
                "e.g. ('*.bias', 'constant:value=0.1')."
            ) from None
        out.append((str(pattern), tensor_scheme(spec, "a rule")))
    return out


def check_rules_match(model: nn.Module, rule_list: list[tuple[str, Initializer]]) -> None:
    """A rule whose glob names no parameter would be a silent no-op: one line instead, with
    the parameter names (and a did-you-mean for a near miss)."""
    names = [n for n, _ in model.named_parameters()]
    for pattern, _ in rule_list:
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
            hint = did_you_mean(pattern, names)
            raise InitSpecError(
                f"Rule {pattern!r} matches no parameter of this model; its parameters are "
                f"{shown}.{hint} Globs use * and ?, e.g. '*.bias'."
            )


def tensor_scheme(spec: str | dict | Initializer, role: str) -> TensorScheme:
    """``spec`` as a formula scheme for ``role`` (a bias or a rule fills single tensors); a
    model-level procedure there is one line saying where it goes instead."""
    scheme = get(spec)
    if isinstance(scheme, ModelProcedure):
        kind, data = ("data-driven", " with data=") if scheme.needs_data else ("model-level", "")
        raise InitSpecError(
            f"'{scheme.name}' is {kind} and fills a whole model: use it as init_'s scheme{data}, "
            f"not as {role}; a bias or rule takes a formula scheme such as 'zeros' or 'he_normal'."
        )
    return scheme


def _explicit(nonlinearity, names: list[str]) -> dict[str, Found]:
    if isinstance(nonlinearity, Mapping):
        found = {}
        for name in names:
            for pattern, act in nonlinearity.items():
                if fnmatch.fnmatchcase(name, pattern):
                    found[name] = Found(resolve(act), "explicit")
                    break
        return found
    act = resolve(nonlinearity)
    return {name: Found(act, "explicit") for name in names}


def init_(
    model: nn.Module,
    scheme: str | dict | Initializer = "auto",
    *,
    bias: str | dict | Initializer | None = None,
    rules: Rules | None = None,
    generator: torch.Generator | None = None,
    nonlinearity: str | Activation | Mapping | None = None,
    example_input=None,
    data=None,
) -> InitReport:
    """Initialize every parameter of ``model`` in place and report what was done.

    ``scheme`` fills weights; ``bias`` fills biases (``None``: zeros, or the scheme's own bias
    rule for ``torch_default``). ``rules`` is an ordered list of (parameter-name glob, spec)
    overrides; the first matching rule wins. Normalization layers get weight 1, bias 0.
    ``nonlinearity`` (a name, or a dict of module-name glob -> name) overrides what ``auto``
    finds by tracing. All draws come from ``generator`` (``None``: a generator seeded 0),
    in float32 on the generator's device, then are cast to each parameter's dtype and device.

    >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> report = init_(model, "he_normal", rules={"2.weight": "xavier_normal"},
    ...                generator=torch.Generator().manual_seed(0))
    >>> [r.scheme for r in report.rows], report.row("0.weight").gain == 2**0.5
    (['he_normal', 'zeros', 'xavier_normal', 'zeros'], True)
    """
    spec = get(scheme)
    materialize_lazy(model, example_input)
    if isinstance(spec, ModelProcedure):
        report = spec.apply(
            model, data=data, generator=generator or default_generator(), bias=bias,
            rules=rules, example_input=example_input,
        )  # fmt: skip
        if generator is None and NO_GENERATOR not in report.notes:
            report.notes.append(NO_GENERATOR)
        return report
    if data is not None:
        raise InitSpecError(
            f"Initializer '{spec.name}' is a formula scheme and does not use data; drop data= "
            "or use a data-driven scheme such as 'lsuv'."
        )
    report = InitReport()
    if generator is None:
        generator = default_generator()
        report.notes.append(NO_GENERATOR)
    rule_list = _parse_rules(rules)
    check_rules_match(model, rule_list)
    bias_spec = tensor_scheme(bias, "a bias") if bias is not None else None
    found = _activations(model, spec, rule_list, nonlinearity, example_input, report)
    fill_model(model, spec, bias_spec, rule_list, found, generator, report)
    return report


def materialize_lazy(model: nn.Module, example_input=None) -> None:
    """Run ``example_input`` through a model with lazy modules (``nn.LazyLinear``) so their
    shapes exist; without one, raise a one-line error saying what to do."""
    lazy = [f"'{n}' ({type(m).__name__})" if n else type(m).__name__
            for n, m in model.named_modules() if has_uninitialized_params(m)]  # fmt: skip
    if not lazy:
        return
    if example_input is None:
        shown = ", ".join(lazy[:3]) + (", ..." if len(lazy) > 3 else "")
        raise InitSpecError(
            f"Lazy module {shown} has no parameter shapes yet: run one forward pass "
            "(model(x)) first, or pass example_input= so that init_ runs it."
        )
    with torch.no_grad():
        run_example(model, example_input)


def _activations(model, spec, rule_list, nonlinearity, example_input, report):
    layer_names = [n for n, m in model.named_modules() if is_weight_layer(m)]
    if nonlinearity is not None:
        report.notes.append("activations given by nonlinearity=")
        return _explicit(nonlinearity, layer_names)
    if not (isinstance(spec, Auto) or any(isinstance(s, Auto) for _, s in rule_list)):
        return {}
    found, note = find_activations(model, example_input)
    report.notes.append(note)
    return found


def fill_model(
    model: nn.Module,
    spec: Initializer,
    bias_spec: Initializer | None,
    rule_list: list[tuple[str, Initializer]],
    found: Mapping[str, Found],
    generator: torch.Generator,
    report: InitReport,
) -> None:
    """Fill every parameter of every module (shared parameters once) into ``report``."""
    seen: dict[int, str] = {}
    for mod_name, module in spec.fill_order(model, generator):
        weight = getattr(module, "weight", None)
        if weight is None and isinstance(module, nn.MultiheadAttention):
            weight = module.in_proj_weight  # packed q, k, v: the bias follows its fans
            weight_name = "in_proj_weight"
        else:
            weight_name = "weight"
        weight_fan_in = 1
        torch_fan_in = 1
        if isinstance(weight, torch.Tensor) and weight.dim() >= 2:
            weight_fan_in = module_blocks(module, weight_name, tuple(weight.shape))[0].fan_in
            torch_fan_in = tensor_fans(tuple(weight.shape))[0]
        for pname, param in module.named_parameters(recurse=False):
            full = f"{mod_name}.{pname}" if mod_name else pname
            if id(param) in seen:
                report.skipped.append((full, f"shared with {seen[id(param)]}; filled once"))
                continue
            seen[id(param)] = full
            if param.device.type == "meta":
                report.skipped.append(
                    (
                        full,
                        "on the meta device: build on meta, call model.to_empty(device=...), "
                        "then init_",
                    )  # fmt: skip
                )
                continue
            chosen = _choose(full, pname, param, module, spec, bias_spec, rule_list)
            if chosen is None:
                report.skipped.append((full, _unknown_layer(module, full, param)))
                continue
            activation = found.get(mod_name)
            ctx_fans = _fans(module, pname, param, weight_fan_in)
            ctx = LayerContext(
                fan_in=ctx_fans[0].fan_in, fan_out=ctx_fans[0].fan_out,
                shape=tuple(param.shape), activation=activation.activation if activation else None,
                module=module, param_name=pname, torch_fan_in=torch_fan_in,
            )  # fmt: skip
            blocks = _fill(param, chosen, ctx, ctx_fans, generator)
            # per-block schemes aim at each block's std (the blocks have equal shapes)
            target_ctx = block_context(ctx, ctx_fans[0]) if blocks > 1 else ctx
            if (
                isinstance(module, (nn.Embedding, nn.EmbeddingBag))
                and module.padding_idx is not None
                and pname == "weight"
            ):
                with torch.no_grad():
                    param[module.padding_idx].zero_()
            report.rows.append(
                InitRow(
                    name=full,
                    shape=list(param.shape),
                    fan_in=ctx.fan_in,
                    fan_out=ctx.fan_out,
                    scheme=chosen.to_spec(),
                    gain=chosen.gain_for(ctx),
                    target_std=chosen.target_std(target_ctx),
                    realized_std=realized_std(param),
                    activation=_act_name(activation, module),
                    blocks=blocks,
                )  # fmt: skip
            )


def _unknown_layer(module: nn.Module, full: str, param: torch.Tensor) -> str:
    """Why a parameter was left alone, with the rule that would cover it."""
    kind = type(module).__name__
    if param.dim() <= 1 and "norm" in kind.lower():  # a norm's gain or shift (LlamaRMSNorm)
        fill, role = ("zeros", "shift") if "bias" in full.rsplit(".", 1)[-1] else ("ones", "gain")
        return (f"{kind} is not a norm layer initlab knows; add a rule such as "
                f"('{full}', '{fill}') to initialize it as a norm {role}")  # fmt: skip
    return (f"{kind} is not a layer initlab knows; add a rule such as "
            f"('{full}', 'normal:std=0.02') to initialize it")  # fmt: skip


def _act_name(found: Found | None, module: nn.Module) -> str | None:
    if found is None:
        return None
    return found.activation.spec if found.activation is not None else "none"


def _choose(full, pname, param, module, spec, bias_spec, rule_list) -> Initializer | None:
    for pattern, rule_spec in rule_list:
        if fnmatch.fnmatchcase(full, pattern):
            return rule_spec
    is_bias = param.dim() == 1 and "bias" in pname
    if isinstance(module, NORM_LAYERS):
        return get("zeros") if is_bias else get("ones")
    if not is_weight_layer(module):
        return None
    if is_bias:
        if bias_spec is not None:
            return bias_spec
        return spec if getattr(spec, "owns_bias", False) else get("zeros")
    return spec


def _fans(module, pname, param, weight_fan_in):
    if param.dim() >= 2:
        return module_blocks(module, pname, tuple(param.shape))
    return [Block(0, param.shape[0] if param.dim() else 1, weight_fan_in, weight_fan_in)]


def block_context(ctx: LayerContext, block) -> LayerContext:
    """The context of one row block (an RNN gate, a packed q/k/v projection)."""
    shape = (block.stop - block.start, *ctx.shape[1:])
    return dataclasses.replace(ctx, fan_in=block.fan_in, fan_out=block.fan_out, shape=shape)


def _fill(param, chosen: Initializer, ctx: LayerContext, blocks, generator) -> int:
    device = generator.device
    shape = tuple(param.shape)
    if chosen.per_block and len(blocks) > 1:
        parts = []
        for b in blocks:
            bctx = block_context(ctx, b)
            parts.append(chosen.sample(bctx.shape, bctx, generator, device))
        values = torch.cat(parts, dim=0)
        n = len(blocks)
    else:
        # draw straight into the parameter when it already is float32 on the draw device
        direct = param.dtype == torch.float32 and param.device == device and param.is_contiguous()
        with torch.no_grad():
            values = chosen.sample(
                shape, ctx, generator, device, out=param.data if direct else None
            )
        n = 1
    if values.data_ptr() != param.data_ptr():
        with torch.no_grad():
            param.copy_(values.to(device=param.device, dtype=param.dtype))
    return n


def realized_std(param: torch.Tensor, max_samples: int = 1 << 18, chunk: int = 256) -> float:
    """The std of a parameter; over about ``max_samples`` entries when larger: evenly spaced
    runs of ``chunk`` consecutive entries, so the sample reads a few cache lines per run
    instead of one per entry (the estimate's relative error is about
    1/sqrt(2 * max_samples), about 0.14%, for i.i.d. entries)."""
    if param.numel() < 2:
        return 0.0
    flat = param.detach().reshape(-1)
    n = flat.numel()
    if n > max_samples:
        runs = n // chunk
        take = max(1, max_samples // chunk)
        flat = flat[: runs * chunk].view(runs, chunk)[:: max(1, runs // take)][:take]
    flat = flat.float()
    if flat.device.type == "cpu":  # numpy: one thread, no wake-up of torch's thread pool
        return float(flat.numpy().std(ddof=1, dtype=np.float64))
    return float(flat.std())
