"""``initlab report DIR`` re-renders the page the folder's own command wrote."""

from __future__ import annotations

import pytest

from fake_runs import make_records
from initlab.cli import main
from initlab.experiments.coord_check import coord_check
from initlab.report import pages
from initlab.results.store import Store

pytestmark = pytest.mark.usefixtures("one_thread")


def test_coord_check_folder_gets_its_own_page_back(tmp_path, capsys):
    res = coord_check(widths=[16, 32], steps=1, seeds=1, dataset="blobs", threads=1, out=tmp_path)
    written = res.report_path.read_bytes()
    assert pages.page_kind(tmp_path) == "width"
    main(["report", str(tmp_path)])
    assert capsys.readouterr().out.strip().endswith("report.html")
    assert (tmp_path / "report.html").read_bytes() == written  # not the generic page


def test_kinds_of_folders(tmp_path, monkeypatch):
    with Store.open(tmp_path / "plain") as store:
        for r in make_records(seeds=2):
            store.put_run(r)
    assert pages.page_kind(tmp_path / "plain") == "comparison"
    with Store.open(tmp_path / "sweep") as store:
        store.put_meta("sweep_plan", [])
    assert pages.page_kind(tmp_path / "sweep") == "sweep"
    called = []
    monkeypatch.setattr(
        "initlab.report.sweep_report.render_sweep_report",
        lambda run_dir, out=None: called.append(run_dir) or run_dir / "report.html",
    )
    pages.render_page(tmp_path / "sweep")
    assert called == [tmp_path / "sweep"]


def test_missing_store_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["report", str(tmp_path / "nothing")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "No results store" in err and len(err.strip().splitlines()) == 1
