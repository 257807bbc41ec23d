"""In-memory datasets: three splits of tensors, loaded once.

Images stay in their on-disk dtype (uint8) and become float32 in [0, 1] only when a batch is
used: ``split.features(index)`` divides by ``split.divisor`` (255 for IDX images).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True, eq=False)
class Split:
    """One split: inputs ``x`` (N, *in_shape) in their stored dtype and int64 labels ``y``."""

    x: torch.Tensor
    y: torch.Tensor
    divisor: float = 1.0  # features = x / divisor (255 for uint8 images)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def features(self, index: torch.Tensor | slice | None = None) -> torch.Tensor:
        """Float32 inputs of the rows ``index`` (all rows when None), scaled to [0, 1] for images.

        ``index`` may have any shape (e.g. (G, B)); the result has shape index.shape + in_shape.
        """
        x = self._rows(self.x, index)
        # A division (not a multiplication by 1/255) everywhere, so every path rounds alike.
        if x.dtype != torch.float32:
            x = x.to(torch.float32)  # a fresh tensor: safe to divide in place
            return x.div_(self.divisor) if self.divisor != 1.0 else x
        return x / self.divisor if self.divisor != 1.0 else x

    def labels(self, index: torch.Tensor | slice | None = None) -> torch.Tensor:
        """The int64 labels of the rows ``index`` (all rows when None), shaped like ``index``."""
        return self._rows(self.y, index)

    @staticmethod
    def _rows(t: torch.Tensor, index: torch.Tensor | slice | None) -> torch.Tensor:
        if index is None:
            return t
        if not isinstance(index, torch.Tensor):
            return t[index]
        # index_select on a 2-D view: several times faster than advanced indexing of an
        # N-D tensor, and this runs once per training step.
        flat = t.reshape(t.shape[0], -1).index_select(0, index.reshape(-1))
        return flat.view(*index.shape, *t.shape[1:])


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset: train, a fixed validation split carved from train, and test.

    ``split_note`` says how the validation split was carved (e.g. the last 5,000 of the
    official training set); ``source`` says where the data was read from.
    """

    name: str
    train: Split
    val: Split
    test: Split
    n_classes: int
    in_shape: tuple[int, ...]
    source: str = ""
    split_note: str = ""

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={len(self.train)}, val={len(self.val)}, "
            f"test={len(self.test)}, in_shape={self.in_shape}, n_classes={self.n_classes})"
        )
