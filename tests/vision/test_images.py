import numpy as np
import pytest
from PIL import Image

from radtool_vision.cache import load_or_build
from radtool_vision.images import ImageReadError, load_resized, read_image
from synthetic import write_dicom


def ramp(h=32, w=40):
    return np.tile(np.arange(w, dtype=np.uint16) * 100, (h, 1))


def test_dicom_rescale_and_monochrome2(tmp_path):
    path = write_dicom(tmp_path / "a.dcm", ramp(), slope=2.0, intercept=-100.0)
    img = read_image(path)
    assert img.dtype == np.uint8 and img.shape == (32, 40)
    assert img[0, 0] == 0 and img[0, -1] == 255  # rescaled to the full range, left dark


def test_dicom_monochrome1_is_inverted(tmp_path):
    mono2 = read_image(write_dicom(tmp_path / "m2.dcm", ramp()))
    mono1 = read_image(write_dicom(tmp_path / "m1.dcm", ramp(), photometric="MONOCHROME1"))
    np.testing.assert_array_equal(mono1, 255 - mono2)


def test_dicom_without_suffix_is_detected(tmp_path):
    path = write_dicom(tmp_path / "image", ramp())
    assert read_image(path).shape == (32, 40)


def test_png_16bit_rgb_and_jpeg(tmp_path):
    Image.fromarray(ramp().astype(np.uint16)).save(tmp_path / "a16.png")
    assert read_image(tmp_path / "a16.png").max() == 255
    Image.fromarray(np.zeros((10, 12, 3), dtype=np.uint8) + 80).save(tmp_path / "rgb.jpg")
    assert read_image(tmp_path / "rgb.jpg").shape == (10, 12)
    assert load_resized(tmp_path / "rgb.jpg", 16).shape == (16, 16)


def test_unreadable_image_raises_image_error(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ImageReadError):
        read_image(bad)
    with pytest.raises(ImageReadError):
        read_image(tmp_path / "missing.png")


def test_cache_is_built_once_and_marks_unreadable(tmp_path):
    paths = []
    for i in range(3):
        Image.fromarray(np.full((20, 20), 40 * i, dtype=np.uint8)).save(tmp_path / f"{i}.png")
        paths.append(tmp_path / f"{i}.png")
    (tmp_path / "bad.png").write_bytes(b"junk")
    paths.append(tmp_path / "bad.png")
    cache, built = load_or_build(paths, 8, tmp_path / "cache", workers=2)
    assert built and cache.ok.tolist() == [True, True, True, False]
    images = cache.open()
    assert images.shape == (4, 8, 8) and images[2].mean() == 80
    again, built_again = load_or_build(paths, 8, tmp_path / "cache")
    assert not built_again and again.path == cache.path
    assert not list((tmp_path / "cache").glob("*.tmp*"))  # written atomically
