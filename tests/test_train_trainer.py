"""The stacked trainer: keyed randomness, lone reruns, divergence, metrics, errors."""

from __future__ import annotations

import math
import shutil

import pytest
import torch

from initlab.data import load
from initlab.errors import ConfigError
from initlab.train import BatchOrder, Member, train_members
from initlab.train.checkpoint import load_checkpoint

BLOBS = "blobs:features=8,classes=4"


pytestmark = pytest.mark.usefixtures("one_thread")


def run(members, **overrides):
    settings = dict(
        data=load(BLOBS), arch="mlp:32x2", activation="relu", optimizer="sgd", lr=0.05,
        batch_size=32, steps=60, eval_every=20, target_loss=0.5,
    )  # fmt: skip
    settings.update(overrides)
    return train_members(members, **settings)


def losses(record):
    return torch.tensor(record.metrics["train_loss"].values, dtype=torch.float64)


def test_batch_order_is_keyed_by_seed_and_epoch():
    a, b = BatchOrder([0, 1], n=100, batch_size=30), BatchOrder([0, 1], n=100, batch_size=30)
    assert a.per_epoch == 3
    assert torch.equal(a.indices(4), b.indices(4))  # a pure function of (seed, step)
    assert not torch.equal(a.indices(0)[0], a.indices(0)[1])  # seeds differ
    epoch = torch.cat([a.indices(s)[0] for s in range(3)])
    assert len(set(epoch.tolist())) == 90  # no example twice within an epoch
    assert not torch.equal(a.indices(0), a.indices(3))  # a new permutation each epoch
    assert torch.equal(BatchOrder([1], n=100, batch_size=30).indices(5)[0], a.indices(5)[1])


def test_records_follow_member_order_and_lone_reruns_match():
    members = [Member("he_normal", 1), Member("lecun_normal", 0), Member("he_normal", 0),
               Member("lecun_normal", 1)]  # fmt: skip
    records = run(members)
    assert [(r.config.init, r.config.seed) for r in records] == [(m.init, m.seed) for m in members]
    for member, record in zip(members, records, strict=True):
        alone = run([member])[0]
        torch.testing.assert_close(losses(record), losses(alone), rtol=1e-5, atol=1e-7)
        assert record.config == alone.config
    # all inits of one seed saw the same batches, so at step 1 (same data) He and LeCun differ
    # only through their weights; seeds differ through their batches too
    assert records[0].config.key() != records[2].config.key()


def test_uneven_seed_groups_still_match_lone_runs():
    members = [Member("he_normal", 0), Member("he_normal", 1), Member("lecun_normal", 1)]
    records = run(members)
    for member, record in zip(members, records, strict=True):
        torch.testing.assert_close(losses(record), losses(run([member])[0]), rtol=1e-5, atol=1e-7)


def test_metrics_and_headline_numbers():
    (record,) = run([Member("he_normal", 0)], steps=150, eval_every=40, target_loss=0.3)
    train = record.metrics["train_loss"]
    assert train.steps == list(range(1, 151)) and record.metrics["lr"].values == [0.05] * 150
    for name in ("val_loss", "val_acc", "test_loss", "test_acc"):
        assert record.metrics[name].steps == [40, 80, 120, 150]
    assert record.final_train_loss == pytest.approx(sum(train.values[-100:]) / 100)
    assert record.test_accuracy == record.metrics["test_acc"].values[-1] > 0.9
    assert record.test_loss == record.metrics["test_loss"].values[-1]
    first = next(s for s, v in zip(train.steps, train.values, strict=True) if v <= 0.3)
    assert record.steps_to_target == first
    assert record.status == "finished" and record.diverged_step is None
    assert record.config.optimizer == "sgd" and record.config.arch == "mlp:32,32"
    assert record.wall_time > 0


