"""The typer app, user-error handling and the rich progress reporter shared by the commands."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..errors import UserError

app = typer.Typer(
    name="classify",
    help="Train, evaluate and explain chest X-ray image classifiers on radtool labels.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def stderr_console() -> Console:
    return Console(stderr=True)


def _debug() -> bool:
    """``radtool --debug`` (when mounted in the core CLI) or RADTOOL_DEBUG=1 shows tracebacks."""
    core = sys.modules.get("radtool.cli._common")  # only present when the core CLI is running
    return bool(os.environ.get("RADTOOL_DEBUG")) or bool(getattr(getattr(core, "state", None), "debug", False))


def handle_user_errors(func: F) -> F:
    """Turn a UserError into one line on stderr and exit status 2, so the app also works standalone."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            if _debug():
                raise
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None
        except OSError as exc:  # a path the user gave cannot be read or written
            if _debug():
                raise
            where = f": {exc.filename}" if exc.filename else ""
            print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def optional_path(value: Path | None) -> Path | None:
    return None if value is None or str(value) == "" else value


class RichReporter:
    """Progress bars and per-epoch lines on stderr (stdout stays free for tables)."""

    def __init__(self, console: Console | None = None, quiet: bool = False):
        self.console = console or stderr_console()
        self.quiet = quiet
        self._progress: Progress | None = None
        self._task = None

    def stage(self, description: str, total: int | None = None) -> None:
        self.done()
        if self.quiet:
            return
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total)

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def done(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def epoch(self, row: dict) -> None:
        if self.quiet:
            return
        auroc = row.get("val_macro_auroc")
        self.console.print(
            f"epoch {row['epoch']}: loss {row['train_loss']:.4f} train / {row['val_loss']:.4f} val, "
            f"AUROC {'n/a' if auroc is None else f'{auroc:.3f}'}, "
            f"{row['train_images_per_s']:.0f} img/s, {row['seconds']:.0f}s",
            soft_wrap=True,
        )

    def note(self, text: str) -> None:
        if not self.quiet:
            self.console.print(f"[yellow]{text}[/yellow]")


def split_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    return items or None
