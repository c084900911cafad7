"""Atomic writers: nothing a reader can see is ever half written.

* :func:`atomic_path` / :func:`atomic_write`: one file, written to a temporary name beside the target
  and renamed into place when complete.
* :func:`atomic_dir`: a whole output folder. The command writes into a temporary folder beside
  ``out``; when everything is written a completion marker goes in last and the folder is swapped in
  for ``out``, so the outputs of one command appear together or not at all.

Every file and folder made here follows the user's umask (read once, at import), like any other
tool's output: files ``0o666 & ~umask``, folders ``0o777 & ~umask`` (``mkstemp``/``mkdtemp`` alone
would give 0600/0700).

**The swap** (:func:`atomic_dir`, on Linux with ``renameat2``, i.e. ext4, xfs, btrfs, tmpfs):

1. the new outputs are complete in ``.OUT.radtool-new-PID-XXXX`` (beside ``out``), with the marker
   ``.radtool-complete.json`` (every file and its size) written and fsynced last;
2. ``renameat2(new, out, RENAME_EXCHANGE)`` swaps the two names in one atomic step (or, when ``out``
   does not exist yet, ``rename(new, out)``); the parent folder is fsynced;
3. the old outputs, now under the temporary name, are deleted.

A kill -9 before step 2 leaves ``out`` as it was (plus a temporary folder that the next run removes);
after step 2, ``out`` is complete and new. There is no moment without a complete ``out``.

Where the file system cannot exchange (``EINVAL``/``ENOSYS``: some network file systems), step 2 is
two renames: ``out`` → ``.OUT.radtool-old-PID-XXXX``, then new → ``out``. The one unavoidable window
is between those two renames: a kill there leaves no ``out`` but both complete folders beside it;
:func:`check_output_dir` (used by readers) and the next :func:`atomic_dir` restore the old one.

Readers call :func:`check_output_dir` to tell a folder written whole from one left half written by
something else (an older radtool, a copy, a manual edit): the marker lists every file and its size.
"""

from __future__ import annotations

import csv
import ctypes
import errno
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

MARKER = ".radtool-complete.json"
_TEMP_RE = r"\.{name}\.radtool-(new|old)-(\d+)-"


def _read_umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # the only portable way to read it; set back at once
    os.umask(mask)
    return mask


UMASK = _read_umask()
FILE_MODE = 0o666 & ~UMASK
DIR_MODE = 0o777 & ~UMASK


# ---------------------------------------------------------------- what a command has written (for Ctrl-C)


class _Journal:
    """What the current command has replaced on disk, so an interruption can be reported truthfully."""

    def __init__(self) -> None:
        self.replaced: list[Path] = []  # files and folders swapped into place, complete
        self.kept: list[Path] = []  # output folders left as they were by an abandoned atomic_dir
        self._inside: list[Path] = []  # temporary folders of atomic_dir blocks in progress

    def reset(self) -> None:
        self.replaced.clear()
        self.kept.clear()
        self._inside.clear()

    def note_replaced(self, path: Path) -> None:
        if not any(_is_within(path, tmp) for tmp in self._inside):  # files inside a temp folder are not visible yet
            self.replaced.append(path)

    def interruption_note(self) -> str:
        """One line saying what an interruption left on disk."""
        kept = ", ".join(str(p) for p in dict.fromkeys(self.kept))
        if self.replaced:
            names = [str(p) for p in dict.fromkeys(self.replaced)]
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            note = f"{len(names)} output{'s were' if len(names) != 1 else ' was'} already replaced, each complete ({shown}); the rest were not written"
            return note + (f"; {kept} left as it was" if kept else "")
        if kept:
            return f"{kept} left as it was (outputs are swapped in only when all are written)"
        return "nothing was written"


journal = _Journal()


def _is_within(path: Path, folder: Path) -> bool:
    return os.path.abspath(path).startswith(os.path.abspath(folder) + os.sep)


