"""Everything a report page shows, gathered from a results store as plain data and images.

The store alone is enough: records, meta (config, environment, diagnosis) and probe records.
Nothing here formats HTML; the templates do, with autoescaping.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from initlab.report import histograms, plots, probe_plots
from initlab.results.grouping import group_labels
from initlab.results.probe_records import HistogramRun, ProbeRecord, healthy
from initlab.results.records import InitSummary, RunRecord, Stat
from initlab.results.store import CONFIG_NAME, Store
from initlab.results.summary import format_stat, summarize, verdict

# Environment fields the issue asks for; shown as "not recorded" when the writer left one out.
ENV_FIELDS = ("initlab", "torch", "python", "device", "seed")


@dataclass
class Image:
    """One inline figure: a ``data:`` URI and the words around it."""

    title: str
    uri: str
    caption: str = ""


@dataclass
class Cell:
    """A table cell: the text shown and the number the sort uses (None sorts last)."""

    text: str
    value: float | None = None


@dataclass
class Content:
    """The data of one experiment's page."""

    name: str
    config_json: str
    environment: list[tuple[str, str]]
    summary_rows: list[list[Cell]]
    verdict: str
    images: list[Image] = field(default_factory=list)
    probe_images: list[Image] = field(default_factory=list)
    layer_rows: list[list[Cell]] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)
    runs: int = 0
    summaries: list[InitSummary] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    summary_headers: tuple[str, ...] = ()
    healthy: list[str] = field(default_factory=list)  # checks that passed ("healthy: ...")
    kind: str = "comparison"  # or "histograms": a folder of HistogramRun records, no runs
    histogram_runs: int = 0


SUMMARY_HEADERS = (
    "Init",
    "Seeds",
    "Final train loss",
    "Val loss",
    "Test accuracy",
    "Steps to target",
    "Diverged",
    "Stopped early",
)
LAYER_HEADERS = ("Group", "Layer", "Activation std", "Gradient std")


