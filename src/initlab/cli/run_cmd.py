"""``initlab run NAME``: one command per classic experiment (``--list`` shows them)."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from initlab.cli import progress  # the module: tests replace progress.progress_bar
from initlab.cli.options import DATA_DIR_HELP, search_data_dir_first
from initlab.cli.tables import print_any_result
from initlab.errors import ConfigError


@click.command("run")
@click.argument("name", required=False)
@click.option("--out", type=click.Path(file_okay=False), help="Run folder (default runs/NAME).")
@click.option("--quick", is_flag=True, help="The short version (the one `make demo` runs).")
@click.option("--list", "list_", is_flag=True, help="List the presets and exit.")
@click.option("--dataset", help="Another dataset for presets that take one (e.g. mnist).")
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
def run(name: str | None, out: str | None, quick: bool, list_: bool, dataset: str | None,
        data_dir: str | None) -> None:  # fmt: skip
    """Reproduce a classic initialization experiment with one command.

    \b
    Examples:
      initlab run --list
      initlab run saito-init-compare --out runs/saito
      initlab run deep-relu --quick
      initlab run regularization --dataset mnist
    """
    # lazy: torch, kept out of CLI startup (initlab --help)
    from initlab.experiments.presets import presets, run_preset

    console = Console()
    if list_ or name is None:
        if name is None and not list_:
            raise ConfigError(
                "Give a preset name, e.g. `initlab run saito-init-compare`; "
                "`initlab run --list` lists them."
            )
        table = Table(title="initlab presets")
        table.add_column("name")
        table.add_column("what it reproduces", overflow="fold")
        for p in presets():
            table.add_row(p.name, p.summary)
        console.print(table)
        return
    search_data_dir_first(data_dir)
    with progress.progress_bar(f"preset {name}") as bar:
        result = run_preset(name, out, quick=quick, progress=bar, dataset=dataset)
    print_any_result(result, console)


COMMANDS = [run]
