"""The ``initlab`` command line: thin click groups that parse, call the library, print.

Any :class:`initlab.errors.InitlabError` (and click's own usage errors) becomes one line on
stderr and exit status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys

import click

# Each command lives in its own module; _register adds them all, so `initlab --help` is whole.
from initlab.cli import (
    compare_cmd,
    coord_cmd,
    criticality_cmd,
    inits_cmd,
    probe_cmd,
    report_cmd,
    run_cmd,
    sweep_cmd,
)
from initlab.errors import InitlabError

# Commands that store finished runs and checkpoints as they go, so a rerun resumes.
TRAINING_COMMANDS = ("compare", "run", "sweep")
RESUME_HINT = " Finished runs and the last checkpoint are kept: rerun the same command to resume."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="initlab")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """initlab: how should I initialize this network, and what does my init do to it?"""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _register() -> None:
    for module in (inits_cmd, probe_cmd, compare_cmd, run_cmd, report_cmd, sweep_cmd, coord_cmd,
                   criticality_cmd):  # fmt: skip
        for command in getattr(module, "COMMANDS", ()):
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one-line errors, exit status 2 on bad input."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="initlab", standalone_mode=False)
    except click.exceptions.Abort as e:
        # click turns Ctrl-C (KeyboardInterrupt) into Abort; say how to resume when it can.
        interrupted = isinstance(e.__cause__, KeyboardInterrupt)
        click.echo(_interrupted(args) if interrupted else "Aborted.", err=True)
        sys.exit(130)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        if debug:
            raise
        click.echo(f"Error: {e.format_message()}", err=True)
        sys.exit(2)
    except InitlabError as e:
        if debug:
            raise
        click.echo(f"Error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo(_interrupted(args), err=True)
        sys.exit(130)


def _interrupted(args: list[str]) -> str:
    command = next((a for a in args if not a.startswith("-")), "")
    return "Interrupted." + (RESUME_HINT if command in TRAINING_COMMANDS else "")
