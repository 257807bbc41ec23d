"""RBM / DBN pretraining: CD-1 against a hand computation, learning on MNIST, the greedy
stack written into a real network, determinism and errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initlab
from initlab.data import load
from initlab.errors import InitSpecError
from initlab.initializers import pretrain_dbn
from initlab.initializers.rbm import RBM, CDSettings, apply_update, cd_gradient, train_rbm


@pytest.fixture(scope="module")
def mnist():
    return load("mnist")


def flat(split, n, start=0):
    return split.features(slice(start, start + n)).reshape(n, -1)


def sigmoid_net(sizes=(784, 256, 256, 256, 10)):
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


def sig(z):
    return 1.0 / (1.0 + math.exp(-z))


def hand_cd1_update(W, b, c, vel, v0, u, lr, momentum, wd, visible):
    """One CD-1 step written out unit by unit, from the uniform draws ``u`` [batch][hidden]."""
    nh, nv, n = len(W), len(W[0]), len(v0)
    ph0 = [[sig(c[j] + sum(W[j][i] * v0[s][i] for i in range(nv))) for j in range(nh)]
           for s in range(n)]  # fmt: skip
    h0 = [[1.0 if u[s][j] < ph0[s][j] else 0.0 for j in range(nh)] for s in range(n)]
    v1 = []
    for s in range(n):
        pre = [b[i] + sum(h0[s][j] * W[j][i] for j in range(nh)) for i in range(nv)]
        v1.append([sig(p) if visible == "bernoulli" else p for p in pre])
    ph1 = [[sig(c[j] + sum(W[j][i] * v1[s][i] for i in range(nv))) for j in range(nh)]
           for s in range(n)]  # fmt: skip
    gW = [[sum(ph0[s][j] * v0[s][i] - ph1[s][j] * v1[s][i] for s in range(n)) / n
           for i in range(nv)] for j in range(nh)]  # fmt: skip
    gb = [sum(v0[s][i] - v1[s][i] for s in range(n)) / n for i in range(nv)]
    gc = [sum(ph0[s][j] - ph1[s][j] for s in range(n)) / n for j in range(nh)]
    vW, vb, vc = vel
    vW = [[momentum * vW[j][i] + lr * (gW[j][i] - wd * W[j][i]) for i in range(nv)]
          for j in range(nh)]  # fmt: skip
    vb = [momentum * vb[i] + lr * gb[i] for i in range(nv)]
    vc = [momentum * vc[j] + lr * gc[j] for j in range(nh)]
    W = [[W[j][i] + vW[j][i] for i in range(nv)] for j in range(nh)]
    b = [b[i] + vb[i] for i in range(nv)]
    c = [c[j] + vc[j] for j in range(nh)]
    return W, b, c, (vW, vb, vc), h0


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_cd1_update_matches_hand_computation(visible):
    W = [[0.1, -0.2, 0.3], [0.4, 0.0, -0.5]]
    b, c = [0.1, -0.1, 0.2], [0.05, -0.05]
    v0 = (
        [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]
        if visible == "bernoulli"
        else [[0.3, -1.2, 0.8], [1.5, 0.2, -0.4]]
    )
    lr, momentum, wd = 0.5, 0.5, 0.01
    t = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
    rbm = RBM(t(W), t(b), t(c), visible)
    ours, replay = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    vel = ([[0.0] * 3 for _ in range(2)], [0.0] * 3, [0.0] * 2)
    states = set()
    for _ in range(3):  # three steps, so momentum carries a non-zero velocity
        step = cd_gradient(rbm, t(v0), 1, ours)
        apply_update(rbm, step, lr, momentum, wd)
        u = torch.rand((2, 2), generator=replay, dtype=torch.float64).tolist()
        W, b, c, vel, h0 = hand_cd1_update(W, b, c, vel, v0, u, lr, momentum, wd, visible)
        states |= {h for row in h0 for h in row}
        assert torch.allclose(rbm.weight, t(W), atol=1e-6, rtol=0)
        assert torch.allclose(rbm.visible_bias, t(b), atol=1e-6, rtol=0)
        assert torch.allclose(rbm.hidden_bias, t(c), atol=1e-6, rtol=0)
    assert states == {0.0, 1.0}  # both hidden states were drawn: the sampling is exercised
    assert torch.equal(ours.get_state(), replay.get_state())  # one draw per step, no more


@pytest.mark.parametrize(
    "visible, persistent, lr",
    [("bernoulli", False, 0.1), ("bernoulli", True, 0.1), ("gaussian", False, 0.01)],
    ids=["cd1", "pcd", "gaussian"],
)
def test_reconstruction_error_falls_on_mnist(mnist, visible, persistent, lr):
    x = flat(mnist.train, 2000)
    if visible == "gaussian":  # the guide: unit-variance data and a smaller learning rate
        x = (x - x.mean(0)) / (x.std(0) + 0.1)
    g = torch.Generator().manual_seed(0)
    rbm = RBM.for_data(64, x, visible, g)
    settings = CDSettings(epochs=4, lr=lr, batch_size=50, persistent=persistent)
    errors = train_rbm(rbm, x, settings, g)
    print(visible, "persistent" if persistent else "CD-1", "recon error per epoch", errors)
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.75 * errors[0], errors


def test_visible_bias_starts_at_log_odds_and_weights_small():
    x = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 1.0]])
    rbm = RBM.for_data(500, x, "bernoulli", torch.Generator().manual_seed(0))
    assert rbm.visible_bias[0] == pytest.approx(math.log(0.75 / 0.25))
    assert rbm.visible_bias[1] == pytest.approx(math.log(1e-3 / (1 - 1e-3)))  # clipped
    assert float(rbm.weight.std()) == pytest.approx(0.01, rel=0.05)
    assert float(rbm.hidden_bias.abs().max()) == 0


def test_pretrain_dbn_writes_every_hidden_layer_deterministically(mnist):
    x = flat(mnist.train, 600)

    nets = [sigmoid_net((784, 32, 16, 10)) for _ in range(3)]  # nn.Linear() draws globally
    state = torch.random.get_rng_state()

    def run(net, seed):
        initlab.init_(net, "zeros", generator=torch.Generator())
        rep = pretrain_dbn(net, x, epochs=2, lr=0.1, batch_size=50,
                           generator=torch.Generator().manual_seed(seed), progress=False)  # fmt: skip
        return net, rep

    a, rep = run(nets[0], 0)
    b, _ = run(nets[1], 0)
    c, _ = run(nets[2], 1)
    assert torch.equal(torch.random.get_rng_state(), state)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a[0].weight, c[0].weight)
    assert [layer.layer for layer in rep.layers] == ["0", "2"]
    assert [(la.n_visible, la.n_hidden) for la in rep.layers] == [(784, 32), (32, 16)]
    assert all(len(la.recon_error) == 2 for la in rep.layers)
    for i in (0, 2):  # written: no longer zero, biases too
        assert bool(a[i].weight.detach().abs().max() > 0) and bool(
            a[i].bias.detach().abs().max() > 0
        )
    assert bool(a[4].weight.detach().abs().max() == 0)  # the output layer is not pretrained


def test_dbn_scheme_through_init_(mnist):
    x = mnist.train.features(slice(0, 400))  # [N, 1, 28, 28]: the model flattens
    net = nn.Sequential(nn.Flatten(), *sigmoid_net((784, 24, 10)))
    report = initlab.init_(net, "dbn:epochs=2,batch_size=40,progress=false", data=x,
                           generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert report.row("1.weight").scheme.startswith("dbn:")
    assert report.row("3.weight").scheme == "normal:std=0.01"
    assert abs(float(net[3].weight.detach().std()) - 0.01) < 0.003
    assert report.extra["dbn"]["layers"][0]["n_hidden"] == 24
    assert any("reconstruction error" in n for n in report.notes)
    # an iterable of (inputs, labels) batches works the same
    batches = [(x[i : i + 100], None) for i in range(0, 400, 100)]
    net2 = nn.Sequential(nn.Flatten(), *sigmoid_net((784, 24, 10)))
    initlab.init_(net2, initlab.get("dbn:epochs=2,batch_size=40,progress=false"),
                  data=iter(batches), generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert torch.equal(net[1].weight, net2[1].weight)


def test_dbn_notes_non_sigmoid_activations(mnist):
    net = nn.Sequential(nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10))
    rep = pretrain_dbn(net, flat(mnist.train, 100), epochs=1, batch_size=50,
                               generator=torch.Generator().manual_seed(0), progress=False)  # fmt: skip
    assert any("relu" in n for n in rep.notes)


@pytest.mark.parametrize(
    "model, data, match",
    [
        (
            nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 26 * 26, 10)),
            torch.rand(8, 1, 28, 28),
            "plain stack of nn.Linear",
        ),
        (nn.Sequential(nn.Linear(20, 10)), torch.rand(8, 20), "at least two Linear"),
        (sigmoid_net((20, 8, 2)), torch.randn(8, 20), r"data in \[0, 1\]"),
        (sigmoid_net((20, 8, 2)), None, "data="),
    ],
    ids=["conv", "single", "range", "nodata"],
)
def test_dbn_rejects_what_it_cannot_pretrain(model, data, match):
    with pytest.raises(InitSpecError, match=match) as err:
        initlab.init_(model, "dbn:progress=false", data=data, generator=torch.Generator())
    assert "\n" not in str(err.value)


def test_dbn_options_are_checked():
    with pytest.raises(InitSpecError, match="Did you mean 'gaussian'"):
        initlab.get("dbn:visible=gausian")
    with pytest.raises(InitSpecError, match="epochs"):
        initlab.get("dbn:epochs=0")
    with pytest.raises(InitSpecError, match="data-driven"):
        initlab.init_(nn.Linear(3, 2), "normal", rules=[("*", "dbn")], generator=torch.Generator())


@pytest.mark.slow
def test_dbn_beats_small_normal_after_short_fine_tune(mnist):
    """784-256-256-256-10 sigmoid: DBN pretraining vs N(0, 0.01), same SGD, same batches."""
    n = 5000
    x, y = flat(mnist.train, n), mnist.train.labels(slice(0, n))
    xt, yt = flat(mnist.test, 2000), mnist.test.labels(slice(0, 2000))
    results = {}
    for scheme in ("dbn:epochs=3,progress=false", "normal:std=0.01"):
        net = sigmoid_net()
        initlab.init_(net, scheme, data=x if scheme.startswith("dbn") else None,
                      generator=torch.Generator().manual_seed(0))  # fmt: skip
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(5))
        losses = []
        for start in range(0, n, 100):  # one epoch, 50 steps
            idx = order[start : start + 100]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        with torch.no_grad():
            results[scheme] = (sum(losses[-10:]) / 10, F.cross_entropy(net(xt), yt).item())
    dbn, normal = results.values()
    print(f"train loss (last 10 steps) / test loss: dbn {dbn}, N(0,0.01) {normal}")
    assert dbn[0] < normal[0] and dbn[1] < normal[1]
    assert normal[1] > 2.0  # the small normal start has barely moved from chance (ln 10)
