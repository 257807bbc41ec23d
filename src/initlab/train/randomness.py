"""Keyed randomness: every draw of a run comes from a generator keyed by what it belongs to.

* initial weights: ``("init", canonical init spec, seed index)``
* dropout masks:   ``("dropout", canonical init spec, seed index)``
* batch order:     ``("batches", seed index, epoch)``: all inits of one seed see the same
  batches (common random numbers), different seeds see different orders.

So any single model can be rerun alone and gets the same weights, masks and batches.

>>> order = BatchOrder([0, 1], n=10, batch_size=4)
>>> order.per_epoch, tuple(order.indices(0).shape)
(2, (2, 4))
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from a key: stable across processes, platforms and Python versions."""
    blob = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") & (2**63 - 1)


def init_generator(init: str, seed: int) -> torch.Generator:
    """The CPU generator that draws the initial weights of (init, seed)."""
    return torch.Generator().manual_seed(derive_seed("init", init, seed))


def dropout_generator(init: str, seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """The generator that draws the dropout masks of (init, seed) on ``device``."""
    return torch.Generator(device=device).manual_seed(derive_seed("dropout", init, seed))


class BatchOrder:
    """Mini-batch indices for G seed groups; a pure function of (seed, step).

    Each epoch is a fresh permutation of the ``n`` training examples drawn from a generator
    keyed by (seed, epoch); the last partial batch of an epoch is dropped so every batch has
    ``batch_size`` examples. Being stateless, it needs nothing saved to resume.
    """

    def __init__(
        self, seeds: list[int], *, n: int, batch_size: int, device: str | torch.device = "cpu"
    ):
        if not 1 <= batch_size <= n:
            raise ValueError(f"batch_size {batch_size} must be in 1..{n}")
        self.seeds = list(seeds)
        self.n = n
        self.batch_size = batch_size
        self.per_epoch = n // batch_size
        self.device = torch.device(device)
        self._epoch = -1
        self._perms = torch.empty(0)

    def permutation(self, seed: int, epoch: int) -> torch.Tensor:
        """The order of the training examples in ``epoch``, from a generator keyed by
        (``seed``, ``epoch``)."""
        g = torch.Generator().manual_seed(derive_seed("batches", seed, epoch))
        return torch.randperm(self.n, generator=g)

    def indices(self, step: int) -> torch.Tensor:
        """Indices (G, batch_size) of the batch every group trains on at 0-based ``step``."""
        epoch, pos = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            perms = torch.stack([self.permutation(s, epoch) for s in self.seeds])
            self._perms = perms.to(self.device)
            self._epoch = epoch
        start = pos * self.batch_size
        return self._perms[:, start : start + self.batch_size]
