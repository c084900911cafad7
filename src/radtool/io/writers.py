"""Atomic writers: output goes to a temporary file beside the target and is renamed into place,
so an interrupted run never leaves a half-written file."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def prepare_dir(path: str | Path, what: str = "output folder") -> Path:
    """Create ``path`` as a folder (checked before any long work starts), or say in one line why not."""
    from ..errors import UserError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} exists and is a file; give a folder for --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {what} {path}: {exc.strerror}") from exc
    if not os.access(path, os.W_OK):
        raise UserError(f"{what} {path} is not writable")
    return path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it only if the block succeeds (for writers that
    want a file name: ``torch.save``, ``savefig``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", newline: str | None = None) -> Iterator[IO]:
    """An open file beside ``path``, flushed to disk and renamed into place when the block succeeds."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else "utf-8", newline=newline) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def write_csv(path: str | Path, header: list[str], rows: Iterable[Iterable[Any]]) -> None:
    with atomic_write(path, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def write_jsonl(path: str | Path, records: Iterable[dict]) -> int:
    n = 0
    with atomic_write(path) as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False))
            fh.write("\n")
            n += 1
    return n


def write_json(path: str | Path, data: Any) -> None:
    with atomic_write(path) as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
