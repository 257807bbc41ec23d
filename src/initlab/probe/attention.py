"""Per-head attention-logit std and softmax entropy of every ``nn.MultiheadAttention``.

``TransformerEncoderLayer`` calls its attention with ``need_weights=False``, so the weights are
never returned; instead a forward pre-hook takes each call's query and key (and masks) and
recomputes the logits from the module's own projections: ``q = query Wq^T + bq``,
``k = key Wk^T + bk``, split into heads, ``logits = q k^T / sqrt(head_dim)``. Per head it
folds into running sums the logits' std over allowed (query, key) pairs and the mean entropy
(nats) of each query's softmax, next to its maximum ``log(allowed keys)``: an entropy at the
maximum means uniform attention (logits too small to select anything), near 0 means one-hot.
Hooks hold no tensors after a call and are removed even when the forward raises; hooking a
``TransformerEncoderLayer``'s attention also turns off its fused fast path (which would skip
the attention module), so the numbers are the ones the slow path computes.

>>> import torch
>>> from torch import nn
>>> layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
>>> x = torch.randn(4, 10, 16, generator=torch.Generator().manual_seed(0))
>>> heads = attention_stats(layer.eval(), x)
>>> [(h.module, h.head) for h in heads]
[('self_attn', 0), ('self_attn', 1)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from initlab.errors import ConfigError


@dataclass
class HeadStats:
    """One head of one attention module, over every call and batch seen (plain data)."""

    module: str
    head: int
    logit_std: float
    logit_mean: float
    entropy: float  # mean over queries of the softmax entropy, nats
    max_entropy: float  # mean over queries of log(allowed keys): uniform attention
    pairs: int  # (query, key) logits counted


class _HeadSums:
    """Running float64 sums for the heads of one module."""

    def __init__(self, heads: int) -> None:
        self.n = torch.zeros(heads, dtype=torch.float64)
        self.s1 = torch.zeros(heads, dtype=torch.float64)
        self.s2 = torch.zeros(heads, dtype=torch.float64)
        self.rows = torch.zeros(heads, dtype=torch.float64)
        self.ent = torch.zeros(heads, dtype=torch.float64)
        self.max_ent = torch.zeros(heads, dtype=torch.float64)


def _project(mha: nn.MultiheadAttention, query, key) -> tuple[torch.Tensor, torch.Tensor]:
    e = mha.embed_dim
    if mha._qkv_same_embed_dim:
        wq, wk = mha.in_proj_weight[:e], mha.in_proj_weight[e : 2 * e]
    else:
        wq, wk = mha.q_proj_weight, mha.k_proj_weight
    bias = mha.in_proj_bias
    bq, bk = (None, None) if bias is None else (bias[:e], bias[e : 2 * e])
    return F.linear(query, wq, bq), F.linear(key, wk, bk)


def _pad_keys(mask: torch.Tensor, lk: int) -> torch.Tensor:
    """Masks cover the caller's keys; bias_k / add_zero_attn append allowed ones."""
    extra = lk - mask.shape[-1]
    if extra <= 0:
        return mask
    return torch.cat([mask, mask.new_zeros(*mask.shape[:-1], extra)], dim=-1)


def _masks(mha, batch: int, lq: int, lk: int, kwargs: dict, device):
    """(allowed [B, H, Lq, Lk] bool, additive float [B, H, Lq, Lk]) from the call's masks."""
    heads = mha.num_heads
    allowed = torch.ones(batch, heads, lq, lk, dtype=torch.bool, device=device)
    additive = torch.zeros(batch, heads, lq, lk, dtype=torch.float64, device=device)
    mask = kwargs.get("attn_mask")
    if mask is None and kwargs.get("is_causal"):
        mask = torch.ones(lq, lk, dtype=torch.bool, device=device).triu(1)
    if mask is not None:
        mask = mask.reshape(-1, heads, lq, mask.shape[-1]) if mask.dim() == 3 else mask
        mask = _pad_keys(mask, lk)
        if mask.dtype == torch.bool:
            allowed &= ~mask
        else:
            additive = additive + mask.double()
            allowed &= torch.isfinite(mask)
    padding = kwargs.get("key_padding_mask")
    if padding is not None:
        padding = _pad_keys(padding.reshape(batch, -1), lk).reshape(batch, 1, 1, lk)
        if padding.dtype == torch.bool:
            allowed &= ~padding
        else:
            additive = additive + padding.double()
            allowed &= torch.isfinite(padding)
    return allowed, additive


