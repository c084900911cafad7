"""The 19 real radiographs in shared/data/cxr-images (JPEG, PNG, DICOM) go through predict and explain."""

import csv
import json

import numpy as np
from PIL import Image

from radtool_vision.explain import explain
from radtool_vision.inference import evaluate, predict
from synthetic import RUN_CLASSES


def test_predict_every_real_image(trained_run, real_images, tmp_path):
    out = tmp_path / "preds.csv"
    result = predict(trained_run, real_images / "labels.csv", out, image_root=real_images, device="cpu", workers=0)
    rows = list(csv.DictReader(open(out)))
    assert result["n_images"] == len(rows) == 19
    assert result["n_errors"] == 0
    assert {r["Path"].rsplit(".", 1)[-1] for r in rows} == {"jpeg", "png", "dcm"}
    for row in rows:
        probs = [float(row[c]) for c in RUN_CLASSES]
        assert all(0.0 <= p <= 1.0 for p in probs) and row["error"] == ""


def test_predict_folder_with_an_unreadable_file(trained_run, real_images, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("nih-00000001_000.png", "NORMAL2-IM-1427-0001.jpeg"):
        (folder / name).write_bytes((real_images / name).read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG truncated")
    out = tmp_path / "preds.csv"
    predict(trained_run, folder, out, device="cpu", workers=0)
    rows = {r["Path"]: r for r in csv.DictReader(open(out))}
    assert set(rows) == {"nih-00000001_000.png", "NORMAL2-IM-1427-0001.jpeg", "broken.png"}
    assert rows["broken.png"]["error"] and rows["broken.png"]["Pneumonia"] == ""
    assert rows["nih-00000001_000.png"]["error"] == ""


def test_explain_real_images_one_png_per_class(trained_run, real_images, tmp_path):
    images = [
        real_images / "NORMAL2-IM-1427-0001.jpeg",
        real_images / "nih-00000001_000.png",
        next(real_images.glob("*.dcm")),
    ]
    written = explain(trained_run, images, tmp_path / "cam", device="cpu")
    assert len(written) == len(images) * len(RUN_CLASSES)
    for item in written:
        png = Image.open(item["png"])
        assert png.size[0] > 100 and np.asarray(png).std() > 0


def test_evaluate_on_real_labels_reports_class_without_positives(trained_run, real_images, tmp_path):
    report = evaluate(trained_run, real_images / "labels.csv", tmp_path / "eval", image_root=real_images,
                      device="cpu", workers=0)
    assert report["n_images"] == 19
    assert report["at_0.5"]["classes"]["Pneumothorax"]["auroc"] is None  # no positive in the 19
    assert report["at_0.5"]["classes"]["Pneumonia"]["auroc"] is not None
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["at_val_best"]["classes"]["Pneumothorax"]["auroc"] is None
    assert (tmp_path / "eval" / "roc_pneumonia.png").is_file()
    assert (tmp_path / "eval" / "confusion_pneumothorax.png").is_file()
