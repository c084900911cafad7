"""``radtool classify explain``: Grad-CAM heat maps, one PNG per image and class."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from radtool.cli.options import OutOpt, QuietOpt

from ._util import DeviceOpt, RichReporter, RunOpt, app, handle_errors, split_list


@app.command("explain")
@handle_errors
def explain_cli(
    run: RunOpt,
    out: OutOpt,
    more: Optional[List[Path]] = typer.Argument(None, help="More image files (so `--image a.png b.dcm` works).", show_default=False),
    image: Optional[List[Path]] = typer.Option(None, "--image", help="Image file (PNG, JPEG, DICOM); repeat, or list several after it."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Comma-separated subset of the run's classes."),
    device: DeviceOpt = "auto",
    quiet: QuietOpt = False,
    text: Optional[Path] = typer.Option(None, "--text", help="Fusion runs: a `radtool parse` folder; adds text_features.csv (the report features that moved each probability most)."),
    report_id: Optional[List[str]] = typer.Option(None, "--report-id", help="Report id of each --image in the --text folder (repeat; default: the image file stems)."),
) -> None:
    """Write Grad-CAM heat maps (<image>__<class>.png) over each image for each class."""
    from ..errors import UserError
    from ..explain import explain

    images = list(image or []) + list(more or [])
    if not images:
        raise UserError("no image given: use --image FILE (one or more)")
    written = explain(run, images, out, device, split_list(classes), RichReporter(quiet=quiet),
                      text=text, report_ids=report_id)
    if not quiet:
        typer.echo(f"{len(written)} heat maps written to {out}")
