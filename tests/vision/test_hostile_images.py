"""Hostile image inputs (issue 9, items 4, 12 and the DICOM part of 16), built here from small generators.

* decompression bombs: a DICOM that claims 14000 x 14000 pixels with a few bytes of pixel data, a deflated
  DICOM whose pixel data inflates far beyond its file size, a PNG whose IHDR claims 14000 x 14000; all
  refused from the header, before any pixel is decoded, under one pixel budget (RADTOOL_MAX_IMAGE_PIXELS);
* a DICOM whose RescaleSlope overflows: one-line error, no numpy RuntimeWarning;
* image tables that point outside ``--image-root`` (``../`` and absolute paths): refused unless
  ``--allow-outside-root``, and error texts that do not tell a missing file from an unreadable one.
"""

from __future__ import annotations

import csv
import shutil
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from radtool.errors import UserError
from radtool_vision.cli import app
from radtool_vision.data import load_image_table
from radtool_vision.images import ImageReadError, read_image
from synthetic import RUN_CLASSES, write_dicom

runner = CliRunner()
BUDGET_ENV = "RADTOOL_MAX_IMAGE_PIXELS"


# -- generators ---------------------------------------------------------------------------


def dicom_claiming(path: Path, rows: int, cols: int, pixel_bytes: bytes | None = None, deflated: bool = False) -> Path:
    """An 8-bit DICOM whose header claims rows x cols; the pixel data is ``pixel_bytes`` (default 16 bytes)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import (DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, SecondaryCaptureImageStorage,
                             generate_uid)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian if deflated else ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = b"\x00" * 16 if pixel_bytes is None else pixel_bytes
    ds.save_as(str(path), enforce_file_format=True)
    return path


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A PNG whose IHDR claims width x height, with one row of pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    idat = zlib.compress(b"\x00" * (width + 1))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def small_png(path: Path, size: int = 20, value: int = 90) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size), value, dtype=np.uint8)).save(path)
    return path


def write_table(path: Path, rel_paths: list[str], classes=RUN_CLASSES) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Path", *classes])
        for i, rel in enumerate(rel_paths):
            w.writerow([rel, *("1" if (i + j) % 2 else "0" for j in range(len(classes)))])
    return path


def one_line_error(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    return lines[0]


# -- pixel budget ----------------------------------------------------------------------------


def test_dicom_claiming_14000_squared_is_refused_from_its_header(tmp_path):
    path = dicom_claiming(tmp_path / "bomb.dcm", 14000, 14000)
    with pytest.raises(ImageReadError, match=r"14000 x 14000 .*pixel budget"):
        read_image(path)


def test_deflated_dicom_is_refused_before_its_pixel_data_is_inflated(tmp_path, monkeypatch):
    # 3000 x 3000 zeros deflate to ~9 kB; a budget of 1 megapixel must refuse it from the header
    path = dicom_claiming(tmp_path / "deflated.dcm", 3000, 3000, bytes(3000 * 3000), deflated=True)
    assert path.stat().st_size < 100_000
    monkeypatch.setenv(BUDGET_ENV, "1000000")
    with pytest.raises(ImageReadError, match=r"3000 x 3000 .*pixel budget of 1,000,000"):
        read_image(path)
    monkeypatch.setenv(BUDGET_ENV, "10000000")  # raised budget: the same file decodes
    assert read_image(path).shape == (3000, 3000)


def test_png_with_a_huge_ihdr_is_refused_under_the_same_budget(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's DecompressionBombWarning would be a stray line
        for w, h in ((14000, 14000), (10000, 9000)):  # over PIL's own error limit, and between warn and error
            with pytest.raises(ImageReadError, match=rf"{w} x {h} .*pixel budget"):
                read_image(png_claiming(tmp_path / f"{w}.png", w, h))


def test_budget_applies_to_png_jpeg_and_dicom_and_can_be_raised(tmp_path, monkeypatch):
    png = small_png(tmp_path / "a.png")
    jpeg = tmp_path / "a.jpg"
    Image.open(png).save(jpeg)
    dcm = write_dicom(tmp_path / "a.dcm", np.arange(400, dtype=np.uint16).reshape(20, 20))
    monkeypatch.setenv(BUDGET_ENV, "399")
    for path in (png, jpeg, dcm):
        with pytest.raises(ImageReadError, match=r"20 x 20 .*pixel budget of 399"):
            read_image(path)
    monkeypatch.setenv(BUDGET_ENV, "400")
    for path in (png, jpeg, dcm):
        assert read_image(path).shape == (20, 20)


def test_bad_budget_value_is_a_one_line_user_error(tmp_path, monkeypatch):
    png = small_png(tmp_path / "a.png")
    monkeypatch.setenv(BUDGET_ENV, "lots")
    with pytest.raises(UserError, match=BUDGET_ENV):
        read_image(png)


def test_predict_writes_an_error_row_for_the_bomb(trained_run, synthetic_set, tmp_path):
    root = tmp_path / "imgs"
    shutil.copytree(synthetic_set.root / "train" / "patient00001", root / "p1")
    good = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))[0]
    dicom_claiming(root / "bomb.dcm", 14000, 14000)
    table = write_table(tmp_path / "list.csv", [good, "bomb.dcm"])
    out = tmp_path / "preds.csv"
    result = runner.invoke(app, ["predict", "--run", str(trained_run), "--data", str(table), "--image-root", str(root),
                                 "--out", str(out), "--device", "cpu", "--workers", "0", "--quiet"])
    assert result.exit_code == 0, (result.output, result.exception)
    rows = {r["Path"]: r for r in csv.DictReader(open(out))}
    assert rows[good]["error"] == "" and rows[good]["Pneumonia"] != ""
    assert "pixel budget" in rows["bomb.dcm"]["error"] and rows["bomb.dcm"]["Pneumonia"] == ""
    assert "\n" not in rows["bomb.dcm"]["error"]


def test_train_refuses_the_bomb_in_one_line_naming_the_file(synthetic_set, tmp_path):
    root = tmp_path / "imgs"
    for p in (1, 2, 3, 4):
        shutil.copytree(synthetic_set.root / "train" / f"patient{p:05d}", root / f"patient{p:05d}")
    rels = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    dicom_claiming(root / "patient00004" / "bomb.dcm", 14000, 14000)
    table = write_table(tmp_path / "train.csv", [*rels, "patient00004/bomb.dcm"])
    result = runner.invoke(app, ["train", "--plugin", "resnet", "--arch", "test_resnet", "--data", str(table),
                                 "--image-root", str(root), "--out", str(tmp_path / "run"),
                                 "--classes", ",".join(RUN_CLASSES), "--val-fraction", "0.5", "--image-size", "32",
                                 "--epochs", "1", "--batch-size", "4", "--no-pretrained", "--device", "cpu",
                                 "--workers", "1", "--quiet"])
    line = one_line_error(result)
    assert "bomb.dcm" in line and "pixel budget" in line and BUDGET_ENV in line


# -- rescale overflow --------------------------------------------------------------------------


def test_dicom_rescale_overflow_is_one_error_without_a_numpy_warning(tmp_path):
    path = write_dicom(tmp_path / "slope.dcm", np.arange(1, 401, dtype=np.uint16).reshape(20, 20) * 100, slope=1e308)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would fail here instead of the ImageReadError
        with pytest.raises(ImageReadError, match="RescaleSlope") as info:
            read_image(path)
    assert "\n" not in str(info.value)


def test_dicom_with_a_large_but_finite_slope_still_decodes(tmp_path):
    pixels = np.arange(400, dtype=np.uint16).reshape(20, 20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big = read_image(write_dicom(tmp_path / "big.dcm", pixels, slope=1e300))  # overflows float32, not float64
    np.testing.assert_array_equal(big, read_image(write_dicom(tmp_path / "one.dcm", pixels)))


# -- paths outside --image-root ------------------------------------------------------------------


@pytest.fixture()
def outside_layout(tmp_path):
    """root/ with one image, and outside/secret.png beside it (a valid image that must not be read)."""
    root = tmp_path / "root"
    small_png(root / "in.png")
    secret = small_png(tmp_path / "outside" / "secret.png", value=200)
    return root, secret


def test_table_with_paths_outside_the_root_is_refused(outside_layout, tmp_path):
    root, secret = outside_layout
    for bad in ("../outside/secret.png", str(secret), "sub/../../outside/secret.png"):
        table = write_table(tmp_path / "t.csv", ["in.png", bad])
        with pytest.raises(UserError, match=r"line 3: .*outside the image root.*--allow-outside-root"):
            load_image_table(table, root)
        allowed = load_image_table(table, root, allow_outside_root=True)
        assert allowed.paths[1].resolve() == secret.resolve()
    inside = write_table(tmp_path / "t.csv", ["in.png", "sub/../in.png", str(root / "in.png")])
    assert len(load_image_table(inside, root)) == 3  # ../ that stays inside, and absolute paths inside, are fine


def test_train_refuses_outside_paths_in_one_line(outside_layout, tmp_path):
    root, _ = outside_layout
    table = write_table(tmp_path / "t.csv", ["in.png", "../outside/secret.png"])
    result = runner.invoke(app, ["train", "--plugin", "resnet", "--arch", "test_resnet", "--data", str(table),
                                 "--image-root", str(root), "--out", str(tmp_path / "run"), "--no-pretrained",
                                 "--device", "cpu", "--quiet"])
    line = one_line_error(result)
    assert "outside the image root" in line and "--allow-outside-root" in line


def test_predict_gives_outside_paths_error_rows_and_does_not_read_them(trained_run, outside_layout, tmp_path):
    root, secret = outside_layout
    (root / "folder.png").mkdir()  # exists but cannot be read as a file
    rels = ["in.png", "../outside/secret.png", str(secret), "missing.png", "folder.png"]
    table = write_table(tmp_path / "list.csv", rels)
    out = tmp_path / "preds.csv"
    base = ["predict", "--run", str(trained_run), "--data", str(table), "--image-root", str(root),
            "--device", "cpu", "--workers", "0", "--quiet"]
    result = runner.invoke(app, [*base, "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    rows = list(csv.DictReader(open(out)))
    assert [r["Path"] for r in rows] == rels  # every row accounted for, in order
    assert rows[0]["error"] == "" and rows[0]["Pneumonia"] != ""
    for row in rows[1:3]:
        assert "outside the image root" in row["error"] and row["Pneumonia"] == ""
    # a missing file and one that exists but cannot be read get the same text, naming the path as given
    assert rows[3]["error"] == "cannot read image missing.png"
    assert rows[4]["error"] == "cannot read image folder.png"
    assert not any(str(tmp_path) in r["error"] for r in rows)  # no resolved path leaks into the output
    allowed = tmp_path / "allowed.csv"
    result = runner.invoke(app, [*base, "--out", str(allowed), "--allow-outside-root"])
    assert result.exit_code == 0, (result.output, result.exception)
    rows = list(csv.DictReader(open(allowed)))
    assert rows[1]["error"] == rows[2]["error"] == "" and rows[1]["Pneumonia"] != ""


def test_unreadable_and_missing_files_give_the_same_message(tmp_path):
    (tmp_path / "dir.png").mkdir()
    messages = set()
    for name in ("missing.png", "dir.png", "missing.dcm"):
        with pytest.raises(ImageReadError) as info:
            read_image(tmp_path / name)
        messages.add(str(info.value).replace(name, "NAME"))
        assert str(tmp_path) not in str(info.value)
    assert messages == {"cannot read image NAME"}
