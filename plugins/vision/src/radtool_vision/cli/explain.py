"""``radtool classify explain``: Grad-CAM heat maps, one PNG per image and class."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ._util import RichReporter, app, handle_user_errors, split_list


@app.command("explain")
@handle_user_errors
def explain_cli(
    more: Optional[List[Path]] = typer.Argument(None, help="More image files (so `--image a.png b.dcm` works).", show_default=False),
    run: Path = typer.Option(..., "--run", help="Run folder written by `classify train`."),
    image: Optional[List[Path]] = typer.Option(None, "--image", help="Image file (PNG, JPEG, DICOM); repeat, or list several after it."),
    out: Path = typer.Option(..., "--out", help="Folder for <image>__<class>.png heat maps."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Comma-separated subset of the run's classes."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    quiet: bool = typer.Option(False, "--quiet"),
) -> None:
    """Write Grad-CAM heat maps over each image for each class."""
    from ..errors import UserError
    from ..explain import explain

    images = list(image or []) + list(more or [])
    if not images:
        raise UserError("no image given: use --image FILE (one or more)")
    written = explain(run, images, out, device, split_list(classes), RichReporter(quiet=quiet))
    typer.echo(f"{len(written)} heat maps written to {out}")
