"""Constant, uniform, normal, truncated normal, orthogonal, identity and sparse schemes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from initlab.errors import InitSpecError
from initlab.initializers import distributions as D
from initlab.initializers.registry import TensorScheme, register
from initlab.initializers.schemes import _check_positive


class _Same(TensorScheme):
    """Every entry one value (no draw), so no init of this kind ever breaks symmetry."""

    VALUE: ClassVar[float] = 0.0  # the value of a scheme without a ``value`` option

    def fill_value(self) -> float:
        """The value every entry gets: ``value`` where the scheme has one, else ``VALUE``."""
        return getattr(self, "value", self.VALUE)

    def target_std(self, ctx):
        """0: every entry is the same."""
        return 0.0

    def sample(self, shape, ctx, generator, device, out=None):
        """A float32 tensor filled with :meth:`fill_value` (no draw)."""
        return torch.full(shape, self.fill_value(), dtype=torch.float32, device=device)


@register("zeros")
@dataclass(frozen=True)
class Zeros(_Same):
    formula = "0 everywhere (never breaks symmetry)"


@register("ones")
@dataclass(frozen=True)
class Ones(_Same):
    formula = "1 everywhere (never breaks symmetry)"
    VALUE = 1.0


@register("constant")
@dataclass(frozen=True)
class Constant(_Same):
    formula = "value everywhere (never breaks symmetry)"
    value: float = 0.0


@register("uniform")
@dataclass(frozen=True)
class Uniform(TensorScheme):
    formula = "U(a, b)"
    a: float = 0.0
    b: float = 1.0

    def __post_init__(self) -> None:
        if not self.a < self.b:
            raise InitSpecError(
                f"Bad bounds for 'uniform': need a < b, got a={self.a}, b={self.b}."
            )

    def target_std(self, ctx):
        """(b - a) / sqrt(12), the std of U(a, b)."""
        return (self.b - self.a) / math.sqrt(12.0)

    def sample(self, shape, ctx, generator, device, out=None):
        """U(a, b) draws."""
        return D.uniform(shape, self.a, self.b, generator, device, out)


@register("normal")
@dataclass(frozen=True)
class Normal(TensorScheme):
    formula = "N(mean, std^2)"
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        _check_positive(self.name, "std", self.std)

    def target_std(self, ctx):
        """``std``."""
        return self.std

    def sample(self, shape, ctx, generator, device, out=None):
        """N(mean, std^2) draws."""
        return D.normal(shape, self.mean, self.std, generator, device, out)


@register("trunc_normal")
@dataclass(frozen=True)
class TruncNormal(TensorScheme):
    """Normal truncated to [mean + a*std, mean + b*std]: ``a`` and ``b`` are in units of std
    (as in Keras/JAX; ``torch.nn.init.trunc_normal_`` takes absolute bounds). With
    ``correct_variance`` the std is divided by the truncated std so the realized std is ``std``
    (what Keras' VarianceScaling does; Keras' TruncatedNormal is ``truncated_normal``).
    """

    formula = "N(mean, std^2) cut to [a, b] std; std / std_trunc(a, b) when correct_variance"
    mean: float = 0.0
    std: float = 1.0
    a: float = -2.0
    b: float = 2.0
    correct_variance: bool = True

    def __post_init__(self) -> None:
        _check_positive(self.name, "std", self.std)
        if not self.a < self.b:
            raise InitSpecError(
                f"Bad bounds for 'trunc_normal': need a < b (in units of std), got a={self.a}, "
                f"b={self.b}."
            )

    def _draw_std(self) -> float:
        cut = D.truncated_std(self.a, self.b)
        return self.std / cut if self.correct_variance else self.std

    def target_std(self, ctx):
        """The std after truncation: ``std`` with ``correct_variance``, else less."""
        return self._draw_std() * D.truncated_std(self.a, self.b)

    def sample(self, shape, ctx, generator, device, out=None):
        """Truncated normal draws (the draw std corrected when ``correct_variance``)."""
        return D.truncated_normal(
            shape, self.mean, self._draw_std(), self.a, self.b, generator, device
        )


# Keras 3's RandomNormal, TruncatedNormal and RandomUniform: Keras' names, option names
# (``stddev``, ``minval``, ``maxval``, as in their get_config) and defaults; each draws as
# the torch-named scheme it equals (``same()``), so the two can never drift apart.


class _KerasNamed(TensorScheme):
    def same(self) -> TensorScheme:
        """The torch-named scheme this one equals."""
        raise NotImplementedError

    def target_std(self, ctx):
        """The std of :meth:`same`."""
        return self.same().target_std(ctx)

    def sample(self, shape, ctx, generator, device, out=None):
        """The draws of :meth:`same`."""
        return self.same().sample(shape, ctx, generator, device, out)


@register("random_normal")
@dataclass(frozen=True)
class RandomNormal(_KerasNamed):
    """Keras' ``RandomNormal``: N(mean, stddev^2), by default stddev 0.05 (not PyTorch's 1)."""

    formula = "N(mean, stddev^2), Keras defaults mean=0, stddev=0.05"
    mean: float = 0.0
    stddev: float = 0.05

    def __post_init__(self) -> None:
        _check_positive(self.name, "stddev", self.stddev)

    def same(self) -> TensorScheme:
        """``normal:mean=...,std=stddev``."""
        return Normal(self.mean, self.stddev)


@register("truncated_normal")
@dataclass(frozen=True)
class TruncatedNormal(_KerasNamed):
    """Keras' ``TruncatedNormal``: N(mean, stddev^2) cut at mean +- 2 stddev, **not** variance
    corrected, so the realized std is 0.8796 * stddev (0.044 for the default 0.05). For a
    corrected one use ``trunc_normal`` (or ``variance_scaling:distribution=truncated_normal``).
    """

    formula = "N(mean, stddev^2) cut to mean +- 2 stddev (uncorrected), Keras stddev=0.05"
    mean: float = 0.0
    stddev: float = 0.05

    def __post_init__(self) -> None:
        _check_positive(self.name, "stddev", self.stddev)

    def same(self) -> TensorScheme:
        """``trunc_normal`` at +-2 std without the variance correction."""
        return TruncNormal(self.mean, self.stddev, -2.0, 2.0, correct_variance=False)


@register("random_uniform")
@dataclass(frozen=True)
class RandomUniform(_KerasNamed):
    """Keras' ``RandomUniform``: U(minval, maxval), by default U(-0.05, 0.05)."""

    formula = "U(minval, maxval), Keras defaults minval=-0.05, maxval=0.05"
    minval: float = -0.05
    maxval: float = 0.05

    def __post_init__(self) -> None:
        if not self.minval < self.maxval:
            raise InitSpecError(
                f"Bad bounds for 'random_uniform': need minval < maxval, got "
                f"minval={self.minval}, maxval={self.maxval}."
            )

    def same(self) -> TensorScheme:
        """``uniform:a=minval,b=maxval``."""
        return Uniform(self.minval, self.maxval)


