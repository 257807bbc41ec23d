"""The stacked model against PyTorch itself: K plain models, one after another."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from initlab.models import StackedModel, build


def plain_and_stacked(arch, K, in_shape=(1, 8, 8), **kwargs):
    torch.manual_seed(0)  # test-only: varied PyTorch-default weights for the K models
    models = [
        build(arch, activation="relu", in_shape=in_shape, n_classes=10, **kwargs) for _ in range(K)
    ]
    plain = [copy.deepcopy(m) for m in models]
    return plain, StackedModel(models, in_shape=in_shape)


@pytest.mark.parametrize(
    "arch, kwargs, groups",
    [
        ("mlp:32x3", {}, 1),
        ("mlp:32x3", {}, 3),
        ("mlp:32,16", {"bias": False, "batchnorm": True}, 2),
        ("cnn:4,8", {}, 1),
        ("cnn:4,8,dense=16", {"batchnorm": True}, 3),
    ],
)
def test_forward_backward_and_buffers_match_plain_models(arch, kwargs, groups, gen):
    K = 6
    plain, stack = plain_and_stacked(arch, K, **kwargs)
    assert stack.mode == "batched"
    x = torch.rand(groups, 16, 1, 8, 8, generator=gen)
    y = torch.randint(0, 10, (groups, 16), generator=gen)
    logits = stack(x)  # (K, B, 10)
    losses = F.cross_entropy(logits.flatten(0, 1), y.repeat_interleave(K // groups, 0).flatten(),
                             reduction="none").view(K, -1).mean(1)  # fmt: skip
    losses.sum().backward()
    for k, model in enumerate(plain):
        g = k // (K // groups)
        out = model(x[g])
        torch.testing.assert_close(logits[k], out, rtol=1e-6, atol=1e-6)
        F.cross_entropy(out, y[g]).backward()
        for name, p in model.named_parameters():
            torch.testing.assert_close(stack.params[name].grad[k], p.grad, rtol=1e-5, atol=1e-6)
        for name, b in model.named_buffers():  # batch-norm running statistics
            torch.testing.assert_close(stack.buffers[name][k], b)
        model.eval()
        torch.testing.assert_close(
            stack(x[g : g + 1], train=False)[k], model(x[g]), rtol=1e-6, atol=1e-6
        )


def test_member_state_round_trip():
    plain, stack = plain_and_stacked("mlp:16,batchnorm=true", 3)
    for k in range(3):
        rebuilt = stack.member_model(k)
        for (n, a), (_, b) in zip(
            plain[k].state_dict().items(), rebuilt.state_dict().items(), strict=True
        ):
            assert torch.equal(a, b), n


def test_nan_in_one_member_stays_there(gen):
    plain, stack = plain_and_stacked("cnn:4,dense=8,batchnorm=true", 4)
    with torch.no_grad():
        stack.params["0.weight"][1].fill_(float("nan"))
    x = torch.rand(1, 8, 1, 8, 8, generator=gen)
    logits = stack(x)
    logits.sum().backward()
    finite = [
        bool(torch.isfinite(stack.params[n].grad[k]).all())
        for k in range(4)
        for n in ("0.weight", "5.weight")
    ]
    assert finite == [True, True, False, False, True, True, True, True]
    assert torch.isfinite(logits[[0, 2, 3]]).all() and not torch.isfinite(logits[1]).any()


def test_dropout_masks_come_from_each_members_generator():
    _, stack = plain_and_stacked("mlp:64,dropout=0.5", 3)
    x = torch.rand(1, 32, 1, 8, 8, generator=torch.Generator().manual_seed(1))

    def gens(seeds):
        return [torch.Generator().manual_seed(s) for s in seeds]

    a = stack(x, generators=gens([1, 2, 3]))
    b = stack(x, generators=gens([1, 2, 3]))
    c = stack(x, generators=gens([1, 9, 3]))
    assert torch.equal(a, b)
    assert torch.equal(a[0], c[0]) and torch.equal(a[2], c[2]) and not torch.equal(a[1], c[1])
    # a lone rerun of member 1 (a stack of one) draws the same mask
    alone = StackedModel([stack.member_model(1)], in_shape=(1, 8, 8))
    torch.testing.assert_close(alone(x, generators=gens([2]))[0], a[1])
    assert torch.equal(stack(x, train=False), stack(x, train=False))  # no dropout in eval
    with pytest.raises(ValueError, match="generator"):
        stack(x)


def test_vmap_for_user_models_that_are_not_sequential(gen):
    plain, stack = plain_and_stacked("model_zoo.factories:residual", 4)
    assert stack.mode == "vmap" and "not an nn.Sequential" in stack.unstackable_reason
    x = torch.rand(2, 8, 1, 8, 8, generator=gen)
    logits = stack(x)
    logits.square().sum().backward()
    for k, model in enumerate(plain):
        out = model(x[k // 2])
        torch.testing.assert_close(logits[k], out)
        out.square().sum().backward()
        torch.testing.assert_close(stack.params["mid.weight"].grad[k], model.mid.weight.grad)


def test_member_loop_when_vmap_cannot_trace(gen):
    plain, stack = plain_and_stacked("model_zoo.factories:noisy", 3)
    assert stack.mode == "loop"
    x = torch.rand(1, 8, 1, 8, 8, generator=gen)
    for k, model in enumerate(plain):
        model.eval()
        torch.testing.assert_close(stack(x, train=False)[k], model(x[0]))
    state = torch.get_rng_state()
    out = stack(x, generators=[torch.Generator().manual_seed(s) for s in (1, 2, 3)])
    again = stack(x, generators=[torch.Generator().manual_seed(s) for s in (1, 2, 3)])
    assert torch.equal(out, again)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is left as it was
