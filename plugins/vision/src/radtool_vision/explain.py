"""Grad-CAM heat maps (pytorch-grad-cam) for a trained run: one PNG per image and class.

The target layers come from the plugin (last ConvNeXt stage, ResNet layer4, DenseNet norm5,
last VGG ReLU, last MobileNet/EfficientNet block; every branch for fusion, where
pytorch-grad-cam resizes each layer's map to the input and averages them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import UserError, missing_file
from .images import ImageReadError, load_resized
from .inference import load_run
from .io import save_figure, slug
from radtool.io.writers import atomic_dir, check_replaceable
from .runtime import NullReporter, Reporter
from .transforms import prepare_batch


def explain(
    run: Path, images: list[Path], out: Path, device: str = "auto", classes: list[str] | None = None,
    reporter: Reporter | None = None, text: Path | None = None, report_ids: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Write ``OUT/<image stem>__<class>.png`` for every image and class; returns what was written.

    Fusion runs (textfusion): Grad-CAM runs on the image branch with the image's report text held
    fixed (``text`` parse folder, ``report_ids`` one per image, default the file stems; none = empty
    text), and ``OUT/text_features.csv`` lists the report features that moved each probability most.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    reporter = reporter or NullReporter()
    if not images:
        raise UserError("explain needs at least one --image FILE")
    for path in images:
        if not Path(path).is_file():
            raise missing_file(path, "image")
    check_replaceable(out)  # before the model is loaded
    loaded = load_run(run, device)
    wanted = classes or loaded.classes
    unknown = [c for c in wanted if c not in loaded.classes]
    if unknown:
        raise UserError(f"class {unknown[0]!r} is not one of the run's classes: {', '.join(loaded.classes)}")
    model = loaded.model.float()
    model.to(memory_format=torch.contiguous_format)
    for p in model.parameters():
        p.requires_grad_(True)  # Grad-CAM needs gradients at the target layers
    from .textfusion import FixedText, explain_records, is_text_model, text_contributions, write_text_features

    fusion = is_text_model(model)
    spec, records = explain_records(loaded.meta, text, report_ids, images)
    cam_model = FixedText(model, None) if fusion else model
    layers = loaded.plugin.gradcam_target_layers(model.image_model if fusion else model)
    text_rows: list[dict[str, Any]] = []
    size = loaded.data_config.image_size
    out = Path(out)
    run_name = Path(run).name if Path(run).is_dir() else Path(run).parent.name
    written: list[dict[str, Any]] = []
    used_stems: dict[str, int] = {}
    reporter.stage("explaining", len(images) * len(wanted))
    with atomic_dir(out) as tmp, GradCAM(model=cam_model, target_layers=layers) as cam:
        for i, path in enumerate(images):
            path = Path(path)
            try:
                gray = load_resized(path, size)
            except ImageReadError as exc:
                raise UserError(f"cannot read image {path}: {exc}") from exc
            stem = path.stem
            if stem in used_stems:  # same file name in two folders
                used_stems[stem] += 1
                stem = f"{stem}-{used_stems[stem]}"
            else:
                used_stems[stem] = 0
            x = prepare_batch(torch.from_numpy(gray)[None, None], loaded.data_config, loaded.device)
            if fusion:
                cam_model.text = records[i][1]
            with torch.no_grad():
                probs = torch.sigmoid(cam_model(x).float())[0].cpu().numpy()
            if fusion and records[i][0] is not None:
                text_rows += [{"image": path.name, **r} for r in text_contributions(model, x, spec, records[i][0], wanted)]
            rgb = np.repeat(gray[..., None].astype(np.float32) / 255.0, 3, axis=2)
            for name in wanted:
                j = loaded.classes.index(name)
                heat = cam(input_tensor=x, targets=[ClassifierOutputTarget(j)])[0]
                overlay = show_cam_on_image(rgb, heat, use_rgb=True, image_weight=0.6)
                fig, ax = plt.subplots(figsize=(4.8, 4.6), layout="constrained")
                ax.imshow(overlay)
                ax.set_axis_off()
                ax.set_title(f"{path.name}\n{name}: p = {probs[j]:.2f}  (run {run_name})", fontsize=9)
                # show_cam_on_image colours with OpenCV's JET map over the heat map scaled to 0..1
                bar = fig.colorbar(ScalarMappable(norm=Normalize(0.0, 1.0), cmap="jet"), ax=ax, fraction=0.046,
                                   pad=0.03)
                bar.set_label("Grad-CAM weight (relative to this image's maximum)", fontsize=8)
                bar.ax.tick_params(labelsize=7)
                name_png = f"{stem}__{slug(name)}.png"
                save_figure(tmp / name_png, fig, dpi=100)
                written.append({"image": str(path), "class": name, "probability": float(probs[j]),
                                "png": str(out / name_png)})
                reporter.advance()
        if text_rows:
            write_text_features(tmp / "text_features.csv", text_rows)
    reporter.done()
    return written
