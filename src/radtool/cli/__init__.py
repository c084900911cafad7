"""The ``radtool`` command line: one typer app, one module per command.

Each command module defines ``<cmd>_cli`` (argument parsing, terminal output) that calls a plain
importable function. User errors (:class:`radtool.errors.UserError`) become one line on stderr and
exit status 2; ``--debug`` shows the traceback instead. Plugins add commands through the
``radtool_commands`` entry-point group (``radtool classify`` comes from radtool-vision).
"""

from __future__ import annotations

import signal
import sys

from .. import _interrupted_while_starting  # the console script's Ctrl-C handler during imports (radtool/__init__.py)

import importlib  # noqa: E402
from importlib.metadata import entry_points  # noqa: E402

import typer  # noqa: E402

try:  # typer >= 0.20 carries its own copy of click; its exceptions are the ones raised
    from typer._click import exceptions as _cx  # noqa: E402
except ImportError:  # pragma: no cover - older typer on real click
    from click import exceptions as _cx  # noqa: E402

from ..errors import one_line  # noqa: E402
from . import options  # noqa: F401  (flags show no <bool> type in help)
from ._common import console, err_console, print_error, state  # noqa: E402

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
            err_console.print(one_line(f"warning: plugin command {ep.name!r} failed to load: {exc}"), markup=False, highlight=False, emoji=False)
            continue
        app.add_typer(sub, name=ep.name)
    if "classify" not in plugin_names:

        @app.command("classify", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
        def classify_missing() -> None:
            """Image classifiers (needs the radtool-vision plugin: pip install -e plugins/vision)."""
            err_console.print("error: 'radtool classify' needs the radtool-vision plugin: pip install -e plugins/vision")
            raise typer.Exit(2)


_register()


def main() -> int:
    # Core commands never need thinc's PyTorch layers: keep thinc from importing torch (seconds and
    # ~0.5 GB per process). Library users of radtool.load() are not affected (see radtool._lazy).
    from .._lazy import hide_torch_from_thinc

    hide_torch_from_thinc()
    return run(sys.argv[1:])


def run(args: list[str]) -> int:
    """Run the CLI on ``args`` and return the exit status. Every error is one line on stderr:
    usage errors (a missing argument, ``-n 0``) exit 2 like user errors, instead of click's box."""
    if signal.getsignal(signal.SIGINT) is _interrupted_while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # imports done: commands handle Ctrl-C
    state.interrupt_reported = False
    try:
        code = app(args=args, prog_name="radtool", standalone_mode=False)
    except _cx.NoArgsIsHelpError as exc:
        console.print(exc.ctx.get_help() if exc.ctx else exc.format_message(), markup=False, highlight=False, emoji=False)
        return 0
    except _cx.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "radtool"
        print_error(f"error: {exc.format_message().rstrip('.')} (see {where} --help)")
        return exc.exit_code if exc.exit_code else 2
    except _cx.ClickException as exc:
        print_error(f"error: {exc.format_message()}")
        return exc.exit_code
    except (typer.Abort, _cx.Abort if hasattr(_cx, "Abort") else typer.Abort, KeyboardInterrupt):
        code = 130
    if code == 130 and not state.interrupt_reported:
        from ..io.writers import journal

        print_error(f"interrupted; {journal.interruption_note()}")
    return code if isinstance(code, int) else 0


__all__ = ["app", "main", "run", "console", "err_console"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