@register("orthogonal")
@dataclass(frozen=True)
class Orthogonal(TensorScheme):
    """(Semi-)orthogonal rows or columns of the weight flattened to [out, rest], times gain."""

    formula = "gain * Q, QR of a N(0,1) [out, rest] matrix (sign-fixed)"
    gain: float = 1.0

    def __post_init__(self) -> None:
        _check_positive(self.name, "gain", self.gain)

    def target_std(self, ctx):
        """gain / sqrt(max(rows, cols)): the entry std of unit-norm rows or columns."""
        # rows (or columns) have unit norm, so each entry has variance 1 / max(rows, cols)
        rows = ctx.shape[0] if ctx.shape else 1
        cols = math.prod(ctx.shape[1:]) if len(ctx.shape) > 1 else 1
        return self.gain / math.sqrt(max(rows, cols))

    def sample(self, shape, ctx, generator, device, out=None):
        """``gain`` times the Q of a N(0, 1) matrix's QR (signs fixed by R's diagonal), in
        ``shape``; needs at least 2 dims."""
        if len(shape) < 2:
            raise InitSpecError(
                f"'orthogonal' needs a weight with >= 2 dims, got shape {tuple(shape)}."
            )
        rows = shape[0]
        cols = math.prod(shape[1:])
        flat = D.normal((rows, cols), 0.0, 1.0, generator, device)
        if rows < cols:
            flat = flat.T
        q, r = torch.linalg.qr(flat)
        q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).contiguous()


@register("identity", aliases=("eye", "dirac"))
@dataclass(frozen=True)
class Identity(TensorScheme):
    """Eye for 2-d weights, Dirac delta for convolutions (per group), times gain."""

    formula = "gain * I (Linear) or gain * dirac (Conv)"
    gain: float = 1.0

    def target_std(self, ctx):
        """None: an identity has no std to aim for."""
        return None

    def sample(self, shape, ctx, generator, device, out=None):
        """``gain`` times the identity (2-d) or a Dirac kernel per conv group (3..5-d)."""
        out = torch.zeros(shape, dtype=torch.float32, device=device)
        if len(shape) == 2:
            torch.nn.init.eye_(out)
        elif 3 <= len(shape) <= 5:
            groups = getattr(ctx.module, "groups", 1) if ctx.module is not None else 1
            if shape[0] % groups:
                groups = 1
            torch.nn.init.dirac_(out, groups=groups)
        else:
            raise InitSpecError(
                f"'identity' needs a 2-d (Linear) or 3..5-d (Conv) weight, got shape {tuple(shape)}."
            )
        return out * self.gain


@register("sparse")
@dataclass(frozen=True)
class Sparse(TensorScheme):
    """Martens (2010): in each column a ``sparsity`` fraction of rows is zero, the rest
    N(0, std^2). Unlike ``torch.nn.init.sparse_`` every draw uses the given generator."""

    formula = "N(0, std^2) with ceil(sparsity * rows) zeros per column"
    sparsity: float = 0.1
    std: float = 0.01

    def __post_init__(self) -> None:
        if not 0.0 <= self.sparsity <= 1.0:
            raise InitSpecError(f"Bad sparsity={self.sparsity} for 'sparse': must be in [0, 1].")
        _check_positive(self.name, "std", self.std)

    def zeros_per_column(self, rows: int) -> int:
        """How many of the ``rows`` entries of each column are zero: ceil(sparsity * rows)."""
        return int(math.ceil(self.sparsity * rows))

    def target_std(self, ctx):
        """The std of the whole matrix, zeros included (None unless 2-d)."""
        if len(ctx.shape) != 2:
            return None
        rows = ctx.shape[0]
        return self.std * math.sqrt(1.0 - self.zeros_per_column(rows) / rows)

    def sample(self, shape, ctx, generator, device, out=None):
        """N(0, std^2) draws with ``zeros_per_column`` random entries of each column set to 0."""
        if len(shape) != 2:
            raise InitSpecError(f"'sparse' needs a 2-d weight, got shape {tuple(shape)}.")
        rows, cols = shape
        values = D.normal(shape, 0.0, self.std, generator, device)
        # a random permutation of the rows of each column: argsort of uniform keys
        keys = D.uniform(shape, 0.0, 1.0, generator, device)
        order = keys.argsort(dim=0)
        zero = order[: self.zeros_per_column(rows)]
        values.scatter_(0, zero, 0.0)
        return values
