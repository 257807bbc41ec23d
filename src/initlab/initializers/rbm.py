"""A restricted Boltzmann machine trained by contrastive divergence, after Hinton's
"A Practical Guide to Training Restricted Boltzmann Machines" (UTML TR 2010-003).

Choices from the guide (section numbers in brackets):
- hidden states driven by data are sampled; the last hidden step and every visible
  reconstruction use probabilities / means, not samples [3.1-3.3]; data statistics use
  the hidden probabilities [3.3];
- weights N(0, 0.01^2), hidden biases 0, visible biases log(p / (1 - p)) of each unit's
  on-fraction (bernoulli) or the data mean (gaussian) [8];
- momentum 0.5 for the first 5 epochs, then 0.9 [9]; L2 weight decay 2e-4 on weights
  only [10]; gaussian visible units assume unit-variance data and a smaller lr [13.2].
Persistent CD (Tieleman 2008) keeps one fantasy chain of ``batch_size`` particles whose
visible states are sampled, so it is a proper Markov chain.

Every draw comes from the given generator: CD-1 draws exactly one ``torch.rand`` of shape
``[batch, n_hidden]`` per update (the hidden sample), which the tests replay by hand.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from initlab.errors import InitSpecError, unknown_name

VISIBLE_UNITS = ("bernoulli", "gaussian")
MOMENTUM_SWITCH_EPOCH = 5  # Hinton's code: momentum 0.5 before this epoch, then 0.9


def check_visible(visible: str) -> str:
    """``visible`` when it is one of :data:`VISIBLE_UNITS`, else a one-line InitSpecError."""
    if visible not in VISIBLE_UNITS:
        raise InitSpecError(unknown_name("visible unit type", visible, VISIBLE_UNITS))
    return visible


def _rand(shape, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    u = torch.rand(shape, generator=generator, device=generator.device, dtype=like.dtype)
    return u.to(like.device)


def _randn(shape, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    z = torch.randn(shape, generator=generator, device=generator.device, dtype=like.dtype)
    return z.to(like.device)


@dataclass
class RBM:
    """Weights ``[n_hidden, n_visible]`` (the layout of ``nn.Linear.weight``) and biases.

    >>> g = torch.Generator().manual_seed(0)
    >>> rbm = RBM.for_data(4, torch.rand(10, 6, generator=g), "bernoulli", g)
    >>> rbm.hidden_prob(torch.ones(2, 6)).shape
    torch.Size([2, 4])
    """

    weight: torch.Tensor
    visible_bias: torch.Tensor
    hidden_bias: torch.Tensor
    visible: str = "bernoulli"
    velocity: list[torch.Tensor] = field(default_factory=list)  # momentum buffers W, b, c

    def __post_init__(self) -> None:
        check_visible(self.visible)
        if not self.velocity:
            self.velocity = [torch.zeros_like(t) for t in self.params()]

    @classmethod
    def for_data(
        cls, n_hidden: int, data: torch.Tensor, visible: str, generator: torch.Generator,
        weight_std: float = 0.01,
    ) -> RBM:  # fmt: skip
        """An RBM initialized as the guide says, for ``data`` of shape ``[N, n_visible]``."""
        check_visible(visible)
        n_visible = data.shape[1]
        weight = _randn((n_hidden, n_visible), data, generator) * weight_std
        mean = data.mean(0)
        if visible == "bernoulli":
            p = mean.clamp(1e-3, 1 - 1e-3)  # units never on would get -inf
            visible_bias = torch.log(p / (1 - p))
        else:
            visible_bias = mean.clone()
        hidden_bias = torch.zeros(n_hidden, dtype=data.dtype, device=data.device)
        return cls(weight, visible_bias, hidden_bias, visible)

    def params(self) -> list[torch.Tensor]:
        """Weight, visible bias and hidden bias: the order of ``velocity``."""
        return [self.weight, self.visible_bias, self.hidden_bias]

    def hidden_prob(self, v: torch.Tensor) -> torch.Tensor:
        """p(h = 1 | v) = sigmoid(v W^T + c)."""
        return torch.sigmoid(v @ self.weight.T + self.hidden_bias)

    def visible_mean(self, h: torch.Tensor) -> torch.Tensor:
        """E[v | h]: sigmoid(h W + b) for bernoulli units, h W + b for unit-variance gaussian."""
        pre = h @ self.weight + self.visible_bias
        return torch.sigmoid(pre) if self.visible == "bernoulli" else pre

    def sample_visible(self, mean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A visible sample given its ``mean``: 0/1 draws for bernoulli units, mean + N(0, 1)
        noise for gaussian ones."""
        if self.visible == "bernoulli":
            return (_rand(mean.shape, mean, generator) < mean).to(mean.dtype)
        return mean + _randn(mean.shape, mean, generator)


