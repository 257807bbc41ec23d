"""Optimizer specs, and that a stacked optimizer moves each slice as it would alone."""

from __future__ import annotations

import pytest
import torch

from initlab.errors import InitSpecError
from initlab.train.optim import canonical_optimizer, make_optimizer, names


def test_specs_build_torch_optimizers():
    p = [torch.zeros(2, requires_grad=True)]
    sgd = make_optimizer("sgd", p, lr=0.1)
    assert type(sgd) is torch.optim.SGD and sgd.defaults["momentum"] == 0.0
    assert sgd.defaults["foreach"] is True
    assert make_optimizer("momentum", p, lr=0.1).defaults["momentum"] == 0.9
    nesterov = make_optimizer("nesterov:momentum=0.8", p, lr=0.1)
    assert nesterov.defaults["nesterov"] is True and nesterov.defaults["momentum"] == 0.8
    adam = make_optimizer("adam:betas=0.89,0.999,eps=1e-7", p, lr=1e-3)
    assert adam.defaults["betas"] == (0.89, 0.999) and adam.defaults["eps"] == 1e-7
    assert {"sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad"} <= set(names())


def test_canonical_specs():
    assert canonical_optimizer("SGD") == "sgd"
    assert canonical_optimizer("momentum:momentum=0.9") == "momentum"
    assert canonical_optimizer("adam:eps=1e-7,betas=0.9,0.99") == "adam:betas=0.9,0.99,eps=1e-07"


@pytest.mark.parametrize(
    "spec, lr, message",
    [
        ("adamm", 0.1, "Did you mean 'adam'"),
        ("adam:beta=0.9", 0.1, "Did you mean 'betas'"),
        ("adam:betas=0.9", 0.1, "must be like"),
        ("adam:betas=1.5,0.999", 0.1, "Invalid beta"),
        ("sgd:lr=0.1", 0.1, "learning rate with --lr"),
        ("sgd", -0.1, "must be a positive number"),
        ("sgd:nesterov=yes,momentum=0", 0.1, "Nesterov"),
    ],
)
def test_bad_optimizer_specs(spec, lr, message):
    with pytest.raises(InitSpecError, match=message) as info:
        make_optimizer(spec, [torch.zeros(2, requires_grad=True)], lr=lr)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "spec", ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad"]
)
def test_stacked_step_equals_lone_steps(spec, gen):
    """Element-wise optimizers: one optimizer over (K, ...) tensors == K separate ones."""
    K = 4
    stacked = torch.randn(K, 5, 3, generator=gen).requires_grad_()
    lone = [stacked[k].detach().clone().requires_grad_() for k in range(K)]
    opt = make_optimizer(spec, [stacked], lr=0.01)
    opts = [make_optimizer(spec, [p], lr=0.01, foreach=False) for p in lone]
    for _ in range(5):
        grad = torch.randn(K, 5, 3, generator=gen)
        stacked.grad = grad.clone()
        opt.step()
        for k in range(K):
            lone[k].grad = grad[k].clone()
            opts[k].step()
    for k in range(K):
        torch.testing.assert_close(stacked[k], lone[k], rtol=1e-6, atol=1e-7)
