"""Reading radiographs (PNG, JPEG, DICOM) into 8-bit grayscale arrays of a fixed square size.

DICOM pixel data goes through RescaleSlope/RescaleIntercept and MONOCHROME1 images are inverted
so that bone is bright in every format; 16-bit PNGs are rescaled to their own range.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".bmp", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom")


class ImageReadError(Exception):
    """An image file that exists in the table but cannot be decoded."""


def is_dicom(path: Path) -> bool:
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    arr = arr.astype(np.float32, copy=False)
    lo, hi = float(np.min(arr)), float(np.max(arr))
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise ImageReadError("pixel data holds NaN or infinite values")
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    return np.round((arr - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def read_dicom(path: Path) -> np.ndarray:
    import pydicom

    try:
        ds = pydicom.dcmread(str(path))
        arr = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds
        raise ImageReadError(f"cannot decode DICOM: {type(exc).__name__}: {exc}") from exc
    arr = np.asarray(arr)
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
    if arr.ndim == 3:
        if int(getattr(ds, "SamplesPerPixel", 1)) > 1:  # colour DICOM: average the channels
            arr = arr.mean(axis=-1)
        else:  # multi-frame: the first frame
            arr = arr[0]
    if arr.ndim == 4:
        arr = arr[0].mean(axis=-1)
    arr = arr.astype(np.float32)
    slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
    intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
    arr = arr * slope + intercept
    if photometric == "MONOCHROME1":  # low values are bright: invert so bone is white
        arr = arr.max() - arr
    return _to_uint8(arr)


def read_raster(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                return _to_uint8(np.asarray(img))
            if img.mode != "L":
                img = img.convert("L")
            return np.asarray(img, dtype=np.uint8).copy()
    except ImageReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds
        raise ImageReadError(f"cannot decode image: {type(exc).__name__}: {exc}") from exc


def read_image(path: str | Path) -> np.ndarray:
    """Return a 2-D uint8 array, bright = dense, or raise ImageReadError."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"file not found: {path}")
    arr = read_dicom(path) if is_dicom(path) else read_raster(path)
    if arr.ndim != 2 or arr.size == 0:
        raise ImageReadError(f"unexpected image shape {arr.shape}")
    return arr


def resize_square(arr: np.ndarray, size: int) -> np.ndarray:
    """Resize to ``size`` x ``size`` (chest films are near-square; antialiased when shrinking)."""
    from PIL import Image

    if arr.shape == (size, size):
        return arr
    img = Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8))
    return np.array(img.resize((size, size), Image.BILINEAR), dtype=np.uint8)


def load_resized(path: str | Path, size: int) -> np.ndarray:
    return resize_square(read_image(path), size)


def find_images(folder: Path) -> list[Path]:
    """All image files under ``folder``, sorted, for ``predict --data DIR``."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
