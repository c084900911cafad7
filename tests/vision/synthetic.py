"""Synthetic chest radiographs with planted findings, for tests that must learn something on CPU.

Each image has a body outline, two dark lung fields with rib stripes and a bright heart. Findings
are planted where a radiologist would look for them, exaggerated so a tiny network learns them at
64 px within a few epochs:

* Pleural Effusion: the lower part of one lung filled in (bright, flat upper edge);
* Pneumothorax: a very dark, texture-free band along the outer edge of one lung;
* Pneumonia: one or two bright fluffy blobs inside a lung;
* Cardiomegaly: a heart about 75 % wider;
* No Finding: none of the above.

Files are written in the CheXpert layout (``train/patient00001/study1/view1_frontal.png``) with a
CSV of 1 / 0 / -1 / blank labels, so the same code paths as for real data are exercised.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FINDINGS = ("Pleural Effusion", "Pneumothorax", "Pneumonia", "Cardiomegaly")
CLASSES = (*FINDINGS, "No Finding")
# classes of the shared trained run: all of them also appear in shared/data/cxr-images/labels.csv
RUN_CLASSES = ("No Finding", "Pneumonia", "Pneumothorax", "Cardiomegaly")


def _ellipse(yy, xx, cy, cx, ry, rx):
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def radiograph(findings: dict[str, bool], size: int = 96, rng: np.random.Generator | None = None) -> np.ndarray:
    """One uint8 (size, size) image with the given findings planted."""
    rng = rng or np.random.default_rng()
    yy, xx = np.mgrid[0:size, 0:size] / float(size)
    j = lambda s=0.025: rng.uniform(-s, s)  # noqa: E731 - small positional jitter
    img = np.full((size, size), 0.04)
    img[_ellipse(yy, xx, 0.55 + j(), 0.5 + j(), 0.47, 0.44)] = 0.5
    lungs = []
    for side, cx in (("right", 0.31), ("left", 0.69)):
        lung = _ellipse(yy, xx, 0.48 + j(), cx + j(), 0.29, 0.135)
        img[lung] = 0.27
        lungs.append((lung, cx))
    ribs = 0.05 * np.sin(yy * size * 0.55 + rng.uniform(0, 6.3))
    in_lungs = lungs[0][0] | lungs[1][0]
    img[in_lungs] += ribs[in_lungs]
    width = 0.13 * (1.75 if findings.get("Cardiomegaly") else 1.0)
    img[_ellipse(yy, xx, 0.64 + j(), 0.54 + j(), 0.12, width)] = 0.72
    if findings.get("Pleural Effusion"):
        lung, _ = lungs[rng.integers(2)]
        level = np.quantile(yy[lung], rng.uniform(0.45, 0.6))
        img[lung & (yy >= level)] = 0.78
    if findings.get("Pneumothorax"):
        idx = rng.integers(2)
        lung, cx = lungs[idx]
        outward = (xx - cx) * (1 if idx == 1 else -1)
        band = lung & (outward > 0.045) & (yy < 0.62)
        img[band] = 0.0
    if findings.get("Pneumonia"):
        for _ in range(rng.integers(1, 3)):
            lung, cx = lungs[rng.integers(2)]
            cy0, cx0 = 0.35 + rng.uniform(0, 0.25), cx + j(0.05)
            blob = np.exp(-(((yy - cy0) ** 2 + (xx - cx0) ** 2) / (2 * 0.055**2)))
            img += 0.55 * blob * lung
    gain, offset = rng.uniform(0.85, 1.15), rng.uniform(-0.05, 0.05)
    img = img * gain + offset + rng.normal(0, 0.03, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


@dataclass
class SyntheticSet:
    root: Path
    csv: Path
    truth: np.ndarray  # (N, len(CLASSES)) 0/1 for every row of the CSV
    rel_paths: list[str]


def make_dataset(
    root: Path,
    n_patients: int,
    size: int = 96,
    seed: int = 0,
    prevalence: float = 0.3,
    split: str = "train",
    images_per_patient: tuple[int, int] = (1, 2),
    lateral_fraction: float = 0.0,
    uncertain_fraction: float = 0.0,
    blank_negatives: bool = True,
    csv_name: str | None = None,
) -> SyntheticSet:
    """Write PNGs in the CheXpert layout and a CSV of labels; returns paths and the true labels."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    root = Path(root)
    rows, truth, rels = [], [], []
    for p in range(1, n_patients + 1):
        n_img = int(rng.integers(images_per_patient[0], images_per_patient[1] + 1))
        for s in range(1, n_img + 1):
            findings = {name: bool(rng.random() < prevalence) for name in FINDINGS}
            lateral = rng.random() < lateral_fraction
            view = "lateral" if lateral else "frontal"
            rel = f"{split}/patient{p:05d}/study{s}/view1_{view}.png"
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(radiograph(findings, size, rng)).save(path)
            t = [int(findings[name]) for name in FINDINGS]
            t.append(int(not any(t)))
            labels = []
            for value in t:
                if uncertain_fraction and rng.random() < uncertain_fraction:
                    labels.append("-1.0")
                elif value == 1:
                    labels.append("1.0")
                else:
                    labels.append("" if blank_negatives and rng.random() < 0.5 else "0.0")
            rows.append([rel, "Lateral" if lateral else "Frontal", "" if lateral else "PA", *labels])
            truth.append(t)
            rels.append(rel)
    csv_path = root / (csv_name or f"{split}.csv")
    with open(csv_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Path", "Frontal/Lateral", "AP/PA", *CLASSES])
        writer.writerows(rows)
    return SyntheticSet(root, csv_path, np.array(truth, dtype=np.float32), rels)


def write_dicom(path: Path, pixels: np.ndarray, photometric: str = "MONOCHROME2",
                slope: float = 1.0, intercept: float = 0.0) -> Path:
    """A minimal uncompressed DICOM (16-bit unsigned) with the given rescale and photometric tags."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.PatientID = "synthetic"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleSlope = str(slope)
    ds.RescaleIntercept = str(intercept)
    ds.PixelData = np.ascontiguousarray(pixels.astype(np.uint16)).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(path), enforce_file_format=True)
    return path
