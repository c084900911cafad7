"""DDP under torchrun (gloo on CPU) gives the same validation metrics as one process.

The global batch is split over ranks, augmentation is keyed by image index and the loss is
normalised by the global batch, so with a BatchNorm-free model (test_convnext) both runs see the
same updates; validation predictions are gathered and padding duplicates dropped, so every
validation image counts exactly once (25 images over 2 ranks forces one padded duplicate).
"""

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest

from synthetic import make_dataset


@pytest.fixture(scope="module")
def ddp_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    train_set = make_dataset(root, 48, size=48, seed=3, images_per_patient=(1, 1))
    val_set = make_dataset(root, 25, size=48, seed=4, split="valid", images_per_patient=(1, 1))
    return root, train_set.csv, val_set.csv


def _run(cmd, env):
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_ddp_two_processes_match_single_process(ddp_data, tmp_path):
    root, train_csv, val_csv = ddp_data
    args = [
        "train", "--plugin", "convnext", "--arch", "test_convnext", "--data", str(train_csv),
        "--image-root", str(root), "--val-data", str(val_csv), "--classes", "Pleural Effusion,Pneumothorax,Pneumonia",
        "--image-size", "48", "--epochs", "2", "--batch-size", "16", "--lr", "3e-3", "--no-pretrained",
        "--device", "cpu", "--workers", "1", "--uncertain", "zeros", "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    _run([sys.executable, "-m", "radtool_vision", *args, "--out", str(tmp_path / "single")], env)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_addr", "127.0.0.1", "--master_port", str(29500 + os.getpid() % 1000)]
    _run([*torchrun, "-m", "radtool_vision", *args, "--out", str(tmp_path / "ddp")], env)

    single = json.loads((tmp_path / "single" / "metrics.json").read_text())
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    config = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert config["world_size"] == 2
    assert single["n_images"] == ddp["n_images"] == 25
    for block in ("at_0.5", "at_val_best"):
        for name, s in single[block]["classes"].items():
            d = ddp[block]["classes"][name]
            assert (d["tp"], d["fp"], d["tn"], d["fn"]) == (s["tp"], s["fp"], s["tn"], s["fn"]), name
            assert d["auroc"] == pytest.approx(s["auroc"], abs=1e-6), name
    assert ddp["val_loss"] == pytest.approx(single["val_loss"], rel=1e-5)
    rows = {name: list(csv.DictReader(open(tmp_path / name / "history.csv"))) for name in ("single", "ddp")}
    for a, b in zip(rows["single"], rows["ddp"]):
        assert float(a["val_loss"]) == pytest.approx(float(b["val_loss"]), rel=1e-5)
    print(f"single val_loss {single['val_loss']:.6f} macro AUROC {single['at_0.5']['macro']['auroc']:.6f}; "
          f"ddp val_loss {ddp['val_loss']:.6f} macro AUROC {ddp['at_0.5']['macro']['auroc']:.6f}")
    shutil.rmtree(tmp_path / "single" / "cache", ignore_errors=True)
