"""Presets about what happens after the init: regularization and learning-rate schedules.

Each runs several settings that differ in one control (not in init) into ONE run folder, so
the report shows them side by side: the report labels each group with the settings that
differ (``xavier_uniform [extra.l2=0.0001]``), and ``summary.json`` holds one entry per
setting.
"""

from __future__ import annotations

import math
from pathlib import Path

from initlab.data.datasets import load
from initlab.errors import DataError
from initlab.experiments.compare import Comparison, compare, other_runs_note
from initlab.experiments.config import CompareConfig
from initlab.experiments.preset_registry import Lesson, MultiResult, describe, preset
from initlab.report.render import render_report
from initlab.results.grouping import group_labels
from initlab.results.store import Store
from initlab.results.summary import format_stat, stat, summarize

MLP_EPOCH = 55_000 // 100  # steps per epoch at batch 100 (the training split without val)


def _settings_into_one_folder(out: Path, progress, name: str, base: dict, settings,
                              report: bool = True):  # fmt: skip
    """Train each (label, options) setting into ``out``; one combined summary (and report)."""
    records, trained, reused = [], 0, 0
    for _label, options in settings:
        part = compare(out=out, progress=progress, report=False, name=name, **base, **options)
        records += part.records
        trained, reused = trained + part.trained, reused + part.reused
    labels = group_labels(records)
    summaries = summarize(records, labels)  # this call's runs only; other runs stay stored
    with Store.open(out) as store:
        store.put_meta("name", name)
        store.put_meta("config", {**base, "settings": {k: v for k, v in settings}})
        store.put_summaries(summaries)
        store.write_config({**base, "settings": {k: v for k, v in settings}})
        note = other_runs_note(store, [r.config for r in records])
    combined = Comparison(run_dir=out, config={"name": name, **base}, records=records,
                          summaries=summaries, trained=trained, reused=reused,
                          notes=[note] if note else [])  # fmt: skip
    if report:
        combined.report_path = render_report(out)
    return combined


def _record_and_render(result: Comparison, lines: list[str]) -> None:
    """Keep ``lines`` (what ran, notes, lessons) in the folder (meta ``diagnosis``, shown
    by its report), then render the report."""
    with Store.open(result.run_dir) as store:
        store.put_meta("diagnosis", lines)
    result.report_path = render_report(result.run_dir)


def settings_line(base: dict, settings, train_size: int | None = None) -> str:
    """``ran: ...``: the shared config (from ``base``) and the settings side by side."""
    config = CompareConfig(**{k: v for k, v in base.items() if k in CompareConfig.model_fields})
    names = " | ".join(
        label + (f" ({', '.join(f'{k}={v}' for k, v in options.items())})" if options else "")
        for label, options in settings
    )
    return f"ran: {describe(config, train_size)}; settings {names}"


def _train_size(dataset: str) -> int | None:
    try:
        return len(load(dataset).train)  # cached: the run loaded it
    except DataError:
        return None


def _paired(claim: str, names: tuple[str, str], a, b, higher: bool) -> Lesson:
    """Whether ``a`` beats ``b`` seed by seed (the runs of one seed share init and batches):
    shown when the 95% CI of the per-seed difference a - b excludes 0 on the right side."""
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if math.isfinite(x) and math.isfinite(y)]
    d = stat([x - y for x, y in pairs])
    head = (
        f"{claim}: {names[0]} {_mean(a):.4f} vs {names[1]} {_mean(b):.4f}; difference "
        f"{format_stat(d)} (mean ± 95% CI, paired over {len(pairs)} seeds)"
    )
    if not math.isfinite(d.ci95):
        return Lesson(claim, head + ": with one seed there is no CI, so this run does not "
                      "establish it.", None)  # fmt: skip
    low, high = d.mean - d.ci95, d.mean + d.ci95
    if (low > 0) if higher else (high < 0):
        return Lesson(claim, head + ": the CI excludes 0, so this run shows it.", True)
    return Lesson(claim, head + ": the CI includes 0 or the sign is reversed, so this run "
                  "does not establish it.", False)  # fmt: skip


