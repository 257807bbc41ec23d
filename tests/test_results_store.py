"""The SQLite results store: round trips, resume keys, crash safety, schema migration."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from fake_runs import make_record, make_records
from initlab.errors import DataError
from initlab.results import store as store_mod
from initlab.results.store import Store, describe_environment
from initlab.results.summary import summarize


def test_round_trip_of_runs_metrics_and_meta(tmp_path):
    records = make_records(seeds=2)
    records.append(make_record("orthogonal", 0, diverge_at=50))
    with Store.open(tmp_path) as store:
        for r in records:
            store.put_run(r)
        store.put_meta("name", "demo")
        store.put_meta("environment", describe_environment("2.13.0+cpu", "cpu", seed=0))
    with Store.open(tmp_path, create=False) as store:
        back = store.runs()
        assert [r.key for r in back] == [r.key for r in records]  # insertion order
        for a, b in zip(records, back):
            assert a.config == b.config
            assert a.status == b.status and a.diverged_step == b.diverged_step
            assert a.final_train_loss == b.final_train_loss or (
                math.isnan(a.final_train_loss) and math.isnan(b.final_train_loss)
            )
            assert a.metrics.keys() == b.metrics.keys()
            for name in a.metrics:
                assert a.metrics[name].steps == b.metrics[name].steps
                va, vb = a.metrics[name].values, b.metrics[name].values
                # NaN survives the trip (stored as NULL), every other value is exact.
                assert [math.isnan(x) for x in va] == [math.isnan(x) for x in vb]
                assert [x for x in va if not math.isnan(x)] == [x for x in vb if not math.isnan(x)]
        assert store.get_run(records[1].key).config.seed == 1
        assert store.get_run("nope") is None
        assert store.get_meta("name") == "demo"
        env = store.get_meta("environment")
        assert env["torch"] == "2.13.0+cpu" and env["device"] == "cpu" and env["seed"] == 0
        assert store.runs(status="diverged")[0].config.init == "orthogonal"
        assert store.integrity_check() == "ok"
        assert store.schema_version() == store_mod.SCHEMA_VERSION


def test_wal_mode_and_infinities(tmp_path):
    r = make_record("he_normal", 0)
    r.metrics["train_loss"].values[3] = math.inf
    with Store.open(tmp_path) as store:
        store.put_run(r)
        mode = store._conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
        assert store.get_run(r.key).metrics["train_loss"].values[3] == math.inf


def test_finished_keys_and_upsert_keeps_order(tmp_path):
    a, b, c = (make_record(i, 0) for i in ("a_init", "b_init", "c_init"))
    b.status = "failed"
    with Store.open(tmp_path) as store:
        for r in (a, b, c):
            store.put_run(r)
        assert store.finished_keys() == {a.key, c.key}
        b.status = "finished"
        store.put_run(b)  # a rerun replaces the failed run in place
        assert store.finished_keys() == {a.key, b.key, c.key}
        assert [r.config.init for r in store.runs()] == ["a_init", "b_init", "c_init"]
        count = store._conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
        assert count == 3 * sum(len(s.steps) for s in a.metrics.values())
        # the specs alone, in the same order, read without the metric points
        assert store.configs() == [r.config for r in store.runs()]
        assert [spec.key() for spec in store.configs()] == [a.key, b.key, c.key]


def test_open_missing_or_garbage_store_is_one_line_data_error(tmp_path):
    with pytest.raises(DataError, match="No results store") as e:
        Store.open(tmp_path / "absent", create=False)
    assert "\n" not in str(e.value)
    (tmp_path / "results.sqlite").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(DataError, match="not a readable initlab results store") as e:
        Store.open(tmp_path)
    assert "\n" not in str(e.value)


def test_summaries_and_summary_json(tmp_path):
    records = make_records(seeds=3)
    summaries = summarize(records)
    with Store.open(tmp_path) as store:
        path = store.put_summaries(summaries)
        assert store.summaries() == summaries
    data = json.loads(path.read_text())
    assert [e["init"] for e in data["inits"]] == [s.init for s in summaries]
    assert data["inits"][0]["test_accuracy"]["values"] == summaries[0].test_accuracy.values


def test_write_config_writes_json_and_meta(tmp_path):
    cfg = {"dataset": "digits", "inits": ["he_normal"], "seeds": 2}
    with Store.open(tmp_path) as store:
        path = store.write_config(cfg)
        assert store.get_meta("config") == cfg
    assert json.loads(path.read_text()) == cfg
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@dataclass
class _FakeLayerStat:
    layer: str
    act_std: float


def test_probe_records_round_trip_as_plain_data(tmp_path):
    with Store.open(tmp_path) as store:
        store.put_probe(_FakeLayerStat("fc1", 0.5), run_key="k1")
        store.put_probes([_FakeLayerStat("fc2", 0.25)], run_key="k2")
        with pytest.raises(TypeError):
            store.put_probe({"layer": "x"})
        got = store.probes(run_key="k2")
        assert len(got) == 1
        item = got[0]
        fields = item if isinstance(item, dict) else item.__dict__
        assert fields["layer"] == "fc2" and fields["act_std"] == 0.25
        assert len(store.probes()) == 2


def test_newer_schema_is_refused_and_older_is_migrated(tmp_path, monkeypatch):
    with Store.open(tmp_path) as store:
        store.put_run(make_record("he_normal", 0))
    calls = []

    def add_note_column(conn: sqlite3.Connection) -> None:
        calls.append(1)
        conn.execute("ALTER TABLE runs ADD COLUMN note TEXT")

    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(store_mod, "MIGRATIONS", {1: add_note_column})
    with Store.open(tmp_path) as store:
        assert store.schema_version() == 2 and calls == [1]
        assert len(store.runs()) == 1
        cols = [r[1] for r in store._conn.execute("PRAGMA table_info(runs)")]
        assert "note" in cols
    with Store.open(tmp_path) as store:  # already migrated: nothing runs twice
        assert calls == [1]
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", 1)
    with pytest.raises(DataError, match="newer than this initlab"):
        Store.open(tmp_path)


_WRITER = """
import sys
sys.path.insert(0, sys.argv[2])
from fake_runs import make_record
from initlab.results.store import Store
with Store.open(sys.argv[1]) as store:
    i = 0
    while True:  # until killed
        store.put_run(make_record(f"init{i}", i, steps=300))
        i += 1
"""


@pytest.mark.slow  # three writer processes, each importing initlab (and so torch)
def test_sigkill_mid_write_leaves_a_store_that_opens(tmp_path):
    """Kill a writer process at several points: every run that landed is whole."""
    here = os.path.dirname(os.path.abspath(__file__))
    for attempt in range(3):
        run_dir = tmp_path / f"r{attempt}"
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(run_dir), here])
        # Wait until a few runs are committed, then kill without warning.
        while True:
            assert proc.poll() is None, "the writer died on its own"
            if (run_dir / "results.sqlite").exists():
                with Store.open(run_dir) as s:
                    if len(s.finished_keys()) >= 3 + attempt * 5:
                        break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with Store.open(run_dir) as store:
            assert store.integrity_check() == "ok"
            runs = store.runs()
            assert len(runs) >= 3 + attempt * 5
            for r in runs:  # no half-written run: every metric series is complete
                assert len(r.metrics["train_loss"].steps) == 300
