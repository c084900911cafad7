"""Decode-once image cache: every image resized to S x S uint8 in a numpy memmap beside the run.

Decoding a 2-3k pixel JPEG or DICOM costs far more than a training step of a small model, so
the first epoch (or a separate step) decodes each image once; later epochs, resumed runs and
other ranks read rows straight from ``RUN/cache/images-<S>px-<key>.u8``. The key hashes the
image size and each file's path, size and modification time, so a changed file rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import UserError
from .images import ImageReadError, ImageTooLarge, load_resized
from .io import atomic_path, write_json

logger = logging.getLogger(__name__)


@dataclass
class ImageCache:
    path: Path
    size: int
    count: int
    ok: np.ndarray  # bool per image: False where the file could not be decoded
    errors: dict[int, str]

    def open(self) -> np.memmap:
        return np.memmap(self.path, dtype=np.uint8, mode="r", shape=(self.count, self.size, self.size))


def cache_key(paths: list[Path], size: int) -> str:
    h = hashlib.sha1(f"v1|{size}|{len(paths)}".encode())
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"|{p}|{st.st_size}|{st.st_mtime_ns}".encode())
        except OSError:
            h.update(f"|{p}|missing".encode())
    return h.hexdigest()[:16]


def load_or_build(
    paths: list[Path],
    size: int,
    cache_dir: Path,
    workers: int = 2,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[ImageCache, bool]:
    """Return the cache for ``paths`` at ``size`` px, building it if needed; second item: was built."""
    cache_dir = Path(cache_dir)
    key = cache_key(paths, size)
    data_path = cache_dir / f"images-{size}px-{key}.u8"
    meta_path = data_path.with_suffix(".json")
    if data_path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("complete") and meta.get("count") == len(paths):
            errors = {int(k): v for k, v in meta.get("errors", {}).items()}
            ok = np.ones(len(paths), dtype=bool)
            ok[list(errors)] = False
            if on_progress:
                on_progress(len(paths))
            return ImageCache(data_path, size, len(paths), ok, errors), False
    cache_dir.mkdir(parents=True, exist_ok=True)
    errors: dict[int, str] = {}
    with atomic_path(data_path) as tmp:
        mm = np.memmap(tmp, dtype=np.uint8, mode="w+", shape=(max(len(paths), 1), size, size))

        def work(i: int, out: np.memmap = mm) -> None:
            try:
                out[i] = load_resized(paths[i], size)
            except ImageTooLarge as exc:  # a setting to change, not a broken file to skip: stop in one line
                raise UserError(f"{paths[i]}: {exc}") from None
            except ImageReadError as exc:
                errors[i] = str(exc)
                out[i] = 0

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for _ in pool.map(work, range(len(paths))):
                if on_progress:
                    on_progress(1)
        mm.flush()
        del mm, work  # close the mapping before the file is renamed into place
    write_json(meta_path, {"complete": True, "count": len(paths), "size": size,
                           "errors": {str(k): v for k, v in sorted(errors.items())}})
    ok = np.ones(len(paths), dtype=bool)
    ok[list(errors)] = False
    for i, msg in sorted(errors.items())[:5]:
        logger.warning("skipping unreadable image %s: %s", paths[i], msg)
    return ImageCache(data_path, size, len(paths), ok, errors), True
