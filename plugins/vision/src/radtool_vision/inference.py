"""Using a trained run: ``evaluate`` (metrics + plots on a labelled set) and ``predict`` (probabilities).

Both read ``RUN/best.pt`` (tensors and plain values only, loaded with ``weights_only=True``),
rebuild the model through its plugin and decode images on the fly in DataLoader workers.
Images that cannot be read never stop a job: ``predict`` writes them with an ``error`` column,
``evaluate`` leaves them out and counts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from .data import (
    PATH_COLUMN,
    check_choice,
    UNCERTAIN_POLICIES,
    VIEW_CHOICES,
    OUTSIDE_ROOT,
    load_image_table,
    outside_root,
    read_csv,
    to_targets,
)
from .errors import UserError, missing_column, missing_file
from .images import ImageReadError, find_images, load_resized, pixel_budget
from .io import write_csv, write_json
from radtool.io.writers import atomic_dir, check_replaceable
from .metrics import full_report
from .checkpoint import load_checkpoint, load_model_state, open_run_state
from .data_config import DataConfig
from .families import ClassifierPlugin
from .plugins import load_plugin
from .runtime import NullReporter, Precision, Reporter, resolve_device, resolve_precision
from .transforms import prepare_batch


EVALUATE_OUTPUTS = ("metrics.json", "predictions.csv", "roc.png")


@dataclass
class LoadedRun:
    plugin: ClassifierPlugin
    model: nn.Module
    arch: str
    classes: list[str]
    data_config: DataConfig
    thresholds: list[float]
    meta: dict[str, Any]
    device: torch.device
    precision: Precision


def load_run(run: str | Path, device: str = "auto") -> LoadedRun:
    """Rebuild the best model of a run (``RUN/best.pt``, or a checkpoint file) on ``device``."""
    run = Path(run)
    if run.is_dir():
        open_run_state(run)  # RUN/best.pt links into RUN/state, replaced whole at each epoch
    path = run / "best.pt" if run.is_dir() else run
    if not path.is_file():
        raise UserError(f"no trained model in {run} (best.pt missing); train one with `radtool classify train`")
    meta = load_checkpoint(path)
    plugin = load_plugin(meta["plugin"])
    classes = list(meta["classes"])
    model = plugin.create_model(meta["arch"], len(classes), pretrained=False)
    if meta.get("text"):  # a fusion run (--text): rebuild the text branch around the image model
        from .textfusion import TextFusionSpec, build_model

        model = build_model(model, TextFusionSpec.from_dict(meta["text"]), len(classes))
    load_model_state(model, meta, path)
    dev = resolve_device(device)
    precision = resolve_precision(dev)
    precision.prepare_model(model, dev).eval()
    return LoadedRun(
        plugin=plugin,
        model=model,
        arch=meta["arch"],
        classes=classes,
        data_config=DataConfig.from_dict(meta["data_config"]),
        thresholds=[float(t) for t in meta["thresholds"]],
        meta={k: v for k, v in meta.items() if k not in ("model", "optimizer", "loop")},
        device=dev,
        precision=precision,
    )


class ImageFiles(torch.utils.data.Dataset):
    """Decodes and resizes images one by one; unreadable ones come back with an error string."""

    def __init__(self, paths: list[Path], size: int, names: list[str] | None = None,
                 refused: dict[int, str] | None = None):
        self.paths = paths
        self.size = size
        self.names = names  # how errors name each file: the path as given (default: its file name)
        self.refused = refused or {}  # index -> error, for paths never to be opened (outside the root)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            if i in self.refused:
                raise ImageReadError(self.refused[i])
            arr = load_resized(self.paths[i], self.size, None if self.names is None else self.names[i])
            return torch.from_numpy(arr).unsqueeze(0), i, ""
        except ImageReadError as exc:
            return torch.zeros(1, self.size, self.size, dtype=torch.uint8), i, str(exc) or "unreadable image"


@torch.no_grad()
def predict_probs(
    loaded: LoadedRun, paths: list[Path], batch_size: int = 16, workers: int = 2,
    reporter: Reporter | None = None, text: Any = None, names: list[str] | None = None,
    refused: dict[int, str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """(N, C) probabilities (NaN rows for unreadable images) and one error string per image.

    ``text`` (fusion runs): a ``TextRows`` with one report vector per path; None = images alone.
    """
    reporter = reporter or NullReporter()
    if batch_size < 1 or workers < 0:
        raise UserError("--batch-size must be at least 1 and --workers at least 0")
    dataset = ImageFiles(paths, loaded.data_config.image_size, names, refused)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
        pin_memory=loaded.device.type == "cuda",
    )
    probs = np.full((len(paths), len(loaded.classes)), np.nan, dtype=np.float32)
    errors = [""] * len(paths)
    precision = loaded.precision
    reporter.stage("predicting", len(paths))
    for images, idx, errs in loader:
        idx = idx.numpy()
        ok = np.array([not e for e in errs], dtype=bool)
        for i, e in zip(idx, errs):
            errors[i] = e
        if ok.any():
            x = prepare_batch(images[torch.from_numpy(ok)], loaded.data_config, loaded.device,
                              channels_last=precision.channels_last)
            with precision.autocast():
                if text is None:
                    logits = loaded.model(x)
                else:
                    logits = loaded.model(x, torch.from_numpy(text.dense(idx[ok])).to(loaded.device))
            probs[idx[ok]] = torch.sigmoid(logits.float()).cpu().numpy()
        reporter.advance(len(idx))
    reporter.done()
    return probs, errors


def predict(
    run: Path, data: Path, out: Path, image_root: Path | None = None, device: str = "auto",
    batch_size: int = 16, workers: int = 2, reporter: Reporter | None = None,
    text: Path | None = None, id_column: str | None = None, allow_outside_root: bool = False,
) -> dict[str, Any]:
    """Write ``out`` (CSV): Path, one probability column per class, error.

    Paths in a CSV that lead outside the image root get an error row and are not opened, unless
    ``allow_outside_root``; a folder given as ``--data`` is the user's own listing and is read as is.

    ``text`` (fusion runs): a ``radtool parse`` folder joined on the CSV's report-id column; without
    it a fusion run predicts from the images alone (an empty text vector).
    """
    data = Path(data)
    ids = None
    refused: dict[int, str] = {}
    pixel_budget()  # a bad RADTOOL_MAX_IMAGE_PIXELS fails here, before the workers start
    if data.is_dir():
        if text is not None:
            raise UserError("--text needs --data as a CSV with a Path and a report-id column, not a folder")
        root = Path(image_root) if image_root else data
        files = find_images(data)
        if not files:
            raise UserError(f"no image files (.png, .jpg, .jpeg, .dcm) under {data}")
        rel = [str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in files]
    elif data.is_file():
        header, rows = read_csv(data, "image list")
        if PATH_COLUMN not in header:
            raise missing_column(PATH_COLUMN, header, data)
        root = Path(image_root) if image_root else data.parent
        if not root.is_dir():
            raise missing_file(root, "image root folder")
        rel = [r[PATH_COLUMN] for r in rows if r[PATH_COLUMN]]
        ids = {name: [r.get(name, "") for r in rows if r[PATH_COLUMN]] for name in header}
        if not rel:
            raise UserError(f"{data} lists no images")
        if not allow_outside_root:
            refused = {i: OUTSIDE_ROOT for i, p in enumerate(rel) if outside_root(root, p)}
    else:
        raise missing_file(data, "--data CSV or folder")
    loaded = load_run(run, device)
    text_rows = None
    if text is not None:
        from .textfusion import run_text

        text_rows = run_text(loaded.meta, text, id_column, ids, data)
    probs, errors = predict_probs(loaded, [root / p for p in rel], batch_size, workers, reporter, text_rows,
                                  names=rel, refused=refused)
    header = [PATH_COLUMN, *loaded.classes, "error"]
    rows = (
        [path, *(None if np.isnan(v) else round(float(v), 6) for v in row), err]
        for path, row, err in zip(rel, probs, errors)
    )
    write_csv(out, header, rows)
    return {"n_images": len(rel), "n_errors": sum(1 for e in errors if e), "out": str(out),
            "classes": loaded.classes, "n_with_text": None if text_rows is None else int(text_rows.found.sum())}


def evaluate(
    run: Path, data: Path, out: Path, image_root: Path | None = None, image_index: Path | None = None,
    id_column: str | None = None, views: str | None = None, uncertain: str | None = None,
    device: str = "auto", batch_size: int = 16, workers: int = 2, reporter: Reporter | None = None,
    text: Path | None = None, allow_outside_root: bool = False,
) -> dict[str, Any]:
    """Metrics at 0.5 and at the validation-chosen thresholds, ROC and confusion PNGs, predictions.

    ``text`` (fusion runs): a ``radtool parse`` folder joined on the report id; without it a fusion
    run is evaluated on the images alone.
    """
    from .plots import confusion_matrices, roc_curves

    check_replaceable(out, EVALUATE_OUTPUTS)  # before the model is loaded and the images are read
    loaded = load_run(run, device)
    views = check_choice(views or loaded.meta.get("views", "frontal"), VIEW_CHOICES, "--views")
    uncertain = check_choice(uncertain or loaded.meta.get("uncertain", "ignore"), UNCERTAIN_POLICIES, "--uncertain")
    table = load_image_table(data, image_root, image_index, id_column, views, allow_outside_root)
    table.require(loaded.classes)
    targets = to_targets(table.labels(loaded.classes), uncertain)
    text_rows = None
    if text is not None:
        from .textfusion import run_text

        text_rows = run_text(loaded.meta, text, id_column, table.columns, table.source)
    probs, errors = predict_probs(loaded, table.paths, batch_size, workers, reporter, text_rows, names=table.rel_paths)
    ok = np.array([not e for e in errors], dtype=bool)
    if not ok.any():
        raise UserError(f"none of the {len(errors)} images in {data} could be read")
    report = full_report(probs[ok], targets[ok], loaded.classes, loaded.thresholds, "evaluation")
    report.update({
        "run": str(run),
        "data": str(data),
        "n_unreadable": int((~ok).sum()),
        "uncertain": uncertain,
        "views": views,
    })
    if loaded.meta.get("text"):
        report["text"] = {"parse_dir": None if text is None else str(text),
                          "sections": loaded.meta["text"]["encoder"]["sections"],
                          "label_sections_used": loaded.meta["text"]["encoder"].get("label_sections_used", []),
                          "n_with_text": 0 if text_rows is None else int(text_rows.found.sum()),
                          "n_nonempty": 0 if text_rows is None else text_rows.nonempty()}
    title = f"run {Path(run).name} ({loaded.meta['plugin']}/{loaded.arch}) on {Path(data).name}"
    with atomic_dir(out, EVALUATE_OUTPUTS) as tmp:  # all outputs appear together, or none
        write_json(tmp / "metrics.json", report)
        write_csv(
            tmp / "predictions.csv",
            [PATH_COLUMN, *loaded.classes, "error"],
            ([p, *(None if np.isnan(v) else round(float(v), 6) for v in row), e]
             for p, row, e in zip(table.rel_paths, probs, errors)),
        )
        roc_curves(probs[ok], targets[ok], loaded.classes, tmp, title)
        confusion_matrices({k: report[k] for k in ("at_0.5", "at_val_best")}, loaded.classes, tmp, title)
    return report
