"""``compare``: train every init x seed of one setup together, store, summarize, report.

>>> import initlab
>>> result = initlab.compare(dataset="digits", arch="mlp:64x2", inits="lecun_normal,he_normal",
...                          seeds=2, steps=200, out="runs/demo")  # doctest: +SKIP
>>> print(result.summary_dict()["inits"][1]["test_accuracy"]["mean"])  # doctest: +SKIP

Each run is keyed by the hash of its :class:`~initlab.runspec.RunSpec`: running the same command
again reuses finished runs and trains nothing; an interrupted stack resumes from its checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from initlab.data import user
from initlab.data.datasets import load
from initlab.data.tensors import Dataset
from initlab.errors import ConfigError, InitlabError
from initlab.experiments.config import CompareConfig, make_config
from initlab.models.specs import build
from initlab.results.records import InitSummary, RunRecord
from initlab.results.store import Store, describe_environment
from initlab.results.summary import summarize, summary_json
from initlab.runspec import RunSpec, StackSpec
from initlab.train.precision import bf16_note
from initlab.train.trainer import train_stack

ProgressFn = Callable[[int, int], None]


@dataclass
class Comparison:
    """What ``compare`` produced: the run folder, records in config order and summaries.

    >>> import tempfile, initlab
    >>> options = dict(dataset="blobs", arch="mlp:16", inits="lecun_normal,he_normal", seeds=2,
    ...                steps=20, eval_every=10, report=False)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     first = initlab.compare(out=folder, **options)
    ...     again = initlab.compare(out=folder, **options)  # same runs: read from the store
    >>> (first.trained, first.reused), (again.trained, again.reused)
    ((4, 0), (0, 4))
    >>> [(r.config.init, r.config.seed) for r in again.records][:2], len(again.summaries)
    ([('lecun_normal', 0), ('lecun_normal', 1)], 2)
    """

    run_dir: Path
    config: dict[str, Any]
    records: list[RunRecord]
    summaries: list[InitSummary]
    trained: int = 0  # runs trained by this call (0 when everything was reused)
    reused: int = 0
    report_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. other runs the folder holds

    def summary_dict(self) -> dict[str, Any]:
        """What ``summary.json`` holds, as a dict: ``{"inits": [one entry per init]}``."""
        return summary_json(self.summaries)

    def summary_json(self) -> str:
        """``summary.json`` as text (indented JSON); :meth:`summary_dict` gives the dict."""
        return json.dumps(self.summary_dict(), indent=2)


def run_specs(config: CompareConfig) -> list[RunSpec]:
    """One RunSpec per init x seed, in the order of ``config.inits`` then seed: the settings
    ``config`` checked and spelled canonically, once."""
    arch, extra = config.model_arch(), config.controls().to_extra()
    return [
        RunSpec(
            dataset=config.dataset,
            arch=arch,
            activation=config.activation,
            init=init,
            seed=seed,
            optimizer=config.optimizer,
            lr=config.lr,
            batch_size=config.batch_size,
            steps=config.steps,
            eval_every=config.eval_every,
            target_loss=config.target_loss,
            bias_init=config.bias,
            extra=dict(extra),
        )
        for init in config.inits
        for seed in range(config.seeds)
    ]


def stack_specs(config: CompareConfig, runs: list[RunSpec]) -> list[StackSpec]:
    """The stacks ``runs`` train in: one, or one per run when the schedule is reduce-on-plateau
    (each model needs its own LR)."""
    if config.controls().per_model_lr:
        return [StackSpec((rc,), device=config.device) for rc in runs]
    return [StackSpec(tuple(runs), device=config.device)]


def default_run_dir(config: CompareConfig) -> Path:
    """``runs/compare-<hash of the resolved config>``: the same config finds its runs again."""
    digest = hashlib.sha256(repr(sorted(config.resolved().items())).encode()).hexdigest()[:8]
    return Path("runs") / f"compare-{digest}"


def compare(
    config: CompareConfig | None = None,
    *,
    out: str | Path | None = None,
    progress: ProgressFn | None = None,
    report: bool = True,
    data: Any = None,
    **options: Any,
) -> Comparison:
    """Train (or reuse) every init x seed, write the run folder and return a Comparison.

    ``options`` are :class:`CompareConfig` fields (``inits`` may be a comma-separated string).
    ``data`` is your own data instead of a named dataset: ``(x_train, y_train, x_test,
    y_test)`` arrays or tensors, ``(train, test)`` torch Datasets, or a Dataset
    (:mod:`initlab.data.user`); the runs are keyed by a hash of it.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     result = compare(dataset="blobs", arch="mlp:16", inits="lecun_normal,he_normal",
    ...                      seeds=2, steps=20, eval_every=10, out=folder, report=False)
    >>> [(s["init"], s["seeds"]) for s in result.summary_dict()["inits"]]
    [('lecun_normal', 2), ('he_normal', 2)]
    """
    if data is not None:
        options["dataset"] = user.register(user.as_dataset(data))
    if config is None:
        config = make_config(CompareConfig, **options)
    elif options:
        config = config.model_copy(update=options)
    run_dir = Path(out) if out is not None else default_run_dir(config)
    # everything that can still be wrong once the data is known is checked before the run
    # folder exists, so a bad command leaves nothing behind
    data = load(config.dataset, data_dir=config.data_dir)
    check_fits(config, data)
    with Store.open(run_dir) as store:
        store.write_config(config.resolved())
        if config.name:
            store.put_meta("name", config.name)
        runs = run_specs(config)
        done = store.finished_keys()
        todo = [rc for rc in runs if rc.key() not in done]
        if todo:
            store.put_meta("environment", _environment(config))
            records, checkpoint = _train(config, todo, run_dir, progress, data)
            for record in records:
                store.put_run(record)
            # only now that every run is stored may the stacks' checkpoints go
            for path in checkpoints(checkpoint, config, todo):
                path.unlink(missing_ok=True)
        records = [store.get_run(rc.key()) for rc in runs]
        summaries = summarize(records)  # this config's runs only; other runs stay stored
        store.put_summaries(summaries)
        store.put_meta("current_runs", [rc.key() for rc in runs])  # what the report shows
        notes = [n for n in (other_runs_note(store, runs),
                             bf16_note(config.precision, config.device) if todo else None) if n]  # fmt: skip
    result = Comparison(
        run_dir=run_dir,
        config=config.resolved(),
        records=records,
        summaries=summaries,
        trained=len(todo),
        reused=len(runs) - len(todo),
        notes=notes,
    )
    if report:
        result.report_path = _render(run_dir)
    return result


def other_runs_note(store: Store, runs: list[RunSpec]) -> str | None:
    """One line when the store holds runs other than ``runs`` (e.g. more seeds from an earlier
    command): how many, which seeds, and that they are kept while summary.json covers ``runs``.

    None when the folder holds exactly these runs. Nothing is deleted.
    """
    keys = {rc.key() for rc in runs}
    others = [spec for spec in store.configs() if spec.key() not in keys]
    if not others:
        return None
    setups = {replace(rc, seed=0).key() for rc in runs}  # the same settings, any seed
    same = [spec for spec in others if replace(spec, seed=0).key() in setups]
    seeds = sorted({rc.seed for rc in runs})
    parts = []
    if same:
        extra = sorted({spec.seed for spec in same})
        parts.append(f"{len(same)} of the same settings with seed{'s' if len(extra) > 1 else ''} "
                     f"{', '.join(map(str, extra))}")  # fmt: skip
    if len(others) > len(same):
        parts.append(f"{len(others) - len(same)} with other settings")
    return (
        f"{store.run_dir}: this config has {len(seeds)} seed{'s' if len(seeds) > 1 else ''} "
        f"({len(runs)} runs); the folder also holds {len(others)} other "
        f"run{'s' if len(others) > 1 else ''} ({'; '.join(parts)}), all kept; summary.json "
        f"covers only this config's {len(runs)} runs."
    )


def check_fits(config: CompareConfig, data: Dataset) -> None:
    """What only the data can tell: the batch fits the training split and the arch builds
    for its shapes (a factory that rejects them is one line here, not a traceback later)."""
    if config.batch_size > len(data.train):
        raise ConfigError(
            f"batch_size={config.batch_size} exceeds the {len(data.train)} training examples of "
            f"'{data.name}'; give --batch-size {len(data.train)} or less."
        )
    try:
        with torch.device("meta"):  # shapes only: no memory, no random draws
            build(config.arch, activation=config.activation, in_shape=data.in_shape,
                  n_classes=data.n_classes)  # fmt: skip
    except InitlabError:
        raise
    except Exception:  # noqa: BLE001  a factory that cannot run on meta: the trainer builds it
        pass


def _train(config: CompareConfig, todo: list[RunSpec], run_dir: Path, progress, data):
    """Train the runs still to do, checkpointing so a kill can resume."""
    stack_id = hashlib.sha256("".join(rc.key() for rc in todo).encode()).hexdigest()[:16]
    checkpoint = run_dir / "checkpoints" / f"stack-{stack_id}.safetensors"
    runs = train_runs(config, todo, checkpoint=checkpoint, progress=progress, data=data)
    return runs, checkpoint


def train_runs(
    config: CompareConfig,
    runs: list[RunSpec],
    *,
    checkpoint: Path | None = None,
    progress: ProgressFn | None = None,
    data: Any = None,
) -> list[RunRecord]:
    """Train ``runs`` (RunSpecs of ``config``, e.g. from :func:`run_specs`) in the stacks of
    :func:`stack_specs`; the records carry the runs' specs, in the order given.

    The building block of ``compare`` and of sweeps: it reads nothing from and writes nothing
    to a results store. ``data`` (a loaded Dataset) skips loading ``config.dataset`` again.
    With ``checkpoint``, an interrupted call resumes from that file.
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    if data is None:
        data = load(config.dataset, data_dir=config.data_dir)
    stacks = stack_specs(config, runs)
    paths = (
        checkpoints(checkpoint, config, runs) if checkpoint is not None else [None] * len(stacks)
    )
    records = []
    total = len(stacks) * config.steps
    for i, (spec, path) in enumerate(zip(stacks, paths, strict=True)):
        done = i * config.steps
        on_step = None if progress is None else (lambda s, n, d=done: progress(d + s, total))
        records += train_stack(spec, data, on_step=on_step, checkpoint_path=path)
    return records


def checkpoints(checkpoint: Path, config: CompareConfig, runs: list[RunSpec]) -> list[Path]:
    """The checkpoint file of each stack ``train_runs`` trains ``runs`` in."""
    if not config.controls().per_model_lr:
        return [checkpoint]
    return [checkpoint.with_name(f"{checkpoint.stem}-{rc.key()}.safetensors") for rc in runs]


def _environment(config: CompareConfig) -> dict[str, Any]:
    return describe_environment(
        torch_version=str(torch.__version__),
        device=config.device,
        threads=int(torch.get_num_threads()),
        seeds=config.seeds,
        seed=f"seed indices 0..{config.seeds - 1}",
        cpu=platform.processor() or platform.machine(),
    )


def _render(run_dir: Path) -> Path:
    from initlab.report.render import render_report  # lazy: matplotlib, 0.4 s; not for --no-report

    return render_report(run_dir)
