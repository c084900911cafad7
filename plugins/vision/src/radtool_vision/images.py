"""Reading radiographs (PNG, JPEG, DICOM) into 8-bit grayscale arrays of a fixed square size.

DICOM pixel data goes through RescaleSlope/RescaleIntercept and MONOCHROME1 images are inverted
so that bone is bright in every format; 16-bit PNGs are rescaled to their own range.

Untrusted files: every decoder checks the size the header claims against one pixel budget
(``RADTOOL_MAX_IMAGE_PIXELS``, default 64 megapixels, e.g. 8000 x 8000) before any pixel is decoded;
for a deflated DICOM only the header is inflated. A file that cannot be opened (missing, a folder,
no permission) gives one message, ``cannot read image NAME``, so errors do not tell which.
"""

from __future__ import annotations

import os
import stat
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".bmp", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom")
BUDGET_ENV = "RADTOOL_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 64_000_000  # 8000 x 8000; a chest film is 5-12 megapixels
_DICOM_HEADER_LIMIT = 64 * 2**20  # inflated bytes of a deflated DICOM allowed before its pixel data
_PIXEL_TAGS = {0x7FE00010, 0x7FE00009, 0x7FE00008}


class ImageReadError(Exception):
    """An image file that exists in the table but cannot be decoded."""


class ImageTooLarge(ImageReadError):
    """The header claims more pixels than the budget: refused before decoding."""


