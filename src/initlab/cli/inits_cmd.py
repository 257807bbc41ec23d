"""``initlab list-inits``: every scheme with its formula and aliases."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table


@click.command("list-inits")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead.")
def list_inits(as_json: bool) -> None:
    """List every initializer: canonical name, aliases, formula and default options.

    \b
    Example:
      initlab list-inits
      initlab list-inits --json | jq '.[].name'
    """
    # lazy: torch, kept out of CLI startup (initlab --help)
    from initlab.initializers.registry import get, names, scheme_class, scheme_kind

    rows = []
    for name in names():
        cls = scheme_class(name)
        rows.append(
            {
                "name": name,
                "aliases": list(cls.aliases),
                "kind": scheme_kind(cls),
                "formula": cls.formula,
                "defaults": get(name).to_config(),
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="initlab initializers")
    for col in ("name", "aliases", "kind", "formula"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], ", ".join(r["aliases"]), r["kind"], escape(r["formula"]))
    Console().print(table)


COMMANDS = [list_inits]
