"""Shared CLI helpers: consoles, the --debug flag, turning UserError into exit 2."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..errors import UserError, one_line, shown
from ..io.writers import journal

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


class _State:
    debug = False
    interrupt_reported = False


state = _State()


def print_error(message: str) -> None:
    """One line on stderr, whatever ``message`` holds: unprintable characters (newlines, terminal
    escapes) escaped, no rich markup, highlighting or :emoji: codes interpreted."""
    err_console.print(one_line(message), markup=False, highlight=False, emoji=False)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """User errors → one line on stderr, exit 2. Other errors → one line and exit 1, unless --debug.
    Ctrl-C → one line saying what is on disk (from the writers' journal), exit 130."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        journal.reset()
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            if state.debug:
                raise
            print_error(f"error: {exc.message}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            print_error(f"interrupted; {journal.interruption_note()}")
            state.interrupt_reported = True
            raise typer.Exit(130) from None
        except OSError as exc:  # a path the user gave cannot be read or written
            if state.debug:
                raise
            where = f": {shown(exc.filename)}" if exc.filename else ""
            print_error(f"error: {exc.strerror or exc}{where}")
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug: one line, and the traceback on request
            if state.debug:
                raise
            print_error(f"internal error: {type(exc).__name__}: {exc} (run radtool --debug ... for the traceback)")
            raise typer.Exit(1) from None

    return wrapper


def progress_bar(transient: bool = False) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
    )
