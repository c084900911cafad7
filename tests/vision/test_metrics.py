import math

import numpy as np
import pytest

from radtool_vision.metrics import auroc, best_f1_threshold, full_report, metrics_block, roc_curve


def test_auroc_perfect_and_inverted():
    t = np.array([0, 0, 1, 1], dtype=float)
    assert auroc(np.array([0.1, 0.2, 0.8, 0.9]), t) == 1.0
    assert auroc(np.array([0.9, 0.8, 0.2, 0.1]), t) == 0.0


def test_auroc_ties_count_half():
    assert auroc(np.array([0.5, 0.5]), np.array([0.0, 1.0])) == 0.5


def test_auroc_matches_trapezoid_of_roc_curve():
    rng = np.random.default_rng(0)
    s = np.round(rng.random(200), 2)
    t = (rng.random(200) < s).astype(float)
    fpr, tpr = roc_curve(s, t)
    assert auroc(s, t) == pytest.approx(float(np.trapezoid(tpr, fpr) if hasattr(np, "trapezoid") else np.trapz(tpr, fpr)))


def test_auroc_without_positives_is_none():
    assert auroc(np.array([0.1, 0.7]), np.array([0.0, 0.0])) is None
    assert roc_curve(np.array([0.1, 0.7]), np.array([0.0, 0.0])) is None


def test_masked_targets_are_left_out():
    s = np.array([0.1, 0.9, 0.95])
    t = np.array([0.0, 1.0, np.nan])
    assert auroc(s, t) == 1.0


def test_best_f1_threshold_separates_classes():
    s = np.array([0.1, 0.2, 0.3, 0.6, 0.7])
    t = np.array([0, 0, 0, 1, 1], dtype=float)
    thr = best_f1_threshold(s, t)
    assert 0.3 < thr <= 0.6


def test_metrics_layout_and_class_without_positives():
    probs = np.array([[0.9, 0.2], [0.1, 0.4], [0.8, 0.1]])
    targets = np.array([[1, 0], [0, 0], [1, 0]], dtype=float)
    block = metrics_block(probs, targets, ["A", "B"], [0.5, 0.5])
    a = block["classes"]["A"]
    assert {"auroc", "f1", "precision", "recall", "tp", "fp", "tn", "fn", "threshold"} <= set(a)
    assert (a["tp"], a["fp"], a["tn"], a["fn"]) == (2, 0, 1, 0)
    assert block["classes"]["B"]["auroc"] is None
    assert block["macro"]["auroc"] == 1.0
    report = full_report(probs, targets, ["A", "B"], [0.3, 0.5], "test")
    assert set(report) >= {"at_0.5", "at_val_best", "threshold_source"}
    assert report["at_val_best"]["classes"]["A"]["threshold"] == 0.3
    assert not math.isnan(report["at_0.5"]["macro"]["f1"])