def _by_setting(records, settings) -> dict[str, list]:
    """The records of each setting label, in seed order (the settings' runs in call order)."""
    labels = group_labels(records)
    groups: dict[str, list] = {}
    for r, lab in zip(records, labels, strict=True):
        groups.setdefault(lab, []).append(r)
    ordered = list(groups.values())
    return {label: sorted(runs, key=lambda r: r.config.seed)
            for (label, _), runs in zip(settings, ordered, strict=True)}  # fmt: skip


def _val_lines(records, labels) -> list[str]:
    """Per setting: final and best val loss (mean over seeds) and how far final is above."""
    lines = []
    for label in dict.fromkeys(labels):
        runs = [r for r, lab in zip(records, labels, strict=True) if lab == label]
        final = _mean([r.val_loss for r in runs])
        best = _mean([min(r.metrics["val_loss"].values) for r in runs])
        steps = ", ".join(str(r.stopped_step or r.config.steps) for r in runs)
        lines.append(
            f"{label}: final val loss {final:.4f}, best {best:.4f} "
            f"({100 * (final / best - 1):+.1f}% above best); trained to step {steps}"
        )
    return lines


def _mean(values) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


REGULARIZERS = (
    ("none", {}),
    ("l2", {"l2": 1e-4}),
    ("l1", {"l1": 1e-5}),
    ("dropout", {"dropout": 0.5}),
    ("early-stopping", {"early_stopping": "monitor=val_loss,patience=5,restore_best=true"}),
)
_QUICK = {True: " (quick)", False: ""}  # the run's name says which version ran
QUICK_DATASET = "digits"  # 1,197 training images (scikit-learn's 8x8 digits): overfits fast


def _regularization(quick: bool, dataset: str | None = None) -> dict:
    if quick:
        return dict(
            dataset=dataset or QUICK_DATASET, arch="mlp:256,256", activation="relu",
            inits=["xavier_uniform"], seeds=3, optimizer="adam", lr=1e-3, batch_size=100,
            steps=800, eval_every=25,
        )  # fmt: skip
    return dict(
        dataset=dataset or "fashion-mnist", arch="mlp:256,256", activation="relu",
        inits=["xavier_uniform"], seeds=1, optimizer="adam", lr=1e-3, batch_size=100,
        steps=40 * MLP_EPOCH, eval_every=MLP_EPOCH,
    )  # fmt: skip


def _summary_of(settings, lesson_text: str, names: str) -> str:
    full, quick = settings(False), settings(True)
    changed = [f"{k.replace('_', ' ')} {quick[k]}" for k in full if quick[k] != full[k]]
    return f"{lesson_text}. {describe(full)}; {names} (--quick: {', '.join(changed)})"


def regularization_lessons(records, steps: int) -> list[Lesson]:
    """Overfitting (the unregularized runs end above their best val loss), early stopping
    (it stops before ``steps`` and ends no worse than no regularization) and dropout (a lower
    final val loss than none), each paired seed by seed."""
    groups = _by_setting(records, REGULARIZERS)
    none, es, dropout = groups["none"], groups["early-stopping"], groups["dropout"]
    final = [r.val_loss for r in none]
    best = [min(r.metrics["val_loss"].values) for r in none]
    stops = [r.stopped_step for r in es]
    fired = sum(s is not None and s < steps for s in stops)
    stop_text = ", ".join("never" if s is None else str(s) for s in stops)
    return [
        _paired("Without regularization the net overfits (final val loss above its best)",
                ("final", "best"), final, best, higher=True),
        Lesson(
            "Early stopping fires",
            f"Early stopping fires: {fired} of {len(stops)} runs stopped before step {steps} "
            f"(stopped at: {stop_text}) and kept their best weights"
            + (", so this run shows it." if fired == len(stops) and stops
               else ", so this run does not show it."),
            fired == len(stops) and bool(stops),
        ),
        _paired("Early stopping ends with a lower val loss than no regularization",
                ("none", "early stopping"), final, [r.val_loss for r in es], higher=True),
        _paired("Dropout 0.5 ends with a lower val loss than no regularization",
                ("none", "dropout"), final, [r.val_loss for r in dropout], higher=True),
    ]  # fmt: skip


