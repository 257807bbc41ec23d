"""Shared CLI pieces: options with a help group, list options that take specs, tables."""

from __future__ import annotations

import os

import click


class GroupedOption(click.Option):
    """A click option that remembers which help section it belongs to."""

    def __init__(self, *args, group: str = "Options", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.group = group


class GroupedCommand(click.Command):
    """Prints ``--help`` options under their ``group`` headings, in first-seen order."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Write the options under one help section per ``group``, in first-seen order."""
        groups: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            groups.setdefault(getattr(param, "group", "Other"), []).append(record)
        for name, records in groups.items():
            with formatter.section(name):
                formatter.write_dl(records)


def option(*names: str, group: str, **kwargs):
    """``click.option`` with a help group."""
    return click.option(*names, cls=GroupedOption, group=group, **kwargs)


DATA_DIR_HELP = "Where to look for data files first (then INITLAB_DATA, ../shared/data, ...)."


def search_data_dir_first(data_dir: str | None) -> None:
    """Make ``--data-dir`` the first folder every dataset lookup of this process searches
    (it goes in front of ``INITLAB_DATA``), for commands whose presets or jobs load data."""
    if data_dir:
        rest = os.environ.get("INITLAB_DATA", "")
        os.environ["INITLAB_DATA"] = os.pathsep.join(
            p for p in (os.path.abspath(data_dir), rest) if p
        )