def data_uri(data: bytes, mime: str = "image/svg+xml") -> str:
    """``data:<mime>;base64,...``: images travel inside the page, no file or URL needed."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _mean_value(s: Stat | None) -> float | None:
    return s.mean if s is not None and math.isfinite(s.mean) else None


def summary_rows(summaries: Sequence[InitSummary]) -> list[list[Cell]]:
    """One row per group, in the order of :data:`SUMMARY_HEADERS`."""
    rows = []
    for s in summaries:
        steps = s.steps_to_target
        reached = 0 if steps is None else sum(math.isfinite(v) for v in steps.values)
        steps_text = format_stat(steps, 0) + f" ({reached}/{s.seeds} reached)"
        rows.append(
            [
                Cell(s.init),
                Cell(str(s.seeds), float(s.seeds)),
                Cell(format_stat(s.final_train_loss), _mean_value(s.final_train_loss)),
                Cell(format_stat(s.val_loss), _mean_value(s.val_loss)),
                Cell(format_stat(s.test_accuracy), _mean_value(s.test_accuracy)),
                Cell(steps_text, _mean_value(steps)),
                Cell(str(s.diverged), float(s.diverged)),
                Cell(str(s.stopped), float(s.stopped)),
            ]
        )
    return rows


def _config(store: Store, records: Sequence[RunRecord]) -> dict[str, Any]:
    config = store.get_meta("config")
    if config is None and (store.run_dir / CONFIG_NAME).is_file():
        config = json.loads((store.run_dir / CONFIG_NAME).read_text(encoding="utf-8"))
    if config is None and records:
        # Older or hand-made stores: the settings every run shares.
        dicts = [r.config.to_dict() for r in records]
        config = {k: v for k, v in dicts[0].items() if all(d.get(k) == v for d in dicts)}
    return config or {}


def _environment(store: Store, records: Sequence[RunRecord]) -> list[tuple[str, str]]:
    env = dict(store.get_meta("environment") or {})
    if "seed" not in env and records:
        # Runs are seeded by index (weights from (init, seed), batches from seed): list them.
        seeds = sorted({r.config.seed for r in records})
        env["seed"] = f"seed indices {', '.join(map(str, seeds))}"
    rows = [(k, str(env[k]) if k in env else "not recorded") for k in ENV_FIELDS]
    rows += [(str(k), str(v)) for k, v in env.items() if k not in ENV_FIELDS]
    return rows


def _diagnosis(
    store: Store, records: Sequence[RunRecord], labels: Sequence[str], probes: dict[str, list]
) -> list[str]:
    lines = [str(x) for x in store.get_meta("diagnosis") or []]
    for r, label in zip(records, labels):
        if r.diverged_step is not None or r.status == "diverged":
            lines.append(f"{label}, seed {r.config.seed}: diverged at step {r.diverged_step}.")
        if r.status == "failed":
            lines.append(f"{label}, seed {r.config.seed}: failed ({r.error or 'no message'}).")
        if r.stopped_step is not None:
            kept = f", best step {r.best_step} kept" if plots.kept_best(r) else ""
            lines.append(
                f"{label}, seed {r.config.seed}: early stop at step {r.stopped_step}{kept}."
            )
    for label, recs in probes.items():
        # One line per finding kind and group: the first seed's words, and how many agree.
        seen: dict[str, list] = {}
        for rec in recs:
            for finding in probe_plots.field_of(rec, "findings", []) or []:
                seen.setdefault(probe_plots.field_of(finding, "kind", "finding"), []).append(
                    finding
                )
        for found in seen.values():
            first = found[0]
            text = str(first)
            if isinstance(first, dict):  # a finding kept as plain data: the same words
                text = f"{first.get('kind', 'finding')}: {first.get('message', '')}"
                text += f" Try: {first['fix']}" if first.get("fix") else ""
            lines.append(f"{label} (probe, {len(found)} of {len(recs)} seeds): {text}")
    return list(dict.fromkeys(lines))  # drop repeats, keep order


def _probes_by_group(
    store: Store, records: Sequence[RunRecord], labels: Sequence[str]
) -> dict[str, list]:
    """The earliest probe record of each run (taken at initialization), grouped by label."""
    groups: dict[str, list] = {}
    for r, label in zip(records, labels):
        found = []
        for p in store.probes(run_key=r.key):
            # A watch() history holds probe records taken during training; a probe is one.
            found += probe_plots.field_of(p, "records", None) or [p]
        found = [p for p in found if probe_plots.field_of(p, "layers")]
        if found:
            first = min(found, key=lambda p: probe_plots.field_of(p, "step") or 0)
            groups.setdefault(label, []).append(first)
    return groups


def collect(store: Store, *, name: str | None = None) -> Content:
    """Gather one experiment's page content from its store."""
    records = [r for r in store.runs() if r.status != "running"]
    current = store.get_meta("current_runs")  # the last compare's runs: the folder may hold more
    if current:
        keep = set(current)
        records = [r for r in records if r.key in keep]
    if not records and (runs := [p for p in store.probes() if isinstance(p, HistogramRun)]):
        return collect_histograms(store, runs, name=name)
    labels = group_labels(records)
    summaries = summarize(records, labels)
    probes = _probes_by_group(store, records, labels)
    config = _config(store, records)
    content = Content(
        name=name or str(store.get_meta("name") or store.run_dir.resolve().name),
        config_json=json.dumps(config, indent=2, default=str),
        environment=_environment(store, records),
        summary_rows=summary_rows(summaries),
        verdict=verdict(summaries),
        diagnosis=_diagnosis(store, records, labels, probes),
        runs=len(records),
        summaries=summaries,
        config=config,
        summary_headers=summary_headers(records),
        healthy=[
            f"{label} (probe, first seed): {line}"
            for label, recs in probes.items()
            if isinstance(recs[0], ProbeRecord)
            for line in healthy(recs[0])
        ],
    )
    figures = [
        ("Loss", plots.curve_figure(records, labels, plots.LOSS_METRICS, "Loss", "loss")),
        (
            "Accuracy",
            plots.curve_figure(records, labels, plots.ACCURACY_METRICS, "Accuracy", "accuracy"),
        ),
        ("Learning rate", plots.lr_figure(records, labels)),
    ]
    band_note = "Lines: mean over seeds; band: min to max over seeds."
    for title, svg in figures:
        if svg is not None:
            caption = band_note if title != "Learning rate" else "The LR used at each step."
            content.images.append(Image(title, data_uri(svg), caption))
    std_svg = probe_plots.layer_std_figure(probes)
    if std_svg is not None:
        caption = "Per-layer std at initialization, mean over seeds (log scale)."
        content.probe_images.append(
            Image("Activation and gradient std by layer", data_uri(std_svg), caption)
        )
        content.layer_rows = [
            [Cell(r["group"]), Cell(r["layer"]), _num(r["act_std"]), _num(r["grad_std"])]
            for r in probe_plots.layer_table(probes)
        ]
    for title, mime, data in probe_plots.histogram_figures(store.probes(), probes):
        content.probe_images.append(Image(title, data_uri(data, mime)))
    return content


