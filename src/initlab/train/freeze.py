"""Members of a stack that must not move any more: diverged, or stopped early.

A zero gradient is not enough to hold a slice still: momentum, Adam's moments and decoupled
weight decay keep moving it. So a frozen member's loss is left out of the summed loss, its
gradient is zeroed, and its parameters and buffers (batch-norm statistics too) are copied
back from a snapshot after every optimizer step.

Best weights for ``restore_best`` live here too: one copy of every stacked tensor, of which
member ``k``'s slice is overwritten whenever ``k`` improves.
"""

from __future__ import annotations

import torch

from initlab.models.stacked import StackedModel


class FrozenMembers:
    """Which members are frozen, and the snapshot that holds them where they stopped."""

    def __init__(self, stack: StackedModel, device: torch.device) -> None:
        self.stack, self.device = stack, device
        self.members: list[int] = []
        self._snapshot: dict[str, torch.Tensor] = {}

    def __bool__(self) -> bool:
        return bool(self.members)

    def __contains__(self, k: int) -> bool:
        return k in self.members

    def _tensors(self) -> dict[str, torch.Tensor]:
        return {**self.stack.params, **self.stack.buffers}

    def freeze(self, ks: list[int]) -> None:
        """Freeze members ``ks`` where they are now."""
        new = [k for k in ks if k not in self.members]
        if not new:
            return
        self.members = sorted(self.members + new)
        # Members frozen before have not moved since, so one snapshot of all of them is exact.
        index = torch.tensor(self.members, device=self.device)
        self._snapshot = {
            n: t.detach().index_select(0, index).clone() for n, t in self._tensors().items()
        }

    def mask(self, losses: torch.Tensor) -> torch.Tensor:
        """The summed loss of the members still training."""
        alive = torch.ones_like(losses, dtype=torch.bool)
        alive[self.members] = False
        return torch.where(alive, losses, torch.zeros_like(losses)).sum()

    def zero_grads(self) -> None:
        """Zero the frozen members' gradients before the optimizer step (:meth:`restore` then
        undoes what momentum or weight decay still moves)."""
        if not self.members:
            return
        index = torch.tensor(self.members, device=self.device)
        with torch.no_grad():
            for p in self.stack.params.values():
                if p.grad is not None:
                    p.grad.index_fill_(0, index, 0.0)

    def restore(self) -> None:
        """Put every frozen member back where it was frozen."""
        if not self.members:
            return
        index = torch.tensor(self.members, device=self.device)
        with torch.no_grad():
            for n, t in self._tensors().items():
                t.index_copy_(0, index, self._snapshot[n])


class BestWeights:
    """Member ``k``'s weights (and buffers) at its best evaluation so far."""

    def __init__(self, stack: StackedModel) -> None:
        self.stack = stack
        self.tensors = {n: t.detach().clone() for n, t in _all(stack).items()}

    def keep(self, k: int) -> None:
        """Keep member ``k``'s current weights (and buffers) as its best."""
        with torch.no_grad():
            for n, t in _all(self.stack).items():
                self.tensors[n][k].copy_(t[k])

    def restore(self, ks: list[int]) -> None:
        """Copy the best weights of members ``ks`` back into the stack."""
        if not ks:
            return
        with torch.no_grad():
            for n, t in _all(self.stack).items():
                for k in ks:
                    t[k].copy_(self.tensors[n][k])

    def checkpoint(self) -> dict[str, torch.Tensor]:
        """The kept weights as checkpoint tensors named ``best.<name>``."""
        return {f"best.{n}": t for n, t in self.tensors.items()}

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        """Load the kept weights from :meth:`checkpoint` tensors."""
        with torch.no_grad():
            for n, t in self.tensors.items():
                t.copy_(tensors[f"best.{n}"])


def _all(stack: StackedModel) -> dict[str, torch.Tensor]:
    return {**stack.params, **stack.buffers}
