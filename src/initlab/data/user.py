"""Your own data: arrays, tensors or torch Datasets become an initlab :class:`Dataset`.

``compare(data=(x_train, y_train, x_test, y_test))`` in Python, or ``--data pkg.mod:function``
on the command line (the function returns one of the forms below). The validation split is
the last tenth of the training rows (a fixed slice: no random draw). The dataset is named by
a hash of its contents (``data:1a2b3c4d5e6f``), so run keys change when the data does and a
rerun on the same data reuses its runs.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x, y = rng.normal(size=(100, 5)).astype("float32"), rng.integers(0, 3, 100)
>>> data = as_dataset((x, y, x[:20], y[:20]))
>>> data.name.startswith("data:"), len(data.train), len(data.val), data.in_shape, data.n_classes
(True, 90, 10, (5,), 3)
>>> as_dataset((x, y[:50], x, y))
Traceback (most recent call last):
...
initlab.errors.DataError: Your data: x_train has 100 rows but y_train has 50; give one label per row.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

from initlab.data.tensors import Dataset, Split
from initlab.errors import DataError

VAL_FRACTION = 0.1
FORMS = (
    "a Dataset, (x_train, y_train, x_test, y_test) arrays or tensors, or "
    "(train, test) torch Datasets of (x, label) pairs"
)
_REGISTERED: dict[str, Dataset] = {}


def as_dataset(data: Any, name: str = "data") -> Dataset:
    """``data`` as a :class:`Dataset` (see :data:`FORMS`), checked, with one-line errors."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 4:
        return from_arrays(*data, name=name)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        (x_train, y_train), (x_test, y_test) = (_from_torch(d, part) for d, part in
                                                zip(data, ("train", "test")))  # fmt: skip
        return from_arrays(x_train, y_train, x_test, y_test, name=name)
    raise DataError(f"Your data is a {type(data).__name__}; give {FORMS}.")


def from_arrays(x_train, y_train, x_test, y_test, *, name: str = "data") -> Dataset:
    """Build a Dataset from arrays; uint8 inputs are images scaled by 1/255 when used."""
    xs = {"x_train": _tensor(x_train, "x_train"), "x_test": _tensor(x_test, "x_test")}
    ys = {"y_train": _labels(y_train, "y_train"), "y_test": _labels(y_test, "y_test")}
    for part in ("train", "test"):
        x, y = xs[f"x_{part}"], ys[f"y_{part}"]
        if x.shape[0] != y.shape[0]:
            raise DataError(f"Your data: x_{part} has {x.shape[0]} rows but y_{part} has "
                            f"{y.shape[0]}; give one label per row.")  # fmt: skip
    x_train, x_test = xs["x_train"], xs["x_test"]
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"Your data: x_train rows have shape {tuple(x_train.shape[1:])} but "
                        f"x_test rows {tuple(x_test.shape[1:])}; they must match.")  # fmt: skip
    if x_train.dtype != x_test.dtype:
        x_test = x_test.to(x_train.dtype)
    y_train, y_test = ys["y_train"], ys["y_test"]
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    if n_classes < 2:
        raise DataError("Your data: the labels hold one class only; a classifier needs two.")
    n_val = max(1, int(len(y_train) * VAL_FRACTION))
    if len(y_train) - n_val < 1:
        raise DataError(f"Your data: {len(y_train)} training rows are too few to carve a "
                        "validation split from; give at least 2.")  # fmt: skip
    divisor = 255.0 if x_train.dtype == torch.uint8 else 1.0
    digest = _digest(x_train, y_train, x_test, y_test)
    cut = len(y_train) - n_val
    return Dataset(
        name=f"{name}:{digest}",
        train=Split(x_train[:cut], y_train[:cut], divisor),
        val=Split(x_train[cut:], y_train[cut:], divisor),
        test=Split(x_test, y_test, divisor),
        n_classes=n_classes,
        in_shape=tuple(int(s) for s in x_train.shape[1:]),
        source="given by the caller",
        split_note=f"validation: the last {n_val} of the {len(y_train)} training rows",
    )


def register(data: Dataset) -> str:
    """Make ``load(data.name)`` return ``data`` in this process; returns the name."""
    _REGISTERED[data.name] = data
    return data.name


def registered(name: str) -> Dataset | None:
    """The dataset :func:`register` holds under ``name``, if any."""
    return _REGISTERED.get(name)


def _tensor(x, what: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.ndim < 2 or t.shape[0] == 0:
        raise DataError(f"Your data: {what} has shape {tuple(t.shape)}; give (rows, features...).")
    if t.dtype == torch.uint8:
        return t.contiguous()
    if not t.dtype.is_floating_point:
        raise DataError(f"Your data: {what} is {t.dtype}; give float inputs (or uint8 images).")
    return t.to(torch.float32).contiguous()


def _labels(y, what: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
    if t.ndim != 1:
        raise DataError(f"Your data: {what} has shape {tuple(t.shape)}; give one integer "
                        "class label per row (0..C-1), not one-hot rows.")  # fmt: skip
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        if t.dtype == torch.bool or not torch.equal(t, t.round()):
            raise DataError(f"Your data: {what} holds {t.dtype} values; give integer class "
                            "labels 0..C-1.")  # fmt: skip
    t = t.to(torch.int64)
    if len(t) and int(t.min()) < 0:
        raise DataError(f"Your data: {what} has the label {int(t.min())}; labels are 0..C-1.")
    return t


def _from_torch(dataset, part: str) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        rows = [dataset[i] for i in range(len(dataset))]
    except TypeError:
        raise DataError(f"Your data: the {part} part is a {type(dataset).__name__}; give "
                        f"{FORMS}.") from None  # fmt: skip
    if not rows:
        raise DataError(f"Your data: the {part} Dataset is empty.")
    xs = torch.stack([torch.as_tensor(r[0]) for r in rows])
    ys = torch.as_tensor([int(r[1]) for r in rows])
    return xs, ys


def _digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:12]
