"""``radtool classify predict``: one row of class probabilities per image."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._util import RichReporter, app, handle_user_errors


@app.command("predict")
@handle_user_errors
def predict_cli(
    run: Path = typer.Option(..., "--run", help="Run folder written by `classify train`."),
    data: Path = typer.Option(..., "--data", help="CSV with a Path column, or a folder of images (searched recursively)."),
    out: Path = typer.Option(..., "--out", help="Output CSV: Path, a probability per class, error."),
    image_root: Optional[Path] = typer.Option(None, "--image-root", help="Folder the Path column is relative to."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    batch_size: int = typer.Option(16, "--batch-size"),
    workers: int = typer.Option(2, "--workers", help="DataLoader workers decoding images."),
    quiet: bool = typer.Option(False, "--quiet"),
) -> None:
    """Predict class probabilities; unreadable images get a row with the error column filled."""
    from ..inference import predict

    result = predict(run, data, out, image_root, device, batch_size, workers, RichReporter(quiet=quiet))
    typer.echo(f"{result['n_images']} images ({result['n_errors']} unreadable) -> {out}")
