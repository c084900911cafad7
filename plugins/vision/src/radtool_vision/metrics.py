"""Multi-label classification metrics in plain numpy: AUROC, ROC curves, thresholds, F1.

Targets use NaN for "not known" (an uncertain label under ``--uncertain ignore``): those
entries are left out of that class's metrics. A class with no positives (or no negatives)
gets ``auroc: null`` instead of an error.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

THRESHOLD_SOURCE = (
    "at_0.5 uses 0.5 for every class; at_val_best uses per-class thresholds that maximise F1 "
    "on the validation set during training (stored in best.pt)"
)


def _known(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mask = ~np.isnan(targets)
    return scores[mask].astype(np.float64), targets[mask].astype(np.float64)


def auroc(scores: np.ndarray, targets: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    s, t = _known(np.asarray(scores), np.asarray(targets))
    n_pos = int((t == 1).sum())
    n_neg = int((t == 0).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average ranks over ties
    boundaries = np.flatnonzero(np.diff(sorted_s)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(s)]])
    for a, b in zip(starts, ends):
        ranks[order[a:b]] = 0.5 * (a + b - 1) + 1.0
    rank_sum = ranks[t == 1].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(fpr, tpr) points from (0,0) to (1,1), or None without both classes."""
    s, t = _known(np.asarray(scores), np.asarray(targets))
    n_pos, n_neg = (t == 1).sum(), (t == 0).sum()
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(-s, kind="mergesort")
    s, t = s[order], t[order]
    last_of_tie = np.concatenate([np.flatnonzero(np.diff(s)), [len(s) - 1]])
    tps = np.cumsum(t)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    tpr = np.concatenate([[0.0], tps / n_pos])
    fpr = np.concatenate([[0.0], fps / n_neg])
    return fpr, tpr


def confusion(scores: np.ndarray, targets: np.ndarray, threshold: float) -> dict[str, int]:
    s, t = _known(np.asarray(scores), np.asarray(targets))
    pred = s >= threshold
    return {
        "tp": int((pred & (t == 1)).sum()),
        "fp": int((pred & (t == 0)).sum()),
        "tn": int((~pred & (t == 0)).sum()),
        "fn": int((~pred & (t == 1)).sum()),
    }


def _prf(c: dict[str, int]) -> tuple[float, float, float]:
    tp, fp, fn = c["tp"], c["fp"], c["fn"]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def best_f1_threshold(scores: np.ndarray, targets: np.ndarray, default: float = 0.5) -> float:
    """The score threshold with the highest F1 (midway between neighbouring scores)."""
    s, t = _known(np.asarray(scores), np.asarray(targets))
    n_pos = int((t == 1).sum())
    if n_pos == 0 or n_pos == len(t):
        return default
    order = np.argsort(-s, kind="mergesort")
    s, t = s[order], t[order]
    last_of_tie = np.concatenate([np.flatnonzero(np.diff(s)), [len(s) - 1]])
    tp = np.cumsum(t)[last_of_tie]
    predicted = last_of_tie + 1
    f1 = 2 * tp / (predicted + n_pos)
    k = int(np.argmax(f1))
    i = last_of_tie[k]
    lower = s[i + 1] if i + 1 < len(s) else s[i] - 1e-6
    return float(np.clip((s[i] + lower) / 2.0, 0.0, 1.0))


def best_f1_thresholds(probs: np.ndarray, targets: np.ndarray) -> list[float]:
    return [best_f1_threshold(probs[:, j], targets[:, j]) for j in range(probs.shape[1])]


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else None


def metrics_block(probs: np.ndarray, targets: np.ndarray, classes: list[str], thresholds) -> dict[str, Any]:
    """``{"classes": {name: {...}}, "macro": {...}}`` at the given per-class thresholds."""
    per_class: dict[str, dict[str, Any]] = {}
    for j, name in enumerate(classes):
        thr = float(thresholds[j])
        counts = confusion(probs[:, j], targets[:, j], thr)
        precision, recall, f1 = _prf(counts)
        per_class[name] = {
            "auroc": auroc(probs[:, j], targets[:, j]),
            "f1": f1,
            "precision": precision,
            "recall": recall,
            **counts,
            "threshold": thr,
            "n_positive": counts["tp"] + counts["fn"],
        }
    # macro averages over classes where the metric is defined (a class without positives has no
    # AUROC and its F1/recall would be 0 by convention, so it is left out of the macro mean)
    scored = [c for c in per_class.values() if c["n_positive"] > 0]
    macro = {
        "auroc": _mean([c["auroc"] for c in per_class.values()]),
        "f1": _mean([c["f1"] for c in scored]),
        "precision": _mean([c["precision"] for c in scored]),
        "recall": _mean([c["recall"] for c in scored]),
    }
    return {"classes": per_class, "macro": macro}


def full_report(
    probs: np.ndarray, targets: np.ndarray, classes: list[str], val_thresholds, split: str
) -> dict[str, Any]:
    """metrics.json content: the same layout at 0.5 and at the validation-chosen thresholds."""
    return {
        "split": split,
        "n_images": int(len(probs)),
        "threshold_source": THRESHOLD_SOURCE,
        "at_0.5": metrics_block(probs, targets, classes, [0.5] * len(classes)),
        "at_val_best": metrics_block(probs, targets, classes, val_thresholds),
    }