# ---------------------------------------------------------------- single files


def prepare_dir(path: str | Path, what: str = "output folder") -> Path:
    """Create ``path`` as a folder (checked before any long work starts), or say in one line why not."""
    from ..errors import UserError, shown

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {shown(path)} exists and is a file; give a folder for --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {what} {shown(path)}: {exc.strerror}") from exc
    if not os.access(path, os.W_OK):
        raise UserError(f"{what} {shown(path)} is not writable")
    return path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it only if the block succeeds (for writers that
    want a file name: ``torch.save``, ``savefig``). The file gets the umask's mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, FILE_MODE)
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    journal.note_replaced(path)


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", newline: str | None = None) -> Iterator[IO]:
    """An open file beside ``path``, flushed to disk and renamed into place when the block succeeds."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else "utf-8", newline=newline) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def write_csv(path: str | Path, header: list[str] | None, rows: Iterable[Iterable[Any]]) -> None:
    """``header`` (None: no header row) and ``rows``, written atomically."""
    with atomic_write(path, newline="") as fh:
        writer = csv.writer(fh)
        if header is not None:
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


# ---------------------------------------------------------------- whole folders

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2_exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2). False where the system or file system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _files(folder: Path) -> dict[str, int]:
    out = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            p = Path(root) / name
            rel = p.relative_to(folder).as_posix()
            if rel != MARKER:
                out[rel] = p.stat().st_size
    return dict(sorted(out.items()))


def _write_marker(folder: Path) -> None:
    for root, _dirs, names in os.walk(folder):  # flush every file before the marker says they are complete
        for name in names:
            try:
                fd = os.open(Path(root) / name, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(root))
    marker = folder / MARKER
    with open(marker, "w", encoding="utf-8") as fh:
        json.dump({"written_by": "radtool", "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "files": _files(folder)}, fh, indent=1)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(marker, FILE_MODE)
    _fsync_dir(folder)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftovers(out: Path) -> list[tuple[str, Path]]:
    """``(kind, path)`` of temporary folders beside ``out`` left by runs that are no longer alive."""
    pattern = re.compile(_TEMP_RE.format(name=re.escape(out.name)))
    found = []
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return []
    for p in entries:
        m = pattern.match(p.name)
        if m and not _pid_alive(int(m.group(2))):
            found.append((m.group(1), p))
    return found


def recover(out: str | Path) -> str | None:
    """Undo what a kill in the fallback swap's window left (no ``out``, the old folder beside it),
    and remove dead runs' temporary folders. Returns a note when something was restored."""
    out = Path(out)
    note = None
    leftovers = _leftovers(out)
    if not out.exists():
        old = [p for kind, p in leftovers if kind == "old"]
        if old:
            os.rename(old[0], out)
            note = f"restored {out} from {old[0].name}, left by an interrupted run"
            leftovers = [(k, p) for k, p in leftovers if p != old[0]]
    for _kind, p in leftovers:
        shutil.rmtree(p, ignore_errors=True)
    return note


