"""Report pages from a store alone: deterministic bytes, escaping, no URLs, CLI, --compare."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from click.testing import CliRunner

from fake_runs import make_record, make_records
from initlab.cli import cli
from initlab.errors import DataError
from initlab.report.plots import band
from initlab.report.render import render_report
from initlab.results.store import Store, describe_environment

XSS = "<script>alert(1)</script>"


def _store(run_dir, records, name="demo", **meta):
    with Store.open(run_dir) as store:
        for r in records:
            store.put_run(r)
        store.put_meta("name", name)
        store.put_meta("environment", describe_environment("2.13.0+cpu", "cpu", seed=0))
        for k, v in meta.items():
            store.put_meta(k, v)
    return run_dir


def _full_records():
    records = make_records(seeds=3, steps=1200)  # > MAX_POINTS: the windowed-average path
    records.append(make_record("orthogonal", 0, steps=1200, diverge_at=400))
    records.append(make_record("orthogonal", 1, steps=1200, early_stop=(900, 700), lr_decay=True))
    return records


def test_rebuilding_gives_byte_identical_html(tmp_path):
    run_dir = _store(tmp_path / "run", _full_records())
    first = render_report(run_dir).read_bytes()
    second = render_report(run_dir, tmp_path / "again.html").read_bytes()
    assert first == second
    assert first.count(b"data:image/svg+xml;base64,") == 3


def test_page_has_no_external_url_and_a_matching_script_hash(tmp_path):
    html = render_report(_store(tmp_path, _full_records())).read_text()
    assert not re.search(
        r"https?://|//[a-z0-9]", html.split("<style>")[0] + html.split("</style>")[1]
    )
    assert not re.search(r"\b(src|href)=\"(?!data:)", html)
    for uri in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html):
        svg = base64.b64decode(uri).decode()
        assert "<dc:date>" not in svg and 'xlink:href="http' not in svg
    script = re.search(r"<script>(.*)</script>", html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in html


def test_everything_user_written_is_escaped(tmp_path):
    records = [make_record(f"normal:std=0.1,{XSS}", s, steps=50) for s in range(2)]
    run_dir = _store(tmp_path, records, name=XSS, diagnosis=[XSS], config={"note": XSS})
    html = render_report(run_dir).read_text()
    assert XSS not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4  # title, h1, table, diagnosis
    assert html.count("<script>") == 1


def test_summary_table_and_environment(tmp_path):
    html = render_report(_store(tmp_path, _full_records())).read_text()
    body = html.split('id="a-summary"')[1].split("</table>")[0]
    assert body.count("<tr>") == 1 + 4  # header + one row per init
    assert "he_normal has the best mean test accuracy" in html
    for field in ("initlab", "torch", "python", "device", "seed"):
        assert f'<th scope="row">{field}</th>' in html
    assert "2.13.0+cpu" in html
    assert "orthogonal, seed 0: diverged at step 400." in html
    assert "orthogonal, seed 1: early stop at step 900, best step 700 kept." in html


def test_empty_store_renders_and_missing_store_is_one_line(tmp_path):
    Store.open(tmp_path / "empty").close()
    html = render_report(tmp_path / "empty").read_text()
    assert "No runs recorded yet." in html and "no verdict" in html
    with pytest.raises(DataError, match="No results store"):
        render_report(tmp_path / "nothing_here")
    assert not (tmp_path / "nothing_here").exists()


def test_band_is_mean_min_max_over_seeds_and_windows_long_series():
    x, mean, lo, hi = band([([1, 2, 3], [1.0, 2.0, 3.0]), ([1, 2, 3], [3.0, float("nan"), 5.0])])
    assert list(x) == [1, 2, 3] and list(mean) == [2.0, 2.0, 4.0]
    assert list(lo) == [1.0, 2.0, 3.0] and list(hi) == [3.0, 2.0, 5.0]
    steps = list(range(1, 1001))
    x, mean, lo, hi = band([(steps, [float(s) for s in steps])], max_points=100)
    assert len(x) == 100 and x[0] == 10 and mean[0] == pytest.approx(5.5)


def test_report_cli_and_compare(tmp_path):
    a = _store(tmp_path / "a", make_records(seeds=2, steps=100), name="first")
    b_records = [
        make_record(i, s, steps=100) for i in ("he_normal", "xavier_normal") for s in range(2)
    ]
    b = _store(tmp_path / "b", b_records, name="second", config={"lr": 0.5})
    with Store.open(a) as store:
        store.write_config({"lr": 0.05})
    runner = CliRunner()
    result = runner.invoke(cli, ["report", str(a)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(a / "report.html")
    result = runner.invoke(cli, ["report", "--compare", str(a), str(b)])
    assert result.exit_code == 0, result.output
    out = a / "compare-b.html"  # the default place
    assert result.output.strip() == str(out)
    html = out.read_text()
    assert 'id="a-summary"' in html and 'id="b-summary"' in html
    assert '<th scope="row">lr</th><td class="name">0.05</td><td class="name">0.5</td>' in html


def test_report_cli_errors_are_one_line(tmp_path):
    from initlab.cli import main

    for args in (["report"], ["report", str(tmp_path / "absent")]):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 2


def test_dollar_signs_in_specs_are_text_not_mathtext(tmp_path):
    weird = r"normal:note=$\undefinedcommand{$"  # malformed mathtext if it were parsed
    records = [make_record(weird, s, steps=50) for s in range(2)]
    html = render_report(_store(tmp_path, records)).read_text()
    assert html.count("data:image/svg+xml;base64,") == 3
    assert "normal:note=$\\undefinedcommand{$" in html