def pixel_budget() -> int:
    """The most pixel samples (rows x columns x frames x samples) one image may decode to."""
    raw = os.environ.get(BUDGET_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw.replace("_", "").replace(",", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise UserError(f"{BUDGET_ENV} must be a positive whole number of pixels, not {raw!r}")
    return value


def check_budget(width: int, height: int, frames: int = 1, samples: int = 1) -> None:
    total = int(width) * int(height) * max(int(frames), 1) * max(int(samples), 1)
    budget = pixel_budget()
    if total > budget:
        shape = f"{width} x {height}"
        if frames > 1:
            shape += f" x {frames} frames"
        if samples > 1:
            shape += f" x {samples} samples"
        raise ImageTooLarge(f"image is {shape} = {total:,} pixels, over the pixel budget of {budget:,} "
                            f"(raise it with {BUDGET_ENV})")


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
    if arr.dtype != np.float64:
        arr = arr.astype(np.float32, copy=False)
    lo, hi = float(np.min(arr)), float(np.max(arr))
    if not np.isfinite(lo) or not np.isfinite(hi) or not np.isfinite(hi - lo):
        raise ImageReadError("pixel data holds NaN or infinite values")
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    with np.errstate(all="ignore"):
        return np.round((arr - lo) * (255.0 / (hi - lo))).astype(np.uint8)


class _InflatingReader:
    """The deflated data set of a DICOM (after its file meta), inflated only as far as it is read."""

    def __init__(self, fh: BinaryIO, limit: int):
        self._fh = fh
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self._buf = bytearray()
        self._pos = 0
        self._limit = limit
        self._eof = False

    def _fill(self, end: int) -> None:
        while len(self._buf) < end and not self._eof:
            if len(self._buf) >= self._limit:
                raise ImageReadError(f"cannot decode DICOM: header over {self._limit // 2**20} MiB before the pixel data")
            step = min(1 << 20, self._limit - len(self._buf) + 1)
            if self._inflater.unconsumed_tail:
                data = self._inflater.unconsumed_tail
            else:
                data = self._fh.read(1 << 16)
                if not data:
                    self._eof = True
                    self._buf += self._inflater.flush()
                    break
            self._buf += self._inflater.decompress(data, step)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            self._fill(self._limit + 1)  # raises once over the limit
            size = len(self._buf) - self._pos
        self._fill(self._pos + size)
        out = bytes(self._buf[self._pos:self._pos + size])
        self._pos += len(out)
        return out

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 2:
            raise OSError("cannot seek from the end of a deflated data set")
        self._pos = max(0, offset + (self._pos if whence == 1 else 0))
        return self._pos


def _dicom_header(fh: BinaryIO):
    """The data set up to (not including) the pixel data, without reading or inflating the pixels."""
    import pydicom
    from pydicom.filereader import _read_file_meta_info, read_dataset, read_preamble
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    fh.seek(0)
    read_preamble(fh, False)
    meta = _read_file_meta_info(fh)
    if meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
        fh.seek(0)
        return pydicom.dcmread(fh, stop_before_pixels=True)
    reader = _InflatingReader(fh, _DICOM_HEADER_LIMIT)
    return read_dataset(reader, is_implicit_VR=False, is_little_endian=True,
                        stop_when=lambda tag, vr, length: tag in _PIXEL_TAGS)


def _header_int(ds, name: str, default: int) -> int:
    value = getattr(ds, name, None)
    if value is None or value == "":
        return default
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        raise ImageReadError(f"cannot decode DICOM: {name} is not a number ({str(value)[:40]!r})") from None


def read_dicom(fh: BinaryIO | str | Path) -> np.ndarray:
    import pydicom

    if isinstance(fh, (str, Path)):
        with open(fh, "rb") as opened:
            return read_dicom(opened)
    try:
        header = _dicom_header(fh)
    except (ImageReadError, UserError):
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds
        raise ImageReadError(f"cannot decode DICOM: {type(exc).__name__}: {exc}") from exc
    rows, cols = _header_int(header, "Rows", 0), _header_int(header, "Columns", 0)
    check_budget(cols, rows, _header_int(header, "NumberOfFrames", 1), _header_int(header, "SamplesPerPixel", 1))
    try:
        fh.seek(0)
        ds = pydicom.dcmread(fh)
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
    try:
        slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
        intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
    except (TypeError, ValueError, OverflowError):
        raise ImageReadError("cannot decode DICOM: RescaleSlope/RescaleIntercept are not numbers") from None
    # float64 so that large but sane slopes stay finite; what still overflows is refused, without a warning
    with np.errstate(all="ignore"):
        arr = arr.astype(np.float64) * slope + intercept
        if photometric == "MONOCHROME1":  # low values are bright: invert so bone is white
            arr = arr.max() - arr
    if not (np.isfinite(slope) and np.isfinite(intercept) and np.isfinite(arr.min()) and np.isfinite(arr.max())):
        raise ImageReadError(f"cannot decode DICOM: RescaleSlope {slope:g} and RescaleIntercept {intercept:g} "
                             "take the pixel values out of range")
    return _to_uint8(arr)


def read_raster(fh: BinaryIO | str | Path) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    # the budget below replaces PIL's own decompression-bomb limit (a warning over ~89 megapixels, an
    # error over ~179), so that one limit, set in one place, holds for every format
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(fh) as img:
            check_budget(*img.size)  # the header only: nothing is decoded before this
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                return _to_uint8(np.asarray(img))
            if img.mode != "L":
                img = img.convert("L")
            return np.asarray(img, dtype=np.uint8).copy()
    except (ImageReadError, UserError):
        raise
    except UnidentifiedImageError:
        raise ImageReadError("cannot decode image: not a PNG, JPEG or other known image format") from None
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds
        raise ImageReadError(f"cannot decode image: {type(exc).__name__}: {exc}") from exc


def read_image(path: str | Path, shown: str | None = None) -> np.ndarray:
    """Return a 2-D uint8 array, bright = dense, or raise ImageReadError.

    ``shown`` is how errors name the file (the path as the user gave it; default its file name): a
    file that is missing, a folder or unreadable gives the same ``cannot read image NAME``.
    """
    path = Path(path)
    shown = path.name if shown is None else shown
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # folders, FIFOs, devices
            raise OSError
        fh = open(path, "rb")
    except (OSError, ValueError):
        raise ImageReadError(f"cannot read image {shown}") from None
    with fh:
        dicom = path.suffix.lower() in DICOM_SUFFIXES
        if not dicom:
            fh.seek(128)
            dicom = fh.read(4) == b"DICM"
            fh.seek(0)
        arr = read_dicom(fh) if dicom else read_raster(fh)
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


def load_resized(path: str | Path, size: int, shown: str | None = None) -> np.ndarray:
    return resize_square(read_image(path, shown), size)


def find_images(folder: Path) -> list[Path]:
    """All image files under ``folder``, sorted, for ``predict --data DIR``."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
