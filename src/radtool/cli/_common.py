"""Shared CLI helpers: consoles, the --debug flag, turning UserError into exit 2."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..errors import UserError

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


class _State:
    debug = False


state = _State()


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """User errors → one line on stderr, exit 2. Other errors → one line and exit 1, unless --debug."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            if state.debug:
                raise
            err_console.print(f"error: {exc.message}", markup=False, highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted; no partial output was written", markup=False)
            raise typer.Exit(130) from None
        except OSError as exc:  # a path the user gave cannot be read or written
            if state.debug:
                raise
            where = f": {exc.filename}" if exc.filename else ""
            err_console.print(f"error: {exc.strerror or exc}{where}", markup=False, highlight=False)
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug: one line, and the traceback on request
            if state.debug:
                raise
            err_console.print(f"internal error: {type(exc).__name__}: {exc} (run radtool --debug ... for the traceback)", markup=False, highlight=False)
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
