"""Rich tables for command output (plain records in, text out)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from initlab.results.summary import format_stat, verdict


def comparison_table(summaries, title: str = "initlab compare") -> Table:
    """A rich Table with one row per init: losses, test accuracy with its 95% CI, steps to
    target, divergences (and early stops, when any)."""
    table = Table(title=title)
    stopped = any(s.stopped for s in summaries)  # early stopping: show its column
    columns = ["init", "seeds", "train loss", "val loss", "test acc ± 95% CI", "steps to target",
               "diverged"] + (["stopped"] if stopped else [])  # fmt: skip
    for col in columns:
        if col == "init":
            table.add_column(col, overflow="fold")
        else:
            table.add_column(col, justify="right")
    for s in summaries:
        row = [
            escape(s.init),  # labels such as "he_normal [l2=0.0001]" are text, not markup
            str(s.seeds),
            format_stat(s.final_train_loss),
            format_stat(s.val_loss) if s.val_loss else "-",
            format_stat(s.test_accuracy),
            format_stat(s.steps_to_target, digits=0) if s.steps_to_target else "never",
            str(s.diverged),
        ]
        table.add_row(*row, *([str(s.stopped)] if stopped else []))
    return table


def print_comparison(result, console: Console | None = None) -> None:
    """The table, the verdict, and where the run folder and report are."""
    console = console or Console()
    console.print(comparison_table(result.summaries))
    console.print(escape(verdict(result.summaries)))
    for note in getattr(result, "notes", ()):
        console.print(escape(note))
    if result.trained == 0:
        console.print(f"all {result.reused} runs reused from the store; nothing trained")
    console.print(f"run folder: {result.run_dir}")
    if result.report_path:
        console.print(f"report: {result.report_path}")


def print_any_result(result, console: Console | None = None) -> None:
    """Print what a preset returned: a Comparison, or an object with its own ``print``."""
    console = console or Console()
    if hasattr(result, "parts"):  # several comparisons (e.g. residual-depth)
        for line in result.lines:
            console.print(escape(line))
        for part in result.parts:
            console.print(f"[bold]{escape(str(part.config.get('name')))}[/]")
            print_comparison(part, console)
    elif hasattr(result, "summaries"):
        print_comparison(result, console)
    elif hasattr(result, "print"):
        result.print(console)
    else:
        console.print(result)
