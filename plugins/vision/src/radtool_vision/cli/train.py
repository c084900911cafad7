"""``radtool classify train``: fit a classifier plugin on a label table and images."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from radtool.cli.options import IdColOpt, QuietOpt

from ._util import AllowOutsideRootOpt, DeviceOpt, IdColumnAlias, RichReporter, RunOutOpt, app, handle_errors, id_col_option


@app.command("train")
@handle_errors
def train_cli(
    out: RunOutOpt,
    plugin: str = typer.Option(..., "--plugin", help="Classifier plugin: convnext, densenet, resnet, mobilenet, vgg, efficientnet, fusion."),
    data: Path = typer.Option(..., "--data", help="CheXpert-layout CSV (Path + observation columns), or a radtool labels.csv with --image-index."),
    image_root: Optional[Path] = typer.Option(None, "--image-root", help="Folder the Path column is relative to (default: the CSV's folder)."),
    image_index: Optional[Path] = typer.Option(None, "--image-index", help="CSV with Path and the report-id column, to join a radtool labels.csv."),
    id_col: IdColOpt = None,
    id_column: IdColumnAlias = None,
    arch: Optional[str] = typer.Option(None, "--arch", help="timm architecture of the plugin's family (tv:NAME for torchvision); fusion: a,b,c."),
    val_data: Optional[Path] = typer.Option(None, "--val-data", help="Separate validation CSV (same layout)."),
    val_image_root: Optional[Path] = typer.Option(None, "--val-image-root", help="Image root for --val-data (default: --image-root)."),
    val_image_index: Optional[Path] = typer.Option(None, "--val-image-index", help="Image index for --val-data when it is a radtool labels.csv."),
    allow_outside_root: AllowOutsideRootOpt = False,
    val_fraction: float = typer.Option(0.1, "--val-fraction", help="Without --val-data: fraction of patients held out for validation."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Comma-separated observations (default: Pleural Effusion,Pneumothorax,Pneumonia,No Finding)."),
    uncertain: str = typer.Option("ignore", "--uncertain", help="Uncertain (-1) labels: ignore (masked) | zeros | ones. Blank is always 0."),
    balance: str = typer.Option("none", "--balance", help="Class imbalance: none | pos-weight | sampler."),
    undersample: Optional[str] = typer.Option(None, "--undersample", help='Drop a fraction of rows positive for a class, e.g. "No Finding=0.91,Pleural Effusion=0.30".'),
    views: str = typer.Option("frontal", "--views", help="frontal | lateral | all (needs a Frontal/Lateral or ViewPosition column)."),
    image_size: int = typer.Option(320, "--image-size", help="Square input size in pixels."),
    epochs: int = typer.Option(10, "--epochs"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Global batch (split over DDP processes). Default: the family's GPU batch at 320 px (256; VGG and fusion 128) per GPU, scaled by pixel count; 32 on CPU."),
    lr: Optional[float] = typer.Option(None, "--lr", help="AdamW peak learning rate. Default: 1e-4 x sqrt(global batch / 32)."),
    weight_decay: float = typer.Option(0.05, "--weight-decay", help="AdamW weight decay (never on norms and biases)."),
    warmup_epochs: float = typer.Option(1.0, "--warmup-epochs", help="Linear warm-up length before cosine decay."),
    freeze_backbone: bool = typer.Option(False, "--freeze-backbone/--fine-tune", help="Train only the classifier head."),
    pretrained: bool = typer.Option(True, "--pretrained/--no-pretrained", help="Start from timm's pretrained weights (from the local hub cache, or downloaded)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Local checkpoint to start from (state dict, safetensors or a radtool best.pt)."),
    patience: int = typer.Option(3, "--patience", help="Stop after this many epochs without a lower validation loss."),
    seed: int = typer.Option(0, "--seed"),
    device: DeviceOpt = "auto",
    compile_model: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch.compile the training step. Default: on with CUDA, off on CPU.", show_default=False),
    workers: int = typer.Option(4, "--workers", help="Threads that decode images into the cache."),
    augment: bool = typer.Option(True, "--augment/--no-augment", help="Small rotations, shifts, flips and intensity changes."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from last.pt (same settings)."),
    quiet: QuietOpt = False,
    text: Optional[Path] = typer.Option(None, "--text", help="Fusion with the report text: a `radtool parse` output folder, joined on the report id (--id-col, or the first column of --data with --image-index).", rich_help_panel="Report text"),
    text_sections: Optional[str] = typer.Option(None, "--text-sections", help="Sections the text features come from. Default: the request (INDICATION,HISTORY,CLINICAL INFORMATION,COMPARISON).", rich_help_panel="Report text"),
    allow_label_sections: bool = typer.Option(False, "--allow-label-sections", help="Allow FINDINGS/IMPRESSION in --text-sections: the labels come from them (leaky; prints a warning).", rich_help_panel="Report text"),
    text_dim: Optional[int] = typer.Option(None, "--text-dim", help="Hashed text features (default 4096).", rich_help_panel="Report text"),
    text_hidden: int = typer.Option(256, "--text-hidden", help="Width of the text projection (MLP).", rich_help_panel="Report text"),
    text_fusion: str = typer.Option("concat", "--text-fusion", help="concat | gated (text also scales the image features).", rich_help_panel="Report text"),
    text_dropout: float = typer.Option(0.25, "--text-dropout", help="Fraction of training images whose text is emptied, so the model also works without a request.", rich_help_panel="Report text"),
) -> None:
    """Train an image classifier; runs under torchrun for DDP."""
    from ..data import parse_classes, parse_undersample
    from ..training import TrainConfig, train

    cfg = TrainConfig(
        plugin=plugin, data=data, out=out, image_root=image_root, image_index=image_index,
        id_column=id_col_option(id_col, id_column), arch=arch, val_data=val_data, val_image_root=val_image_root,
        val_image_index=val_image_index, allow_outside_root=allow_outside_root, val_fraction=val_fraction, classes=parse_classes(classes),
        uncertain=uncertain, balance=balance, undersample=parse_undersample(undersample), views=views,
        image_size=image_size, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        warmup_epochs=warmup_epochs, freeze_backbone=freeze_backbone, pretrained=pretrained, weights=weights,
        patience=patience, seed=seed, device=device, workers=workers, augment=augment, resume=resume,
        compile=compile_model, text=text, text_sections=text_sections, allow_label_sections=allow_label_sections,
        text_dim=text_dim, text_hidden=text_hidden, text_fusion=text_fusion, text_dropout=text_dropout,
    )
    _, warning = cfg.text_spec()  # fusion runs on FINDINGS/IMPRESSION: one line, never hidden by --quiet
    if warning and int(os.environ.get("RANK", "0")) == 0:
        typer.echo(warning, err=True)
    reporter = RichReporter(quiet=quiet)
    try:
        summary = train(cfg, reporter)
    finally:
        reporter.done()
    if int(os.environ.get("RANK", "0")) == 0 and not quiet:
        loss = summary.get("best_val_loss")
        typer.echo(f"best epoch {summary['best_epoch']} (val loss {'n/a' if loss is None else f'{loss:.4f}'}); "
                   f"run written to {out}")
