"""PNG figures (matplotlib, Agg backend): training curves, ROC curves, confusion matrices."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .io import save_figure, slug  # noqa: E402
from .metrics import auroc, roc_curve  # noqa: E402


def training_curves(history: list[dict], out_dir: Path) -> list[Path]:
    epochs = [r["epoch"] for r in history]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(epochs, [r["train_loss"] for r in history], marker="o", label="train")
    ax.plot(epochs, [r["val_loss"] for r in history], marker="o", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (BCE)")
    ax.legend()
    ax.grid(alpha=0.3)
    loss_path = Path(out_dir) / "loss.png"
    save_figure(loss_path, fig)

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key, label in (("val_macro_auroc", "macro AUROC"), ("val_macro_f1", "macro F1 @0.5")):
        values = [np.nan if r.get(key) is None else r[key] for r in history]
        ax.plot(epochs, values, marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylim(0, 1.02)
    ax.set_title("validation")
    ax.legend()
    ax.grid(alpha=0.3)
    metric_path = Path(out_dir) / "metrics.png"
    save_figure(metric_path, fig)
    return [loss_path, metric_path]


def roc_curves(probs: np.ndarray, targets: np.ndarray, classes: list[str], out_dir: Path) -> list[Path]:
    """One ROC figure per class plus ``roc.png`` with all classes; classes without positives are skipped."""
    paths = []
    fig_all, ax_all = plt.subplots(figsize=(5, 5))
    for j, name in enumerate(classes):
        curve = roc_curve(probs[:, j], targets[:, j])
        if curve is None:
            continue
        fpr, tpr = curve
        label = f"{name} (AUROC {auroc(probs[:, j], targets[:, j]):.3f})"
        ax_all.plot(fpr, tpr, label=label)
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.plot(fpr, tpr, label=label)
        _roc_axes(ax)
        path = Path(out_dir) / f"roc_{slug(name)}.png"
        save_figure(path, fig)
        paths.append(path)
    _roc_axes(ax_all)
    path = Path(out_dir) / "roc.png"
    save_figure(path, fig_all)
    return [path, *paths]


def _roc_axes(ax) -> None:
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)


def confusion_matrices(blocks: dict[str, dict], classes: list[str], out_dir: Path) -> list[Path]:
    """Per class: 2x2 matrices at each threshold block (``at_0.5``, ``at_val_best``) side by side."""
    paths = []
    for name in classes:
        fig, axes = plt.subplots(1, len(blocks), figsize=(3.8 * len(blocks), 3.4), squeeze=False,
                                 layout="constrained")
        for ax, (block_name, block) in zip(axes[0], blocks.items()):
            c = block["classes"][name]
            mat = np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]])
            ax.imshow(mat, cmap="Blues")
            for (r, k), v in np.ndenumerate(mat):
                ax.text(k, r, str(v), ha="center", va="center",
                        color="white" if v > mat.max() / 2 else "black")
            ax.set_xticks([0, 1], ["pred 0", "pred 1"])
            ax.set_yticks([0, 1], ["true 0", "true 1"])
            ax.set_title(f"{block_name} (t={c['threshold']:.2f})", fontsize=9)
        fig.suptitle(name)
        path = Path(out_dir) / f"confusion_{slug(name)}.png"
        save_figure(path, fig)
        paths.append(path)
    return paths
