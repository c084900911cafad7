"""The ``radtool`` command line: one typer app, one module per command.

Each command module defines ``<cmd>_cli`` (argument parsing, terminal output) that calls a plain
importable function. User errors (:class:`radtool.errors.UserError`) become one line on stderr and
exit status 2; ``--debug`` shows the traceback instead. Plugins add commands through the
``radtool_commands`` entry-point group (``radtool classify`` comes from radtool-vision).
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points

import typer

from ._common import console, err_console, state

app = typer.Typer(
    name="radtool",
    help="Chest X-ray reports into labels and graphs; image classifiers on those labels.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

COMMAND_MODULES = ("parse", "evaluate", "stats", "similarity", "resolve", "show")


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        console.print(f"radtool {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    state.debug = debug


def _register() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        module.register(app)
    plugin_names = set()
    for ep in entry_points(group="radtool_commands"):
        plugin_names.add(ep.name)
        try:
            sub = ep.load()
        except Exception as exc:  # a broken plugin must not break the core CLI
            err_console.print(f"[yellow]warning:[/] plugin command {ep.name!r} failed to load: {exc}")
            continue
        app.add_typer(sub, name=ep.name)
    if "classify" not in plugin_names:

        @app.command("classify", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
        def classify_missing() -> None:
            """Image classifiers (needs the radtool-vision plugin: pip install -e plugins/vision)."""
            err_console.print("error: 'radtool classify' needs the radtool-vision plugin: pip install -e plugins/vision")
            raise typer.Exit(2)


_register()


def main() -> None:
    # Core commands never need thinc's PyTorch layers: keep thinc from importing torch (seconds and
    # ~0.5 GB per process). Library users of radtool.load() are not affected (see radtool._lazy).
    from .._lazy import hide_torch_from_thinc

    hide_torch_from_thinc()
    app()


__all__ = ["app", "main", "console", "err_console"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
