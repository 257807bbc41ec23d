"""initlab.integrations: watch() statistics written to TensorBoard, a Lightning fit and an HF
Trainer, each run for real on a tiny model on CPU and read back."""

from __future__ import annotations

import copy
import csv
import importlib
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initlab
from initlab.integrations.common import layer_tag, scalars
from initlab.probe import watch

pytestmark = pytest.mark.usefixtures("one_thread")
VOCAB = 100


def _gpt2():
    pytest.importorskip("transformers")
    from model_zoo.factories import tiny_gpt2

    return tiny_gpt2(n_layer=2, n_embd=32, vocab=VOCAB).train()  # dropout 0: no random draw


def _lm_loss(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), ids[:, 1:].reshape(-1))


def _check_blocks(record, prefix: str = "") -> None:
    names = [x.name for x in record.layers]
    for name in ("transformer.h.0", "transformer.h.1", "transformer.h.1.mlp.c_fc", "lm_head"):
        layer = record.layer(prefix + name)
        assert layer.std > 0 and layer.grad_std > 0, name
    assert f"{prefix}transformer.h.0.attn.c_attn.weight" in {g.name for g in record.weight_grads}
    assert len(names) == len(set(names))


def test_watch_counts_training_steps_only(gen):
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1))
    initlab.init_(model, "auto", generator=gen)
    x, y = torch.randn(16, 6, generator=gen), torch.randn(16, 1, generator=gen)

    def train(m, evaluate: bool):
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        with watch(m, every=1) as w:
            for _ in range(3):
                opt.zero_grad()
                loss = F.mse_loss(m(x), y)
                if evaluate:  # between forward and backward: must not end the sample
                    with torch.no_grad():
                        m(x * 3)
                    m.eval()
                    m(x * 5)  # eval mode with grad enabled is no step either
                    m.train()
                loss.backward()
                opt.step()
                if evaluate:
                    with torch.inference_mode():
                        m(x * 7)
        return w

    plain, with_evals = train(copy.deepcopy(model), False), train(model, True)
    assert with_evals.forwards == 3
    assert plain.history.steps == with_evals.history.steps == [0, 1, 2]
    for a, b in zip(plain.history.records, with_evals.history.records, strict=True):
        assert scalars(a) == scalars(b)  # the eval outputs were never folded in
        assert [x.histogram for x in a.layers] == [x.histogram for x in b.layers]


def test_tensorboard_event_file_holds_watch_history(tmp_path, gen):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing import event_accumulator as ea

    from initlab.integrations.tensorboard import SummaryWriter, to_tensorboard

    model = _gpt2()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    writer = SummaryWriter(str(tmp_path))
    with watch(model, every=2, on_record=to_tensorboard(writer)) as w:
        for _ in range(5):
            ids = torch.randint(0, VOCAB, (4, 12), generator=gen)
            opt.zero_grad()
            _lm_loss(model(input_ids=ids).logits, ids).backward()
            opt.step()
            with torch.no_grad():  # an eval pass each step: not counted
                model(input_ids=ids)
    writer.close()
    assert w.history.steps == [0, 2, 4]
    _check_blocks(w.history.records[0])

    acc = ea.EventAccumulator(str(tmp_path), size_guidance={ea.SCALARS: 0, ea.HISTOGRAMS: 0})
    acc.Reload()
    expected = [scalars(r) for r in w.history.records]
    assert set(acc.Tags()["scalars"]) == set(expected[0])
    assert "initlab/transformer.h.0/act_std" in expected[0]
    for tag in expected[0]:
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [0, 2, 4], tag
        assert [e.value for e in events] == pytest.approx([v[tag] for v in expected], rel=1e-6)
    for record in w.history.records:
        layer = record.layer("transformer.h.1")
        [event] = [e for e in acc.Histograms(layer_tag(layer.name, "act")) if e.step == record.step]
        h = event.histogram_value
        assert h.num == layer.count and sum(h.bucket) == layer.count
        assert h.sum == pytest.approx(layer.mean * layer.count, rel=1e-6, abs=1e-6)


