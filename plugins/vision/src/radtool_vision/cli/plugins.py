"""``radtool classify plugins``: list the installed classifier plugins (entry points)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from ..plugins import available_plugins, load_plugin
from ._util import app, handle_errors


@app.command("plugins")
@handle_errors
def plugins_cli(
    archs: bool = typer.Option(False, "--archs", help="Also list the timm architectures of each family."),
) -> None:
    """List installed classifier plugins with their default architecture."""
    table = Table(title="radtool_classifiers plugins")
    for col in ("plugin", "default arch", "description", "entry point"):
        table.add_column(col)
    for name, target in available_plugins().items():
        try:
            plugin = load_plugin(name)
        except Exception as exc:  # noqa: BLE001 - a broken third-party plugin must not hide the others
            table.add_row(name, "-", f"cannot load: {type(exc).__name__}: {exc}", target)
            continue
        table.add_row(name, plugin.default_arch, plugin.description, target)
    Console(width=200).print(table)
    if archs:
        for name in available_plugins():
            plugin = load_plugin(name)
            typer.echo(f"{name}: {' '.join(plugin.list_archs())}")
