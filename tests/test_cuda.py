"""CUDA: the same results as the CPU within stated tolerances, on tiny runs.

These run where torch sees a GPU (``bench/gpu.sh`` runs them on a lent GPU machine); on a
CPU-only machine they skip with that reason, and the CPU path is checked everywhere else.
Tolerances: cuBLAS sums in another order than the CPU's BLAS (and may use TF32, which
initlab leaves off), so losses agree to 1e-4 relative after 40 SGD steps of a small MLP, not
bit for bit; accuracies to one test example per hundred.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import initlab
from initlab.data import load
from initlab.train import Member, train_members
from initlab.train.controls import TrainControls

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU visible to torch here"
)

SETTINGS = dict(arch="mlp:32x2", activation="tanh", optimizer="sgd", lr=0.1, batch_size=32,
                steps=40, eval_every=20, target_loss=0.5)  # fmt: skip


def _train(device: str, precision: str = "fp32"):
    members = [Member(i, s) for i in ("he_normal", "xavier_normal") for s in range(2)]
    return train_members(members, data=load("blobs"), device=device,
                         controls=TrainControls(precision=precision), **SETTINGS)  # fmt: skip


def test_stacked_training_on_cuda_matches_cpu():
    assert not torch.backends.cuda.matmul.allow_tf32  # initlab never turns TF32 on
    cpu, gpu = _train("cpu"), _train("cuda")
    for a, b in zip(cpu, gpu, strict=True):
        la, lb = a.metrics["train_loss"].values, b.metrics["train_loss"].values
        assert max(abs(x - y) / max(abs(x), 1e-6) for x, y in zip(la, lb, strict=True)) < 1e-4
        assert abs(a.test_accuracy - b.test_accuracy) <= 0.01


def test_bf16_on_cuda_stays_near_fp32():
    fp32, bf16 = _train("cuda"), _train("cuda", "bf16")
    for a, b in zip(fp32, bf16, strict=True):
        assert abs(a.final_train_loss - b.final_train_loss) < 0.05 * a.final_train_loss + 0.02


def test_probe_on_cuda_matches_cpu():
    model = torch.nn.Sequential(*[m for _ in range(4) for m in (torch.nn.Linear(64, 64),
                                                                torch.nn.Tanh())])  # fmt: skip
    initlab.init_(model, "xavier_normal", generator=torch.Generator().manual_seed(0))
    x = torch.randn(256, 64, generator=torch.Generator().manual_seed(1))
    cpu = initlab.probe(model, x)
    gpu = initlab.probe(model.cuda(), x.cuda())
    for a, b in zip(cpu.layers, gpu.layers, strict=True):
        assert a.name == b.name
        assert b.std == pytest.approx(a.std, rel=1e-4)


def test_compare_cli_on_cuda_records_the_device(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "initlab", "compare", "--dataset", "blobs", "--arch", "mlp:16x2",
         "--inits", "he_normal", "--seeds", "2", "--steps", "30", "--device", "cuda",
         "--no-report", "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary, summary
    from initlab.results.store import Store

    with Store.open(out, create=False) as store:
        assert store.get_meta("environment")["device"].startswith("cuda")
        assert [r.status for r in store.runs()] == ["finished", "finished"]
