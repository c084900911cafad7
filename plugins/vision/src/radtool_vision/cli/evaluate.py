"""``radtool classify evaluate``: metrics, ROC curves and confusion matrices on a labelled set."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from radtool.cli.options import IdColOpt, OutOpt, QuietOpt
from rich.console import Console
from rich.table import Table

from ._util import AllowOutsideRootOpt, DeviceOpt, IdColumnAlias, RichReporter, RunOpt, app, handle_errors, id_col_option


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@app.command("evaluate")
@handle_errors
def evaluate_cli(
    run: RunOpt,
    out: OutOpt,
    data: Path = typer.Option(..., "--data", help="Labelled CSV (CheXpert layout, or radtool labels.csv with --image-index)."),
    image_root: Optional[Path] = typer.Option(None, "--image-root", help="Folder the Path column is relative to."),
    image_index: Optional[Path] = typer.Option(None, "--image-index", help="CSV mapping Path to report id."),
    id_col: IdColOpt = None,
    id_column: IdColumnAlias = None,
    views: Optional[str] = typer.Option(None, "--views", help="frontal | lateral | all (default: as in training)."),
    uncertain: Optional[str] = typer.Option(None, "--uncertain", help="ignore | zeros | ones (default: as in training)."),
    device: DeviceOpt = "auto",
    batch_size: int = typer.Option(16, "--batch-size"),
    workers: int = typer.Option(2, "--workers", help="DataLoader workers decoding images."),
    quiet: QuietOpt = False,
    text: Optional[Path] = typer.Option(None, "--text", help="Fusion runs: a `radtool parse` folder joined on the report id (default: images alone)."),
    allow_outside_root: AllowOutsideRootOpt = False,
) -> None:
    """Evaluate a trained run at threshold 0.5 and at the thresholds chosen on validation (metrics.json, predictions.csv, ROC and confusion PNGs)."""
    from ..inference import evaluate

    report = evaluate(run, data, out, image_root, image_index, id_col_option(id_col, id_column), views, uncertain,
                      device, batch_size, workers, RichReporter(quiet=quiet), text=text,
                      allow_outside_root=allow_outside_root)
    if quiet:
        return
    table = Table(title=f"{report['n_images']} images ({report['n_unreadable']} unreadable)")
    for col in ("class", "AUROC", "F1@0.5", "F1@val", "P@val", "R@val", "thr", "pos"):
        table.add_column(col, justify="right" if col != "class" else "left")
    a, b = report["at_0.5"], report["at_val_best"]
    for name, c in b["classes"].items():
        table.add_row(name, _fmt(c["auroc"]), _fmt(a["classes"][name]["f1"]), _fmt(c["f1"]),
                      _fmt(c["precision"]), _fmt(c["recall"]), f"{c['threshold']:.2f}", str(c["n_positive"]))
    table.add_row("macro", _fmt(b["macro"]["auroc"]), _fmt(a["macro"]["f1"]), _fmt(b["macro"]["f1"]),
                  _fmt(b["macro"]["precision"]), _fmt(b["macro"]["recall"]), "", "")
    Console(width=120).print(table)
    typer.echo(f"metrics written to {Path(out) / 'metrics.json'}")
