"""``initlab sweep``: a grid of inits x activations x depths x lrs x seeds, local or on Ray."""

from __future__ import annotations

import math

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from initlab.cli.options import DATA_DIR_HELP, GroupedCommand, option, search_data_dir_first
from initlab.results.summary import format_stat

RUN, BACKEND = "Run", "Backend"


@click.command("sweep", cls=GroupedCommand)
@click.argument("sweep_file", type=click.Path(dir_okay=False))
@option(
    "--backend",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    group=BACKEND,
    help="local: a process pool on this machine; ray: Ray core tasks.",
)
@option(
    "--workers",
    type=click.IntRange(min=1),
    group=BACKEND,
    help="Jobs at once (local default: cores / threads per job; ray: the cluster's CPUs).",
)
@option(
    "--address",
    group=BACKEND,
    help="Join this Ray cluster (e.g. auto or ray://head:10001); default: start one here.",
)
@option(
    "--threads-per-job",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    group=BACKEND,
    help="torch threads of every job, whatever the backend: same numbers.",
)
@option(
    "--out",
    type=click.Path(file_okay=False),
    group=RUN,
    help="Results folder (default runs/sweep-HASH). Rerunning skips finished jobs.",
)
@option("--no-report", is_flag=True, group=RUN, help="Do not write report.html.")
@option("--data-dir", type=click.Path(file_okay=False), group=RUN, help=DATA_DIR_HELP)
@option("--device", group=RUN, help="cpu, cuda or mps for every job (overrides the file's).")
def sweep(sweep_file, backend, workers, address, threads_per_job, out, no_report,
          data_dir, device) -> None:  # fmt: skip
    """Train a grid of settings read from SWEEP_FILE; print the best init per cell.

    \b
    Each init is taken at its own best learning rate (lowest mean validation loss over
    seeds), then inits are ranked by mean test accuracy with 95% CIs.
    \b
    Example (72 trainings in 8 stacked jobs on digits):
      initlab sweep examples/sweep-small.toml --backend local --workers 2 --out runs/small
    """
    # lazy: torch, kept out of CLI startup (initlab --help)
    from initlab.experiments.sweep import load_sweep
    from initlab.experiments.sweep_run import run_sweep

    search_data_dir_first(data_dir)  # before the workers start: they inherit it
    # --device is checked with the file's other settings
    plan = load_sweep(sweep_file, overrides=None if device is None else {"device": device})
    err = Console(stderr=True)

    def on_event(job, status, n, total):
        err.print(f"job {n}/{total} {status}: {escape(job.label())}", highlight=False)

    result = run_sweep(plan, backend=backend, workers=workers, address=address, out=out,
                       threads_per_job=threads_per_job, report=not no_report,
                       on_event=on_event)  # fmt: skip
    print_sweep(result)


def sweep_table(rows) -> Table:
    """One section per cell: its inits ranked by mean test accuracy at their best lr."""
    axes = list(rows[0].cell) if rows else []
    table = Table(title="initlab sweep: best init per cell (each init at its best lr)")
    for col in [*axes, "rank", "init", "best lr", "val loss", "test acc ± 95% CI", "failed"]:
        table.add_column(col, justify="left" if col == "init" or col in axes else "right")
    last = None
    for r in rows:
        cell = tuple(r.cell.values())
        if last is not None and cell != last:
            table.add_section()
        shown = [str(v) for v in cell] if cell != last else [""] * len(cell)
        last = cell
        val = f"{r.val_loss:.4f}" if math.isfinite(r.val_loss) else "—"
        table.add_row(*map(escape, shown), str(r.rank), escape(r.init), f"{r.lr:g}"
                      if r.lr is not None else "—", val, format_stat(r.test_accuracy),
                      str(r.failed))  # fmt: skip
    return table


def print_sweep(result, console: Console | None = None) -> None:
    """Print the sweep table, the job counts, each failed job's error and where the run
    folder (and report) are."""
    if console is None:  # wide enough for init specs even when piped (rich assumes 80)
        console = Console(width=max(Console().width, 120))
    console.print(sweep_table(result.rows))
    trained = result.trained_jobs + result.failed_jobs
    line = f"{result.jobs} jobs: {result.trained_jobs} trained, {result.reused_jobs} reused"
    line += f", {result.failed_jobs} failed"
    if result.retried:
        line += f", {result.retried} retries"
    console.print(line + ("; nothing trained" if trained == 0 else ""))
    for label, error in result.errors.items():
        console.print(f"failed: {escape(label)}: {escape(error)}", highlight=False)
    console.print(f"run folder: {result.run_dir}")
    if result.report_path:
        console.print(f"report: {result.report_path}")


COMMANDS = [sweep]
