"""Fixtures for the vision plugin tests: synthetic radiographs, a small trained run, real images.

Everything runs on CPU with tiny timm architectures and ``pretrained=False``; the trained run is
built once per session and shared by the predict / evaluate / explain / CLI tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # make `import synthetic` work under any pytest import mode
    sys.path.insert(0, str(HERE))

from synthetic import RUN_CLASSES, make_dataset  # noqa: E402

pytest.importorskip("torch")
pytest.importorskip("timm")

REAL_IMAGES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cxr-images"


@pytest.fixture(scope="session")
def synthetic_set(tmp_path_factory):
    """120 patients (1-2 frontal images each, a few laterals), 64 px PNGs in the CheXpert layout."""
    root = tmp_path_factory.mktemp("synthetic")
    return make_dataset(root, 120, size=64, seed=0, lateral_fraction=0.05, uncertain_fraction=0.02)


@pytest.fixture(scope="session")
def trained_run(synthetic_set, tmp_path_factory):
    """A test_resnet trained for 2 epochs at 64 px on the synthetic set (classes in RUN_CLASSES)."""
    from radtool_vision.training import TrainConfig, train

    out = tmp_path_factory.mktemp("runs") / "resnet"
    cfg = TrainConfig(
        plugin="resnet", arch="test_resnet", data=synthetic_set.csv, image_root=synthetic_set.root, out=out,
        classes=list(RUN_CLASSES), val_fraction=0.2, image_size=64, epochs=2, batch_size=32, lr=3e-3,
        pretrained=False, device="cpu", workers=2,
    )
    train(cfg)
    return out


@pytest.fixture(scope="session")
def real_images() -> Path:
    if not (REAL_IMAGES / "labels.csv").is_file():
        pytest.skip(f"real radiographs not found at {REAL_IMAGES} (the repo expects ../shared beside it)")
    return REAL_IMAGES
