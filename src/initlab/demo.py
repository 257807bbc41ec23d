"""``make demo``: the classic init lessons in about two minutes on 2 cores, with CIs.

Runs the quick version of every demo preset (``initlab run --list``; ``in_demo``), each into
its own run folder ``OUT/NAME`` with its own report:

* ``saito-init-compare``: MNIST 784-100x4-10 ReLU, SGD: N(0, 0.01) stalls, He beats sqrt(1/n)
  (which equals Xavier on the 100x100 layers);
* ``xavier-tanh-sigmoid``: Xavier trains tanh and sigmoid nets better than N(0, 1) and
  N(0, 0.01);
* ``deep-relu``: He beats sqrt(1/n) and Xavier on a deep ReLU net;
* ``activation-histograms``: N(0, 1) saturates sigmoid, N(0, 0.01) collapses tanh;
* ``regularization``: overfitting, early stopping and dropout on a small training set;
* ``lr-schedules``: cosine annealing against a constant learning rate.

What each part ran is printed from the config it ran; each lesson is "shown" only when its
95% CIs do not overlap (or a paired CI excludes 0). The demo ends by writing ``OUT/report.html``,
a page linking every sub-report with its lessons, and printing its path.
"""

from __future__ import annotations

import html
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from initlab.cli.progress import progress_bar
from initlab.cli.tables import print_any_result
from initlab.experiments.presets import presets, run_preset
from initlab.report.render import REPORT_NAME
from initlab.results.store import Store
from initlab.results.summary import format_stat

# The order the lessons build on each other; other in_demo presets follow, by name.
ORDER = (
    "saito-init-compare",
    "xavier-tanh-sigmoid",
    "deep-relu",
    "activation-histograms",
    "regularization",
    "lr-schedules",
)


@dataclass
class Part:
    """One preset the demo ran: its lines (what ran, notes, lessons), lessons, reports."""

    name: str
    lines: list[str]
    lessons: list = field(default_factory=list)
    reports: list[tuple[str, Path]] = field(default_factory=list)  # (label, report.html)
    seconds: float = 0.0


def demo_presets() -> list:
    """The presets ``make demo`` runs, in :data:`ORDER` (then any other ``in_demo`` one)."""
    chosen = [p for p in presets() if p.in_demo]
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(chosen, key=lambda p: (rank.get(p.name, len(ORDER)), p.name))


def _reports(result) -> list[tuple[str, Path]]:
    """(label, report path) of every run folder a preset result wrote."""
    found = []
    for part in getattr(result, "parts", None) or [result]:
        path = getattr(part, "report_path", None)
        if path is not None:
            label = (getattr(part, "config", None) or {}).get("name") or Path(path).parent.name
            found.append((str(label), Path(path)))
    return found


def main(out: str = "runs/demo") -> Path:
    """Run the quick version of every demo preset into ``out``, write ``out/report.html``
    linking every sub-report, and return its path."""
    console = Console()
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        print(f"Error: '{folder}' is a file; give the demo a folder (default runs/demo).",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(2)
    start = time.perf_counter()
    chosen = demo_presets()
    write_index(folder, [], 0.0, running=True)  # so each sub-report finds its parent page
    parts = []
    for i, p in enumerate(chosen, start=1):
        console.print(f"[bold]{i}/{len(chosen)}[/] preset {p.name} --quick ({folder / p.name})")
        t = time.perf_counter()
        with progress_bar(f"preset {p.name}") as bar:
            result = run_preset(p.name, folder / p.name, quick=True, progress=bar)
        print_any_result(result, console)
        seconds = time.perf_counter() - t
        console.print(f"{p.name}: {seconds:.0f} s")
        parts.append(
            Part(
                p.name,
                list(getattr(result, "lines", [])),
                list(getattr(result, "lessons", [])),
                _reports(result),
                seconds,
            )
        )
    total = time.perf_counter() - start
    lessons = [x for part in parts for x in part.lessons]
    console.print("[bold]Lessons[/] (shown = the 95% CIs do not overlap)")
    for x in lessons:
        console.print(f"  {'shown' if x.shown else 'NOT shown'}: {escape(x.claim)}")
    shown = sum(bool(x.shown) for x in lessons)
    console.print(f"{shown} of {len(lessons)} lessons shown; demo wall time {total:.0f} s")
    index = write_index(folder, parts, total)
    console.print(f"report: {index.resolve()}", soft_wrap=True)
    return index


def _summary_rows(run_dir: Path) -> list[str]:
    """The summary.json rows of a run folder as short text lines (init, seeds, test acc)."""
    with Store.open(run_dir, create=False) as store:
        return [
            f"{s.init}: test acc {format_stat(s.test_accuracy)}, train loss "
            f"{format_stat(s.final_train_loss)} ({s.seeds} seeds)"
            for s in store.summaries()
        ]


def index_html(folder: Path, parts: list[Part], total: float, running: bool = False) -> str:
    """The demo's top page: per preset, what ran, its lessons and a link to each sub-report
    (``running``: the page written first, until the demo ends)."""
    e = html.escape
    shown = sum(bool(x.shown) for p in parts for x in p.lessons)
    count = sum(len(p.lessons) for p in parts)
    body = ["<h1>initlab demo</h1>"]
    if running:
        body.append("<p>The demo is running (or was stopped): this page is rewritten with "
                    "every sub-report and lesson when it ends.</p>")  # fmt: skip
    else:
        body.append(
            f"<p>{shown} of {count} lessons shown (a lesson is shown when the 95% confidence "
            f"intervals do not overlap, or a paired interval excludes 0). Wall time "
            f"{total:.0f} s. Every number below comes from the runs in these folders.</p>"
        )
    for part in parts:
        body.append(f"<h2>{e(part.name)} <small>(--quick, {part.seconds:.0f} s)</small></h2>")
        if part.lessons:
            body.append("<ul>")
            for x in part.lessons:
                mark = "shown" if x.shown else "not shown"
                body.append(f'<li class="{mark.replace(" ", "-")}"><b>{mark}</b>: {e(x.text)}</li>')
            body.append("</ul>")
        texts = {x.text for x in part.lessons}
        other = [line for line in part.lines if line not in texts]
        if other:
            body.append("<pre>" + e("\n".join(other)) + "</pre>")
        body.append("<ul>")
        for label, path in part.reports:
            href = os.path.relpath(path.resolve(), folder.resolve())
            rows = _summary_rows(path.parent) if (path.parent / "summary.json").is_file() else []
            body.append(f'<li><a href="{e(href)}">{e(label)}</a> ({e(href)})')
            if rows:
                body.append("<br>" + "<br>".join(e(r) for r in rows))
            body.append("</li>")
        body.append("</ul>")
    style = (
        "body{font-family:sans-serif;max-width:70em;margin:2em auto;line-height:1.4}"
        "pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em}"
        ".shown b{color:#17692f}.not-shown b{color:#a31515}"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>initlab demo</title><style>{style}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def write_index(folder: Path, parts: list[Part], total: float, running: bool = False) -> Path:
    """Write :func:`index_html` to ``folder/report.html`` (temp file, then rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / REPORT_NAME
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".report-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(index_html(folder, parts, total, running))
    os.replace(tmp, target)
    return target


if __name__ == "__main__":
    main(*sys.argv[1:2])
