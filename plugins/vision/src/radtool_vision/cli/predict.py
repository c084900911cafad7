"""``radtool classify predict``: one row of class probabilities per image."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from radtool.cli.options import IdColOpt, OutFileOpt, QuietOpt

from ._util import AllowOutsideRootOpt, DeviceOpt, RichReporter, RunOpt, app, handle_errors


@app.command("predict")
@handle_errors
def predict_cli(
    run: RunOpt,
    out: OutFileOpt,
    data: Path = typer.Option(..., "--data", help="CSV with a Path column, or a folder of images (searched recursively)."),
    image_root: Optional[Path] = typer.Option(None, "--image-root", help="Folder the Path column is relative to."),
    device: DeviceOpt = "auto",
    batch_size: int = typer.Option(16, "--batch-size"),
    workers: int = typer.Option(2, "--workers", help="DataLoader workers decoding images."),
    quiet: QuietOpt = False,
    text: Optional[Path] = typer.Option(None, "--text", help="Fusion runs: a `radtool parse` folder joined on the report-id column of --data (default: images alone)."),
    id_col: IdColOpt = None,
    allow_outside_root: AllowOutsideRootOpt = False,
) -> None:
    """Predict class probabilities (CSV: Path, one column per class, error); unreadable images get the error column filled."""
    from ..inference import predict

    result = predict(run, data, out, image_root, device, batch_size, workers, RichReporter(quiet=quiet),
                     text=text, id_column=id_col, allow_outside_root=allow_outside_root)
    if not quiet:
        typer.echo(f"{result['n_images']} images ({result['n_errors']} unreadable) -> {out}")