def sample_bernoulli(p: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Binary states with P(1) = p, from one ``torch.rand`` of p's shape."""
    return (_rand(p.shape, p, generator) < p).to(p.dtype)


@dataclass
class CDStep:
    """Gradient estimates (data minus model statistics, averaged over the batch)."""

    grad_weight: torch.Tensor
    grad_visible_bias: torch.Tensor
    grad_hidden_bias: torch.Tensor
    recon_error: float  # mean squared error of E[v | h sampled from the data], per unit
    chain: torch.Tensor | None = None  # the persistent chain's new visible state


def cd_gradient(
    rbm: RBM, v0: torch.Tensor, k: int, generator: torch.Generator,
    chain: torch.Tensor | None = None,
) -> CDStep:  # fmt: skip
    """CD-k gradient on batch ``v0``; with ``chain`` (PCD) the negative phase continues it."""
    ph0 = rbm.hidden_prob(v0)
    h0 = sample_bernoulli(ph0, generator)
    recon = rbm.visible_mean(h0)
    if chain is None:
        h, v = h0, recon
        for step in range(k):
            v = recon if step == 0 else rbm.visible_mean(h)
            ph = rbm.hidden_prob(v)
            if step < k - 1:
                h = sample_bernoulli(ph, generator)
        new_chain = None
    else:
        v = chain
        for _ in range(k):
            h = sample_bernoulli(rbm.hidden_prob(v), generator)
            v = rbm.sample_visible(rbm.visible_mean(h), generator)
        ph = rbm.hidden_prob(v)
        new_chain = v
    n0, nk = v0.shape[0], v.shape[0]
    return CDStep(
        grad_weight=ph0.T @ v0 / n0 - ph.T @ v / nk,
        grad_visible_bias=v0.mean(0) - v.mean(0),
        grad_hidden_bias=ph0.mean(0) - ph.mean(0),
        recon_error=float(((v0 - recon) ** 2).mean()),
        chain=new_chain,
    )


def apply_update(rbm: RBM, step: CDStep, lr: float, momentum: float, weight_decay: float) -> None:
    """velocity = momentum * velocity + lr * (gradient - weight_decay * W); param += velocity.

    Weight decay applies to the weights only, never the biases (guide section 10).
    """
    grads = [
        step.grad_weight - weight_decay * rbm.weight,
        step.grad_visible_bias,
        step.grad_hidden_bias,
    ]
    for param, vel, grad in zip(rbm.params(), rbm.velocity, grads):
        vel.mul_(momentum).add_(grad, alpha=lr)
        param.add_(vel)


@dataclass(frozen=True)
class CDSettings:
    """How to train one RBM; the defaults are the guide's."""

    epochs: int = 5
    lr: float = 0.1
    k: int = 1
    batch_size: int = 100
    momentum: float = 0.9
    initial_momentum: float = 0.5
    weight_decay: float = 2e-4
    persistent: bool = False

    def __post_init__(self) -> None:
        for key in ("epochs", "k", "batch_size"):
            if getattr(self, key) < 1:
                raise InitSpecError(f"RBM {key} must be >= 1, got {getattr(self, key)}.")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InitSpecError(f"RBM lr must be a positive number, got {self.lr}.")
        for key in ("momentum", "initial_momentum"):
            if not 0 <= getattr(self, key) < 1:
                raise InitSpecError(f"RBM {key} must be in [0, 1), got {getattr(self, key)}.")
        if self.weight_decay < 0:
            raise InitSpecError(f"RBM weight_decay must be >= 0, got {self.weight_decay}.")


def train_rbm(
    rbm: RBM, data: torch.Tensor, settings: CDSettings, generator: torch.Generator,
    on_batch: Callable[[int, float], None] | None = None,
) -> list[float]:  # fmt: skip
    """Train ``rbm`` in place on ``data`` ``[N, n_visible]``; the mean reconstruction error
    of each epoch (measured on each batch before its update, as Hinton's code does).

    Batches come from ``torch.randperm(N, generator=generator)`` each epoch.
    ``on_batch(epoch, error)`` is called after every update (for progress bars).
    """
    n = data.shape[0]
    chain = None
    errors = []
    for epoch in range(settings.epochs):
        momentum = settings.initial_momentum if epoch < MOMENTUM_SWITCH_EPOCH else settings.momentum
        order = torch.randperm(n, generator=generator, device=generator.device).to(data.device)
        total, count = 0.0, 0
        for start in range(0, n, settings.batch_size):
            batch = data[order[start : start + settings.batch_size]]
            if settings.persistent and chain is None:
                chain = batch.clone()  # particles start at data, then run free
            step = cd_gradient(rbm, batch, settings.k, generator, chain)
            chain = step.chain
            apply_update(rbm, step, settings.lr, momentum, settings.weight_decay)
            total += step.recon_error * len(batch)
            count += len(batch)
            if on_batch is not None:
                on_batch(epoch, step.recon_error)
        errors.append(total / count)
    return errors