def test_a_diverging_member_is_frozen_and_harms_nobody(tmp_path):
    mnist = load("mnist")
    settings = dict(data=mnist, arch="mlp:100x4", activation="relu", optimizer="momentum",
                    lr=0.1, batch_size=64, steps=30, eval_every=10)  # fmt: skip
    path, early = tmp_path / "ckpt.safetensors", tmp_path / "early.safetensors"

    def keep_step_10(step, total):
        if step == 10:
            shutil.copy(path, early)

    bad, he = run([Member("normal:std=10", 0), Member("he_normal", 0)], **settings,
                  checkpoint_path=path, checkpoint_every=5, on_step=keep_step_10)  # fmt: skip
    _, he_beside_healthy = run([Member("lecun_normal", 0), Member("he_normal", 0)], **settings)
    assert bad.status == "diverged" and 1 <= bad.diverged_step <= 5
    assert not math.isfinite(bad.metrics["train_loss"].values[-1])
    assert bad.metrics["train_loss"].steps[-1] == bad.diverged_step
    assert all(s < bad.diverged_step for s in bad.metrics["val_loss"].steps)
    assert math.isnan(bad.final_train_loss) and math.isnan(bad.test_accuracy)
    # the NaN neighbour changed nothing: He's numbers equal those beside a healthy neighbour
    assert he.status == "finished"
    assert he.metrics == he_beside_healthy.metrics
    # the diverged slice never moved again (momentum would otherwise keep moving it)
    at_10, at_30 = load_checkpoint(early)[0], load_checkpoint(path)[0]
    for name in at_30:
        if name.startswith("param."):
            assert torch.equal(at_10[name][0], at_30[name][0]), name
            assert not torch.equal(at_10[name][1], at_30[name][1]), name


@pytest.mark.parametrize(
    "settings, statuses",
    [  # batch norm buffers, dropout generators and Adam state; a frozen diverged member
        (dict(arch="mlp:32x2,dropout=0.2,batchnorm=true", optimizer="adam", lr=0.05), {"finished"}),
        (dict(arch="mlp:32x2,dropout=0.2", optimizer="momentum", lr=0.5), {"finished", "diverged"}),
    ],
)
def test_resume_is_bit_identical(tmp_path, settings, statuses):
    members = [Member("he_normal", 0), Member("normal:std=30", 0), Member("lecun_normal", 1),
               Member("orthogonal", 1)]  # fmt: skip
    full = run(members, **settings)
    assert {r.status for r in full} == statuses
    path = tmp_path / "ckpt.safetensors"

    class Interrupt(Exception):
        pass

    def stop_at_27(step, total):
        if step == 27:
            raise Interrupt

    with pytest.raises(Interrupt):
        run(members, **settings, checkpoint_path=path, checkpoint_every=10, on_step=stop_at_27)
    assert load_checkpoint(path)[1]["step"] == 20
    resumed = run(members, **settings, checkpoint_path=path, checkpoint_every=10)
    calls = []
    again = run(members, **settings, checkpoint_path=path, on_step=lambda s, t: calls.append(s))
    assert calls == []  # a finished checkpoint trains nothing
    for a, b, c in zip(full, resumed, again, strict=True):
        da, db, dc = a.to_dict(), b.to_dict(), c.to_dict()
        for d in (da, db, dc):
            d.pop("wall_time")
        assert str(da) == str(db) == str(dc)  # str: NaN == NaN


def test_checkpoint_of_another_experiment_or_garbage(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    run([Member("he_normal", 0)], steps=5, checkpoint_path=path)
    with pytest.raises(ConfigError, match="different experiment"):
        run([Member("he_normal", 0)], steps=5, lr=0.01, checkpoint_path=path)
    path.write_bytes(b"garbage")
    from initlab.errors import DataError

    with pytest.raises(DataError, match="not a readable initlab checkpoint"):
        run([Member("he_normal", 0)], steps=5, checkpoint_path=path)


def test_cnn_and_user_factory_stacks_match_lone_runs():
    digits = load("digits")
    for arch in ("cnn:4,8,batchnorm=true", "model_zoo.factories:residual"):
        members = [Member("he_normal", 0), Member("lecun_normal", 0)]
        records = run(members, data=digits, arch=arch, steps=20, eval_every=None)
        for member, record in zip(members, records, strict=True):
            alone = run([member], data=digits, arch=arch, steps=20, eval_every=None)[0]
            torch.testing.assert_close(losses(record), losses(alone), rtol=1e-5, atol=1e-7)
        assert records[0].metrics["test_acc"].steps == [20]


@pytest.mark.parametrize(
    "members, overrides, message",
    [
        ([], {}, "No members"),
        ([Member("he_normal", -1)], {}, "Seed -1"),
        ([Member("he_normal", 0)], {"steps": 0}, "steps=0"),
        ([Member("he_normal", 0)], {"batch_size": 10**6}, "exceeds the 1800 training examples"),
        ([Member("he_normal", 0)], {"lr": -1.0}, "lr=-1.0"),
        ([Member("he_normal", 0)], {"eval_every": 0}, "eval_every=0"),
    ],
)
def test_bad_settings_are_config_errors(members, overrides, message):
    with pytest.raises(ConfigError, match=message):
        run(members, **overrides)