def check_output_dir(folder: str | Path) -> str | None:
    """None when ``folder`` was written whole by :func:`atomic_dir` (its marker lists exactly the files
    there, with their sizes); else one line saying what is wrong, for the reader to warn or refuse with."""
    folder = Path(folder)
    if not folder.exists():
        old = [p for kind, p in _leftovers(folder) if kind == "old"]
        if old:
            return f"{folder} is missing but an interrupted run left it as {old[0]}; rename that back to {folder.name}"
        return f"{folder} does not exist"
    marker = folder / MARKER
    if not marker.is_file():
        return f"{folder} has no completion marker ({MARKER}): it was not written whole by this radtool version"
    try:
        listed = json.loads(marker.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"{folder}/{MARKER} is unreadable: the folder may be half written"
    present = _files(folder)
    changed = sorted(name for name in set(listed) | set(present) if listed.get(name) != present.get(name))
    if changed:
        return f"{folder} differs from what was written ({', '.join(changed[:3])}{' ...' if len(changed) > 3 else ''}): it was changed or half copied since"
    return None


def check_replaceable(out: str | Path, outputs: Iterable[str] = (), what: str = "output folder") -> Path:
    """Say in one line, before any long work, why ``out`` cannot be replaced by :func:`atomic_dir`:
    it is a file, its parent cannot be written, or it is a folder holding files radtool did not write
    (not empty, no completion marker, and entries other than ``outputs``, a legacy radtool folder's names)."""
    from ..errors import UserError, shown

    out = Path(os.path.realpath(out)) if Path(out).is_symlink() else Path(os.path.abspath(out))  # "." has a name then
    if not out.name:
        raise UserError(f"{what} {shown(out)} is a file system root; give a folder below it")
    if out.exists() and not out.is_dir():
        raise UserError(f"{what} {shown(out)} exists and is a file; give a folder for --out")
    if out.is_dir() and not (out / MARKER).is_file():
        allowed = set(outputs)
        foreign = sorted(p.name for p in out.iterdir() if p.name not in allowed and not p.name.endswith(".tmp"))
        if foreign:
            listed = ", ".join(repr(n) for n in foreign[:3]) + (" ..." if len(foreign) > 3 else "")
            raise UserError(
                f"{what} {shown(out)} holds files radtool did not write ({listed}); it would be replaced as a whole: "
                "give a new or empty folder"
            )
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {what} {shown(out)}: {exc.strerror}") from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {what} {shown(out)}: {shown(parent)} is not writable")
    return out


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C until the block is done (the swap is a few system calls)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            os.kill(os.getpid(), signal.SIGINT)  # delivered now, to whatever handler was there


def _swap(new: Path, out: Path) -> None:
    if out.exists() and _renameat2_exchange(new, out):  # new now holds the old outputs
        _fsync_dir(out.parent)
        return
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        os.replace(new, out)  # rename(2) replaces an empty folder atomically
        _fsync_dir(out.parent)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.radtool-old-{os.getpid()}-", dir=out.parent))
    os.rmdir(old)
    os.rename(out, old)
    # the one window of the fallback: a kill here leaves no `out`, and `old` + `new` complete beside it
    os.rename(new, out)
    _fsync_dir(out.parent)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_dir(out: str | Path, outputs: Iterable[str] = ()) -> Iterator[Path]:
    """A temporary folder beside ``out`` to write a command's outputs into. When the block succeeds
    the folder is swapped in for ``out`` as a whole (see the module docstring for the exact steps);
    when it raises (Ctrl-C included) the folder is removed and ``out`` is untouched.

    ``out`` may not exist, be empty, be a folder written by atomic_dir (it has the marker), or hold
    only ``outputs`` (a legacy radtool folder); anything else is a one-line :class:`UserError`, so a
    mistaken ``--out ~`` never deletes anything. Call :func:`check_replaceable` early to fail before
    long work."""
    out = check_replaceable(out, outputs)
    note = recover(out)
    if note:
        import logging

        logging.getLogger("radtool").warning(note)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.radtool-new-{os.getpid()}-", dir=out.parent))
    os.chmod(tmp, DIR_MODE)
    journal._inside.append(tmp)
    try:
        yield tmp
        _write_marker(tmp)
    except BaseException:
        journal._inside.remove(tmp)
        journal.kept.append(out)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    journal._inside.remove(tmp)
    with _sigint_deferred():
        _swap(tmp, out)
        journal.replaced.append(out)
    if tmp.exists():  # the old outputs, after an exchange
        shutil.rmtree(tmp, ignore_errors=True)


__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "MARKER",
    "atomic_dir",
    "atomic_path",
    "atomic_write",
    "check_output_dir",
    "check_replaceable",
    "journal",
    "prepare_dir",
    "recover",
    "write_csv",
    "write_json",
    "write_jsonl",
]
