"""Embedding tables: N(0, std^2) with the three conventions people actually use.

* ``std=1``: PyTorch's ``nn.Embedding`` default (``normal`` does the same).
* ``std=0.02``: GPT-2 / BERT (``normal:std=0.02`` does the same).
* ``std=none`` (the default): ``d_model^-0.5``, with ``d_model`` the embedding width (dim 1
  of the ``[num_embeddings, embedding_dim]`` table), as in Vaswani et al. with embeddings
  multiplied by ``sqrt(d_model)`` in the forward pass, or T5/tied-softmax setups.

Use it for embeddings only, with a rule: ``init_(model, "xavier_uniform",
rules=[("*embed*.weight", "embedding_normal")])``. The other two choices are plain
``normal`` specs; this scheme exists so that the width-dependent one needs no arithmetic.

>>> import torch, initlab
>>> emb = torch.nn.Embedding(1000, 256)
>>> report = initlab.init_(emb, "embedding_normal", generator=torch.Generator().manual_seed(0))
>>> report.row("weight").target_std
0.0625
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from initlab.errors import InitSpecError
from initlab.initializers import distributions as D
from initlab.initializers.registry import LayerContext, TensorScheme, register


@register("embedding_normal")
@dataclass(frozen=True)
class EmbeddingNormal(TensorScheme):
    formula = "N(0, std^2); std = d_model^-0.5 (dim 1 of the table) unless given (1, 0.02)"
    per_block = False
    std: float | None = None

    def __post_init__(self) -> None:
        if self.std is not None and not (self.std >= 0 and math.isfinite(self.std)):
            raise InitSpecError(
                f"Bad std={self.std!r} for initializer 'embedding_normal': must be >= 0, or "
                "none for d_model^-0.5."
            )

    def _std(self, shape: tuple[int, ...]) -> float:
        if self.std is not None:
            return self.std
        if len(shape) != 2:
            raise InitSpecError(
                f"'embedding_normal' with std=none needs a 2-d [num, d_model] table, got shape "
                f"{list(shape)}; give std= or use it on embeddings only (a rule such as "
                "('*embed*.weight', 'embedding_normal'))."
            )
        return shape[1] ** -0.5

    def target_std(self, ctx: LayerContext) -> float:
        """``std``, or d_model^-0.5 of a 2-d table when ``std`` is None."""
        return self._std(ctx.shape)

    def sample(self, shape, ctx, generator, device, out=None):
        """N(0, std^2) draws with the std of :meth:`target_std`."""
        return D.normal(shape, 0.0, self._std(tuple(shape)), generator, device, out)