def _fold(mha: nn.MultiheadAttention, sums: _HeadSums, query, key, kwargs: dict) -> None:
    if query.is_nested or key.is_nested:
        raise ConfigError(
            "attention_stats got nested tensors (TransformerEncoder's fast path with a padding "
            "mask); build the encoder with enable_nested_tensor=False."
        )
    if query.dim() == 2:  # unbatched: [L, E]
        query, key = query.unsqueeze(0), key.unsqueeze(0)
    elif not mha.batch_first:  # [L, B, E] -> [B, L, E]
        query, key = query.transpose(0, 1), key.transpose(0, 1)
    q, k = _project(mha, query, key)
    batch, lq, _ = q.shape
    if mha.bias_k is not None:
        k = torch.cat([k, mha.bias_k.reshape(1, 1, -1).expand(batch, 1, -1)], dim=1)
    if mha.add_zero_attn:
        k = torch.cat([k, k.new_zeros(batch, 1, k.shape[-1])], dim=1)
    lk, heads = k.shape[1], mha.num_heads
    d = mha.head_dim
    q = q.reshape(batch, lq, heads, d).transpose(1, 2).double()
    k = k.reshape(batch, lk, heads, d).transpose(1, 2).double()
    logits = q @ k.transpose(-1, -2) / math.sqrt(d)  # [B, H, Lq, Lk]
    allowed, additive = _masks(mha, batch, lq, lk, kwargs, logits.device)
    kept = torch.where(allowed, logits, torch.zeros_like(logits))
    sums.n += allowed.sum((0, 2, 3)).double()
    sums.s1 += kept.sum((0, 2, 3))
    sums.s2 += (kept * kept).sum((0, 2, 3))
    scores = torch.where(allowed, logits + additive, torch.full_like(logits, -math.inf))
    live = allowed.any(-1)  # queries with at least one allowed key
    p = torch.softmax(scores.masked_fill(~live.unsqueeze(-1), 0.0), dim=-1)
    entropy = -torch.special.xlogy(p, p).sum(-1)
    sums.rows += live.sum((0, 2)).double()
    sums.ent += torch.where(live, entropy, torch.zeros_like(entropy)).sum((0, 2))
    log_keys = allowed.sum(-1).clamp_min(1).double().log()
    sums.max_ent += torch.where(live, log_keys, torch.zeros_like(log_keys)).sum((0, 2))


def _call_kwargs(args: tuple, kwargs: dict) -> dict:
    """MultiheadAttention.forward's optional arguments, given by position or keyword."""
    names = ("key_padding_mask", "need_weights", "attn_mask", "average_attn_weights", "is_causal")
    out = dict(zip(names, args[3:]))
    out.update({k: v for k, v in kwargs.items() if k in names})
    return out


def attention_stats(model: nn.Module, inputs, *, batches: int = 1) -> list[HeadStats]:
    """Run ``inputs`` (a tensor split into ``batches`` along dim 0, a tuple of model arguments,
    or an iterable of either) through ``model`` without gradients and return per-head stats of
    every ``nn.MultiheadAttention`` it calls, in module order. Mode and buffers are kept."""
    modules = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.MultiheadAttention)]
    if not modules:
        raise ConfigError(
            f"attention_stats found no nn.MultiheadAttention in {type(model).__name__}."
        )
    sums = {name: _HeadSums(m.num_heads) for name, m in modules}

    def hook_for(name):
        def hook(mha, args, kwargs):
            query = args[0] if args else kwargs["query"]
            key = args[1] if len(args) > 1 else kwargs["key"]
            _fold(mha, sums[name], query.detach(), key.detach(), _call_kwargs(args, kwargs))

        return hook

    if isinstance(inputs, torch.Tensor):
        plan = [(x,) for x in torch.chunk(inputs, batches)]
    elif isinstance(inputs, tuple):
        plan = [inputs]
    else:
        plan = [x if isinstance(x, tuple) else (x,) for _, x in zip(range(batches), inputs)]
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    handles = [m.register_forward_pre_hook(hook_for(n), with_kwargs=True) for n, m in modules]
    try:
        with torch.no_grad():
            for args in plan:
                model(*args)
    finally:
        for h in handles:
            h.remove()
        with torch.no_grad():
            for b, value in saved:
                b.copy_(value)
    return _records(sums)


def _records(sums: dict[str, _HeadSums]) -> list[HeadStats]:
    out = []
    for name, s in sums.items():
        for h in range(len(s.n)):
            n, rows = float(s.n[h]), float(s.rows[h])
            if n == 0:
                continue  # the module was not called
            mean = float(s.s1[h]) / n
            var = max(float(s.s2[h]) / n - mean * mean, 0.0)
            out.append(HeadStats(name, h, math.sqrt(var), mean, float(s.ent[h]) / rows,
                                 float(s.max_ent[h]) / rows, int(n)))  # fmt: skip
    return out


def format_heads(stats: list[HeadStats]) -> str:
    """A plain-text table: one line per head."""
    lines = [f"{'module':<28} {'head':>4} {'logit std':>10} {'entropy':>8} {'max':>7}"]
    for s in stats:
        lines.append(f"{s.module:<28} {s.head:>4} {s.logit_std:>10.4g} {s.entropy:>8.4f} "
                     f"{s.max_entropy:>7.4f}")  # fmt: skip
    return "\n".join(lines)
