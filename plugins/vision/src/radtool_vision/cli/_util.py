"""The ``classify`` typer app and what its commands share with the core CLI.

Options (``--out/-o``, ``--quiet/-q``, ``--id-col``) come from :mod:`radtool.cli.options`, errors go
through the core's :func:`radtool.cli._common.handle_errors` (exit 2 and one line for a user error,
exit 1 and one line for a bug, the traceback with ``--debug``, a clean Ctrl-C) and progress through
its :func:`~radtool.cli._common.progress_bar`; only ``--out`` of ``train`` is the plugin's own, because
a run folder is continued by ``--resume`` rather than replaced.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from radtool.cli._common import err_console, handle_errors, progress_bar, state

from ._app import app

RunOutOpt = Annotated[Path, typer.Option(
    "--out", "-o",
    help="Run folder: config.json, best.pt, last.pt, history.csv, metrics.json, PNG curves, cache/ "
         "(kept for --resume; removed again if the run fails before its first checkpoint).")]
RunOpt = Annotated[Path, typer.Option("--run", help="Run folder written by `classify train` (or its best.pt).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto | cpu | cuda.")]
AllowOutsideRootOpt = Annotated[bool, typer.Option(
    "--allow-outside-root",
    help="Read image paths that lead outside --image-root (../, absolute paths); refused by default.")]
# hidden, deprecated spelling of the core's --id-col
IdColumnAlias = Annotated[Optional[str], typer.Option("--id-column", hidden=True)]


@app.callback()
def classify_callback(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors (also RADTOOL_DEBUG=1)."),
) -> None:
    """Train, evaluate and explain chest X-ray image classifiers on radtool labels."""
    if debug or os.environ.get("RADTOOL_DEBUG"):
        state.debug = True  # never switched off here: `radtool --debug classify ...` sets it first


def optional_path(value: Path | None) -> Path | None:
    return None if value is None or str(value) == "" else value


def id_col_option(id_col: str | None, id_column: str | None) -> str | None:
    """``--id-col``, or the deprecated ``--id-column`` (with a warning)."""
    if id_column is not None:
        err_console.print("warning: --id-column is deprecated; use --id-col", markup=False, highlight=False)
    return id_col or id_column


class RichReporter:
    """Progress bars (on a terminal only: piped output gets no bar lines) and one line per epoch, on stderr.

    ``quiet`` keeps errors and warnings only, as ``--quiet`` does for every radtool command.
    """

    def __init__(self, quiet: bool = False):
        self.console = err_console
        self.quiet = quiet
        self._progress = None
        self._task = None

    def stage(self, description: str, total: int | None = None) -> None:
        self.done()
        if self.quiet or not self.console.is_terminal:
            return
        self._progress = progress_bar(transient=True)
        self._progress.start()
        self._task = self._progress.add_task(description, total=total)

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def done(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def epoch(self, row: dict) -> None:
        if self.quiet:
            return
        auroc = row.get("val_macro_auroc")
        self._print(
            f"epoch {row['epoch']}: loss {row['train_loss']:.4f} train / {row['val_loss']:.4f} val, "
            f"AUROC {'n/a' if auroc is None else f'{auroc:.3f}'}, "
            f"{row['train_images_per_s']:.0f} img/s, {row['seconds']:.0f}s"
        )

    def info(self, text: str) -> None:
        if not self.quiet:
            self._print(text)

    def note(self, text: str) -> None:
        self._print(f"warning: {text}")


def split_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    return items or None


__all__ = ["AllowOutsideRootOpt", "DeviceOpt", "IdColumnAlias", "RichReporter", "RunOpt", "RunOutOpt", "app", "handle_errors",
           "id_col_option", "optional_path", "split_list"]
