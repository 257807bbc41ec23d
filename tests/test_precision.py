"""bf16 training: autocast matmuls with fp32 weights and loss, against a plain loop under the
same autocast (a tolerance, not bit identity); fp32 runs keep their keys and numbers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from initlab.cli import main
from initlab.data import load
from initlab.errors import ConfigError
from initlab.initializers import init_
from initlab.models.specs import build
from initlab.train import BatchOrder, Member, init_generator
from initlab.train.controls import TrainControls
from initlab.train.trainer import train_members

pytestmark = pytest.mark.usefixtures("one_thread")
STEPS, BATCH, LR = 60, 32, 0.1


def _stack(data, precision):
    return train_members(
        [Member("he_normal", 0), Member("lecun_normal", 0)], data=data, arch="mlp:64x2",
        activation="relu", optimizer="sgd", lr=LR, batch_size=BATCH, steps=STEPS,
        eval_every=STEPS, target_loss=0.0, controls=TrainControls(precision=precision),
    )  # fmt: skip


def _plain_bf16(data, init):
    model = build("mlp:64x2", activation="relu", in_shape=data.in_shape, n_classes=data.n_classes)
    init_(model, init, generator=init_generator(init, 0))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    order, losses = BatchOrder([0], n=len(data.train), batch_size=BATCH), []
    for t in range(STEPS):
        idx = order.indices(t)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(data.train.features(idx))
        assert logits.dtype == torch.bfloat16 and model[1].weight.dtype == torch.float32
        loss = F.cross_entropy(logits.float(), data.train.labels(idx))
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses


def test_bf16_stack_tracks_a_plain_bf16_loop_and_differs_from_fp32():
    data = load("blobs")
    bf16, fp32 = _stack(data, "bf16"), _stack(data, "fp32")
    for k, init in enumerate(("he_normal", "lecun_normal")):
        got, want = bf16[k].metrics["train_loss"].values, _plain_bf16(data, init)
        assert max(abs(a - b) for a, b in zip(got, want)) < 0.05  # bf16 rounding, 60 steps
        exact = fp32[k].metrics["train_loss"].values
        assert got != exact  # autocast really ran in bf16
        assert (
            bf16[k].config.extra["precision"] == "bf16" and "precision" not in fp32[k].config.extra
        )
        assert bf16[k].test_accuracy == pytest.approx(fp32[k].test_accuracy, abs=0.05)


def test_fp32_is_the_default_and_adds_nothing_to_the_key():
    assert TrainControls().to_extra() == {} and TrainControls(precision="32-true").to_extra() == {}
    assert TrainControls(precision="bf16-mixed").to_extra() == {"precision": "bf16"}
    with pytest.raises(ConfigError, match="allowed: fp32, bf16"):
        TrainControls(precision="fp16").canonical()


def test_cli_precision_option(run_cli, tmp_path):
    code, _, err = run_cli(["compare", "--dataset", "blobs", "--precision", "fp16",
                            "--out", str(tmp_path / "bad")])  # fmt: skip
    assert code == 2 and "fp16" in err and len(err.strip().splitlines()) == 1
    main(["compare", "--dataset", "blobs", "--arch", "mlp:16", "--steps", "20", "--seeds", "1",
          "--inits", "he_normal", "--precision", "bf16-mixed", "--no-report",
          "--out", str(tmp_path / "ok")])  # fmt: skip
    assert '"precision": "bf16"' in (tmp_path / "ok" / "config.json").read_text()


def test_bf16_without_a_hardware_path_is_said_in_one_line():
    from initlab.train.precision import bf16_note

    assert bf16_note("fp32", "cpu") is None
    note = bf16_note("bf16", "cpu")
    assert (note is None) == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if note is not None:
        assert "\n" not in note and "--precision fp32" in note