def summary_headers(records: Sequence[RunRecord]) -> tuple[str, ...]:
    """:data:`SUMMARY_HEADERS` with the target stated: "Steps to train loss ≤ 0.5"."""
    targets = sorted({float(r.config.target_loss) for r in records})
    if len(targets) == 1:
        steps = f"Steps to train loss ≤ {targets[0]:g}"
    else:
        steps = "Steps to target train loss (" + ", ".join(f"{t:g}" for t in targets) + ")"
    return tuple(steps if h == "Steps to target" else h for h in SUMMARY_HEADERS)


def _run_name(run: HistogramRun) -> str:
    return f"{run.activation} / {run.init}"


def collect_histograms(
    store: Store, runs: Sequence[HistogramRun], *, name: str | None = None
) -> Content:
    """The page of a folder of :class:`HistogramRun` records (``initlab run
    activation-histograms``): the std-by-layer and histogram figures, every run's findings
    with their advice, and what looks right."""
    config = _config(store, [])
    # the writer's own lines stay (lessons, settings); its copies of the findings without
    # their advice give way to the full "kind: message Try: fix" lines below
    bare = {f"{_run_name(r)}: {f.message}" for r in runs for f in r.probe.findings}
    notes = [str(x) for x in store.get_meta("diagnosis") or [] if str(x) not in bare]
    flagged = [r for r in runs if r.probe.findings]
    clean = [_run_name(r) for r in runs if not r.probe.findings]
    verdict = f"{len(flagged)} of {len(runs)} activation / init pairs flagged"
    verdict += f"; no warning for {', '.join(clean)}." if clean else "."
    content = Content(
        name=name or str(store.get_meta("name") or store.run_dir.resolve().name),
        config_json=json.dumps(config, indent=2, default=str),
        environment=_environment(store, []),
        summary_rows=[],
        verdict=verdict,
        diagnosis=[*notes, *(f"{_run_name(r)}: {f}" for r in runs for f in r.probe.findings)],
        healthy=[f"{_run_name(r)}: {line}" for r in runs for line in healthy(r.probe)],
        config=config,
        kind="histograms",
        histogram_runs=len(runs),
    )
    captions = {
        histograms.STD_TITLE: "Per-layer std of the activation outputs "
        "and of the loss gradient w.r.t. them (mean of squares of the last output), log scale.",
        "Activation histograms per layer": "Rows: activation / init; columns: layers 1..N, "
        "each on its own x range; the title holds the layer's mean, std and gradient std.",
    }
    for title, mime, data in probe_plots.histogram_figures(runs):
        content.probe_images.append(Image(title, data_uri(data, mime), captions.get(title, "")))
    return content


def _num(x: float) -> Cell:
    return Cell(f"{x:.4g}", x) if math.isfinite(x) else Cell("—")


def config_differences(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(key, value in A, value in B) for every top-level config key that differs."""
    keys = list(dict.fromkeys([*a, *b]))
    show = lambda d, k: json.dumps(d[k], default=str) if k in d else "—"  # noqa: E731
    return [(k, show(a, k), show(b, k)) for k in keys if a.get(k) != b.get(k)]


def open_and_collect(run_dir: str | Path) -> Content:
    """Open the store in ``run_dir`` read-only-ish (no creation) and collect its content."""
    with Store.open(run_dir, create=False) as store:
        return collect(store)