@preset(
    "regularization",
    _summary_of(
        lambda quick: _regularization(quick),
        "Regularization side by side, train vs val curves",
        "settings none / L2 1e-4 / L1 1e-5 / dropout 0.5 / early stopping (val_loss, patience "
        "5, restore best)",
    ),
    in_demo=True,
)
def regularization(out: Path, quick: bool = False, progress=None, dataset: str | None = None):
    """None / L2 / L1 / dropout / early stopping side by side (quick: 8x8 digits, where a
    256-256 net overfits within seconds; MNIST when scikit-learn is missing)."""
    lines = []
    base = _regularization(quick, dataset)
    if quick and dataset is None:
        try:
            load(base["dataset"])
        except DataError as e:
            lines.append(f"{e} The quick run uses MNIST instead.")
            base = {**_regularization(False, "mnist"), "steps": 300, "eval_every": 100}
    try:
        load(base["dataset"])
    except DataError as e:
        raise DataError(
            f"{e} Or run this preset on MNIST: `initlab run regularization --dataset mnist`."
        ) from None
    result = _settings_into_one_folder(
        out, progress, "regularization" + _QUICK[quick], base, REGULARIZERS, report=False
    )
    lessons = regularization_lessons(result.records, base["steps"])
    lines = [
        settings_line(base, REGULARIZERS, _train_size(base["dataset"])),
        *result.notes,
        *lines,
        *_val_lines(result.records, group_labels(result.records)),
        *(x.text for x in lessons),
    ]
    _record_and_render(result, lines)
    return MultiResult(out, [result], lines, lessons)


def _schedules(steps: int) -> tuple:
    quarter = steps // 4
    return (
        ("constant", {"schedule": "constant"}),
        ("step", {"schedule": f"step:step_size={quarter},gamma=0.5"}),
        ("cosine", {"schedule": f"cosine:decay_steps={steps}"}),
        # periods quarter, 2 quarters (t_mul 2), then the rest of a 4-quarter one
        ("cosine-restarts", {"schedule": f"cosine_restarts:first_decay_steps={quarter},t_mul=2"}),
    )


def _lr_settings(quick: bool, dataset: str | None = None) -> dict:
    return dict(
        dataset=dataset or "mnist", arch="mlp:100x4", activation="relu", inits=["he_normal"],
        seeds=3, optimizer="momentum", lr=0.05, batch_size=128, steps=400 if quick else 2000,
        eval_every=200 if quick else 250,
    )  # fmt: skip


@preset(
    "lr-schedules",
    _summary_of(
        lambda quick: _lr_settings(quick),
        "Learning-rate schedules under He init",
        "constant vs step (x0.5 every quarter) vs cosine vs cosine with warm restarts",
    ),
)
def lr_schedules(out: Path, quick: bool = False, progress=None, dataset: str | None = None):
    """Constant vs step vs cosine vs cosine with warm restarts, same init and optimizer."""
    base = _lr_settings(quick, dataset)
    settings = _schedules(base["steps"])
    result = _settings_into_one_folder(
        out, progress, "lr-schedules" + _QUICK[quick], base, settings, report=False
    )
    lines = [settings_line(base, settings, _train_size(base["dataset"])), *result.notes]
    lines += [
        f"{s.init}: final train loss {format_stat(s.final_train_loss)}, "
        f"test acc {format_stat(s.test_accuracy)}"
        for s in result.summaries
    ]
    groups = _by_setting(result.records, settings)
    loss = {label: [r.final_train_loss for r in runs] for label, runs in groups.items()}
    lessons = [
        _paired("Annealing the LR (cosine) ends with a lower train loss than a constant LR",
                ("constant", "cosine"), loss["constant"], loss["cosine"], higher=True),
    ]  # fmt: skip
    lines += [x.text for x in lessons]
    _record_and_render(result, lines)
    return MultiResult(out, [result], lines, lessons)
