"""The report in a real browser: images load, table sorts, no network, hostile text stays text."""

from __future__ import annotations

import pytest

from browser import chromium  # noqa: F401  (fixture)
from fake_runs import make_record, make_records, real_probe
from initlab.report.render import render_report
from initlab.results.store import Store, describe_environment

pytestmark = pytest.mark.browser

XSS = "<script>alert(1)</script>"
INITS = ("normal:std=0.01", "lecun_normal", "he_normal", "orthogonal")


def _fill(run_dir, records, name):
    with Store.open(run_dir) as store:
        for r in records:
            store.put_run(r)
        store.put_meta("name", name)
        store.put_meta("environment", describe_environment("2.13.0+cpu", "cpu", seed=0))
        store.write_config({"dataset": "digits", "inits": sorted({r.config.init for r in records})})


@pytest.fixture(scope="module")
def report_path(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("browser_run")
    records = make_records(inits=INITS[:3], seeds=3, steps=400)
    records += [
        make_record(INITS[3], s, steps=400, diverge_at=120 if s == 0 else None) for s in range(3)
    ]
    records[-1] = make_record(INITS[3], 2, steps=400, early_stop=(300, 240))
    _fill(run_dir, records, "browser demo")
    with Store.open(run_dir) as store:  # real probe records: std-by-layer and histograms
        for r in records:
            store.put_probe(real_probe(r.config.init, r.config.seed), run_key=r.key)
    return render_report(run_dir)


def _open(chromium, path):  # noqa: F811
    """A page on the report with request/dialog logs; anything not file:/data: is aborted."""
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    requests, dialogs, errors = [], [], []
    page.on("request", lambda req: requests.append(req.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith(("file:", "data:")) else route.abort()
        ),
    )
    page.goto(path.resolve().as_uri(), wait_until="load")
    return page, requests, dialogs, errors


def _column(page, table, col):
    return page.eval_on_selector_all(
        f"#{table} tbody tr", f"rows => rows.map(r => r.cells[{col}].textContent.trim())"
    )


def test_report_loads_sorts_and_stays_offline(chromium, report_path):  # noqa: F811
    page, requests, dialogs, errors = _open(chromium, report_path)
    images = page.eval_on_selector_all(
        "img", "els => els.map(e => [e.complete, e.naturalWidth, e.alt])"
    )
    # loss, accuracy, learning rate, std by layer, one histogram row per init
    assert len(images) == 4 + len(INITS)
    for complete, width, alt in images:
        assert complete and width > 0, f"image {alt!r} did not load"

    rows = page.locator("#a-summary tbody tr")
    assert rows.count() == len(INITS)
    assert sorted(_column(page, "a-summary", 0)) == sorted(INITS)

    header = page.locator("#a-summary th", has_text="Test accuracy")
    col = int(header.get_attribute("data-col"))
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    values = page.eval_on_selector_all(
        "#a-summary tbody tr", f"rows => rows.map(r => Number(r.cells[{col}].dataset.value))"
    )
    assert values == sorted(values) and len(set(values)) == len(INITS)
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    descending = page.eval_on_selector_all(
        "#a-summary tbody tr", f"rows => rows.map(r => Number(r.cells[{col}].dataset.value))"
    )
    assert descending == sorted(values, reverse=True)
    assert _column(page, "a-summary", 0)[0] == "he_normal"  # the best accuracy on top
    page.locator("#a-summary th", has_text="Init").click()
    assert _column(page, "a-summary", 0) == sorted(INITS)

    verdict = page.locator("#a-verdict").inner_text()
    assert verdict.startswith("he_normal has the best mean test accuracy")
    diagnosis = page.locator("ul.diagnosis").inner_text()
    assert "diverged at step 120" in diagnosis and "early stop at step 300" in diagnosis

    page.screenshot(path=str(report_path.parent / "report.png"), full_page=True)
    assert (report_path.parent / "report.png").stat().st_size > 10_000
    assert [u for u in requests if not u.startswith("data:")] == [report_path.resolve().as_uri()]
    assert dialogs == [] and errors == []
    page.close()


def test_hostile_names_are_shown_as_text(chromium, tmp_path):  # noqa: F811
    records = [make_record(f"normal:std=0.1,{XSS}", s, steps=100) for s in range(2)]
    records += [make_record("he_normal", s, steps=100) for s in range(2)]
    _fill(tmp_path, records, XSS)
    with Store.open(tmp_path) as store:
        store.put_meta("diagnosis", [f"layer {XSS} looks odd"])
    path = render_report(tmp_path)
    page, requests, dialogs, errors = _open(chromium, path)
    assert page.locator("#run-name").inner_text() == XSS
    assert page.get_by_text(XSS, exact=True).first.is_visible()
    assert XSS in _column(page, "a-summary", 0)[0]
    assert page.title() == f"initlab report: {XSS}"
    assert page.evaluate("document.scripts.length") == 1  # only our own sort script
    page.wait_for_timeout(200)  # give a would-be alert a chance to fire
    assert dialogs == [] and errors == []
    assert [u for u in requests if not u.startswith("data:")] == [path.resolve().as_uri()]
    page.close()


@pytest.mark.slow  # the training takes 15 s on the loaded 2-core machine
def test_report_of_a_small_real_training_run(chromium, tmp_path):  # noqa: F811
    """Real training (digits, 4 models in one stack) through the store into the browser."""
    torch = pytest.importorskip("torch")
    from initlab.data.datasets import load
    from initlab.train.trainer import Member, train_members

    inits = ("normal:std=0.01", "he_normal")
    records = train_members(
        [Member(i, s) for i in inits for s in range(2)],
        data=load("digits"),
        arch="mlp:32x2",
        activation="relu",
        optimizer="sgd",
        lr=0.1,
        batch_size=32,
        steps=150,
        eval_every=50,
        target_loss=0.5,
    )
    with Store.open(tmp_path) as store:
        for r in records:
            store.put_run(r)
        store.put_meta("name", "digits: std 0.01 vs He")
        store.put_meta("environment", describe_environment(str(torch.__version__), "cpu"))
    path = render_report(tmp_path)
    page, requests, dialogs, errors = _open(chromium, path)
    widths = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
    assert len(widths) == 3 and all(w > 0 for w in widths)
    assert page.locator("#a-summary tbody tr").count() == len(inits)
    best = max(inits, key=lambda i: sum(r.test_accuracy for r in records if r.config.init == i))
    assert page.locator("#a-verdict").inner_text().startswith(f"{best} has the best")
    assert torch.__version__ in page.locator("table.kv").first.inner_text()
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert [u for u in requests if not u.startswith("data:")] == [path.resolve().as_uri()]
    assert dialogs == [] and errors == []
    page.close()
