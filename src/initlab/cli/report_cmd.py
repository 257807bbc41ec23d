"""``initlab report``: render a run folder's HTML report, or two experiments side by side."""

from __future__ import annotations

from pathlib import Path

import click

from initlab.errors import ConfigError


@click.command("report")
@click.argument("run_dir", required=False, type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the page [default: RUN_DIR/report.html].",
)
@click.option(
    "--compare",
    nargs=2,
    type=click.Path(path_type=Path),
    metavar="RUN_A RUN_B",
    help="Put two experiments side by side instead [default out: RUN_A/compare-RUN_B.html].",
)
def report(run_dir: Path | None, out: Path | None, compare: tuple[Path, Path] | None) -> None:
    """Render RUN_DIR's results store into one self-contained HTML page and print its path."""
    # lazy: matplotlib, kept out of CLI startup (initlab --help)
    from initlab.report.pages import render_page
    from initlab.report.render import render_comparison

    if compare:
        if run_dir is not None:
            raise ConfigError(
                f"Give either RUN_DIR or --compare RUN_A RUN_B, not both (got RUN_DIR '{run_dir}')."
            )
        path = render_comparison(compare[0], compare[1], out)
    elif run_dir is not None:
        path = render_page(run_dir, out)  # the page its command wrote (sweep, width, ...)
    else:
        raise ConfigError(
            "Missing RUN_DIR: try `initlab report runs/NAME` or --compare RUN_A RUN_B."
        )
    click.echo(str(path))


COMMANDS = [report]