def test_lightning_fit_logs_five_steps(tmp_path, gen):
    pl = pytest.importorskip("lightning.pytorch")
    from lightning.pytorch.loggers import CSVLogger

    from initlab.integrations.lightning import WatchCallback

    class LM(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = _gpt2()

        def forward(self, ids):
            return self.net(input_ids=ids).logits

        def training_step(self, batch, batch_idx):
            return _lm_loss(self(batch[0]), batch[0])

        def validation_step(self, batch, batch_idx):
            self(batch[0])  # eval forwards: not training steps

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    ids = torch.randint(0, VOCAB, (20, 12), generator=gen)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(ids), batch_size=4)
    cb = WatchCallback(every=1)
    logger = CSVLogger(str(tmp_path), name="lm")
    trainer = pl.Trainer(
        max_steps=5, accelerator="cpu", devices=1, logger=logger, callbacks=[cb],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        val_check_interval=2, limit_val_batches=1, num_sanity_val_steps=1, log_every_n_steps=1,
    )  # fmt: skip
    trainer.fit(LM(), loader, loader)
    assert cb.history.steps == [0, 1, 2, 3, 4]
    assert not any(
        m._forward_hooks or m._forward_pre_hooks for m in trainer.lightning_module.modules()
    )
    for record in cb.history.records:
        _check_blocks(record, prefix="net.")
    with open(logger.experiment.metrics_file_path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("initlab/net.transformer.h.0/act_std")]
    assert [int(r["step"]) for r in rows] == [0, 1, 2, 3, 4]
    for row, record in zip(rows, cb.history.records, strict=True):
        want = scalars(record)
        assert {k: float(row[k]) for k in want} == pytest.approx(want, rel=1e-12)


def test_hf_trainer_logs_five_steps(tmp_path, gen):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from initlab.integrations.hf import watch_trainer

    ids = torch.randint(0, VOCAB, (20, 12), generator=gen)
    data = [{"input_ids": row, "labels": row} for row in ids]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), max_steps=5, report_to=[], use_cpu=True,
        per_device_train_batch_size=4, per_device_eval_batch_size=4, learning_rate=1e-3,
        save_strategy="no", eval_strategy="steps", eval_steps=2, logging_strategy="no",
        disable_tqdm=True, dataloader_num_workers=0, seed=0,
    )  # fmt: skip
    trainer = transformers.Trainer(
        model=_gpt2(), args=args, train_dataset=data, eval_dataset=data[:4]
    )
    cb = watch_trainer(trainer, every=1)
    trainer.train()
    assert cb.history.steps == [0, 1, 2, 3, 4]  # the evaluations at steps 2 and 4 are not steps
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in trainer.model.modules())
    for record in cb.history.records:
        _check_blocks(record)
    logged = [e for e in trainer.state.log_history if "initlab/transformer.h.0/act_std" in e]
    assert [e["step"] for e in logged] == [1, 2, 3, 4, 5]  # the Trainer's global step
    for entry, record in zip(logged, cb.history.records, strict=True):
        want = scalars(record)
        assert {k: entry[k] for k in want} == want


@pytest.mark.parametrize(
    ("module", "hidden", "extra"),
    [
        ("tensorboard", "torch.utils.tensorboard", "tensorboard"),
        ("lightning", "lightning.pytorch", "lightning"),
        ("hf", "transformers", "hf"),
    ],
)
def test_missing_library_is_one_clear_import_error(module, hidden, extra, monkeypatch):
    monkeypatch.setitem(sys.modules, hidden, None)  # None in sys.modules: import fails
    monkeypatch.delitem(sys.modules, f"initlab.integrations.{module}", raising=False)
    with pytest.raises(ImportError) as e:
        importlib.import_module(f"initlab.integrations.{module}")
    assert str(e.value).count("\n") == 0 and f"pip install 'initlab[{extra}]'" in str(e.value)


def test_nothing_in_initlab_imports_the_integrations():
    import subprocess

    code = "import initlab, initlab.probe, initlab.cli, sys; print(sorted(m for m in sys.modules "
    code += "if m.startswith(('initlab.integrations', 'lightning', 'tensorboard'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
