"""PNG figures (matplotlib, Agg backend): training curves, ROC curves, confusion matrices.

Every figure names what it shows (class, run) in its title; numbers on coloured cells take the
colour that contrasts with the cell; curves keep their points visible from the first epoch.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .io import save_figure, slug  # noqa: E402
from .metrics import auroc, roc_curve  # noqa: E402


def _epoch_axis(ax, epochs: list[int]) -> None:
    """Integer epochs, with half an epoch of room either side (a single point is not on the frame)."""
    ax.set_xlim(min(epochs, default=1) - 0.5, max(epochs, default=1) + 0.5)
    lo, hi = min(epochs, default=1), max(epochs, default=1)
    if hi - lo < 20:
        ax.set_xticks(range(lo, hi + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)


def training_curves(history: list[dict], out_dir: Path, title: str = "") -> list[Path]:
    epochs = [int(r["epoch"]) for r in history]
    suffix = f" - run {title}" if title else ""
    fig, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
    losses = []
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        values = [np.nan if r.get(key) is None else float(r[key]) for r in history]
        losses.extend(v for v in values if np.isfinite(v))
        ax.plot(epochs, values, marker="o", label=label)
    _epoch_axis(ax, epochs)
    top = max(losses, default=1.0)
    ax.set_ylim(0, top * 1.15 if top > 0 else 1.0)  # loss from 0: the scale of a change is visible
    ax.set_ylabel("loss (masked BCE)")
    ax.set_title(f"training loss{suffix}", fontsize=10)
    ax.legend()
    loss_path = Path(out_dir) / "loss.png"
    save_figure(loss_path, fig)

    fig, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
    for key, label in (("val_macro_auroc", "macro AUROC"), ("val_macro_f1", "macro F1 @0.5")):
        values = [np.nan if r.get(key) is None else r[key] for r in history]
        ax.plot(epochs, values, marker="o", label=label)
    _epoch_axis(ax, epochs)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_title(f"validation metrics{suffix}", fontsize=10)
    ax.legend(loc="lower right")
    metric_path = Path(out_dir) / "metrics.png"
    save_figure(metric_path, fig)
    return [loss_path, metric_path]


def roc_curves(probs: np.ndarray, targets: np.ndarray, classes: list[str], out_dir: Path, title: str = "") -> list[Path]:
    """One ROC figure per class plus ``roc.png`` with all classes; classes without positives are skipped."""
    paths = []
    fig_all, ax_all = plt.subplots(figsize=(5.5, 5.5), layout="constrained")
    for j, name in enumerate(classes):
        curve = roc_curve(probs[:, j], targets[:, j])
        if curve is None:
            continue
        fpr, tpr = curve
        label = f"{name} (AUROC {auroc(probs[:, j], targets[:, j]):.3f})"
        ax_all.plot(fpr, tpr, label=label)
        fig, ax = plt.subplots(figsize=(4.8, 4.8), layout="constrained")
        ax.plot(fpr, tpr, label=label)
        _roc_axes(ax, f"ROC: {name}\n{title}" if title else f"ROC: {name}")
        path = Path(out_dir) / f"roc_{slug(name)}.png"
        save_figure(path, fig)
        paths.append(path)
    _roc_axes(ax_all, f"ROC, every class\n{title}" if title else "ROC, every class")
    path = Path(out_dir) / "roc.png"
    save_figure(path, fig_all)
    return [path, *paths]


def _roc_axes(ax, title: str) -> None:
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)


def _text_colour(rgba) -> str:
    """Black on light cells, white on dark ones (relative luminance of the cell colour)."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "white"


def confusion_matrices(blocks: dict[str, dict], classes: list[str], out_dir: Path, title: str = "") -> list[Path]:
    """Per class: 2x2 matrices at each threshold block (``at_0.5``, ``at_val_best``) side by side."""
    paths = []
    for name in classes:
        fig, axes = plt.subplots(1, len(blocks), figsize=(3.9 * len(blocks), 3.7), squeeze=False,
                                 layout="constrained")
        for ax, (block_name, block) in zip(axes[0], blocks.items()):
            c = block["classes"][name]
            mat = np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]])
            im = ax.imshow(mat, cmap="Blues", vmin=0, vmax=max(int(mat.max()), 1))
            for (r, k), v in np.ndenumerate(mat):
                ax.text(k, r, str(v), ha="center", va="center", fontsize=12,
                        color=_text_colour(im.cmap(im.norm(v))))
            ax.set_xticks([0, 1], ["predicted 0", "predicted 1"])
            ax.set_yticks([0, 1], ["true 0", "true 1"])
            ax.set_title(f"{block_name} (threshold {c['threshold']:.2f})", fontsize=9)
        fig.suptitle(f"{name}\n{title}" if title else name, fontsize=10)
        path = Path(out_dir) / f"confusion_{slug(name)}.png"
        save_figure(path, fig)
        paths.append(path)
    return paths
