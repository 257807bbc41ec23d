"""``initlab coord-check``: mean |activation| per layer against width over the first steps."""

from __future__ import annotations

import click
from rich.console import Console

from initlab.errors import ConfigError


def _widths(text: str) -> list[int]:
    try:
        widths = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        widths = []
    if len(widths) < 2 or any(w < 1 for w in widths):
        raise ConfigError(
            f"Bad --widths {text!r}: give two or more positive integers separated by commas, "
            "e.g. 64,128,256,512,1024."
        )
    return widths


@click.command("coord-check")
@click.option(
    "--arch",
    default="initlab.models.mup:mlp",
    show_default=True,
    help="package.module:factory[:key=value,...]; the factory takes width=.",
)
@click.option("--widths", default="64,128,256,512,1024", show_default=True)
@click.option("--parametrization", default="mup", show_default=True, help="sp or mup.")
@click.option(
    "--base-width",
    type=int,
    default=None,
    help="Width where mup equals sp (default: the smallest width).",
)
@click.option("--optimizer", default="adam", show_default=True, help="sgd or adam.")
@click.option("--lr", type=float, default=1e-2, show_default=True)
@click.option("--steps", type=int, default=5, show_default=True)
@click.option("--seeds", type=int, default=3, show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--dataset", default="mnist", show_default=True)
@click.option("--activation", default="relu", show_default=True)
@click.option("--init", default="auto", show_default=True, help="Initializer spec (init_).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--threads", type=int, default=None, help="torch.set_num_threads.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder for the store and report.html.")  # fmt: skip
def coord_check_cmd(widths: str, **options) -> None:
    """Train each width a few steps and show whether layer sizes grow with width.

    \b
    Examples:
      initlab coord-check --parametrization sp --out runs/coord-sp
      initlab coord-check --parametrization mup --base-width 64 --optimizer adam --lr 1e-2 \\
          --widths 64,128,256,512,1024 --steps 5 --seeds 3 --out runs/coord-mup
    """
    from initlab.experiments.coord_check import coord_check  # lazy: torch, kept out of CLI startup

    result = coord_check(widths=_widths(widths), **options)
    console = Console()
    result.print(console if console.is_terminal else Console(width=120))


COMMANDS = [coord_check_cmd]
