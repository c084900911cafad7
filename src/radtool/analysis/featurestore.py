"""A corpus's binary report × feature incidence rows on disk, for similarity at any corpus size.

:class:`FeatureStore` is what ``radtool similarity --top-k`` scores from. One pass over the records
writes, per family, the sorted column ids of every report (int32) to a file; only the row offsets,
the set sizes and the vocabulary's document frequencies stay in memory (about 30 bytes a report).
Rows are read back by position (:meth:`FeatureStore.gather`) with ``pread``, a bounded span at a time,
so the process holds the rows it is working on, not the corpus.
The report ids go to a file of their own and are read back the same way.

It offers what the pruned top-k (:func:`radtool.analysis.similarity.top_k_neighbors`) reads, as an
in-memory :class:`~radtool.analysis.similarity.SimilarityIndex` does: ``n``, ``names``, ``sizes``,
``nonempty``, ``widths``, ``doc_freq()``, ``gather(positions)`` and ``ids_of(positions)``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .features import FAMILIES, feature_sets

CHUNK = 8192  # reports per write (and per read where rows are streamed)
SPAN = 1 << 18  # int32 values (1 MB) read at most at once; the same bytes for wider values
_PREAD = hasattr(os, "pread")  # POSIX; elsewhere seek + read
_CAN_FORK = hasattr(os, "fork") and sys.platform.startswith("linux")  # see FeatureStore.build(isolated=True)


class _Column:
    """One growing file of fixed-width values, read back by position with ``pread``: the positions
    are sorted and read in spans of at most :data:`SPAN` values, so a read holds at most one span
    besides what it returns (a memory map would keep every page it touched, and touch 16 at a time)."""

    def __init__(self, path: Path, dtype, writable: bool = False) -> None:
        self.path, self.dtype, self.writable = path, np.dtype(dtype), writable
        self.fh = path.open("wb")
        self.count = 0
        self._fd: int | None = None

    def append(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=self.dtype)
        self.fh.write(values.tobytes())
        self.count += len(values)

    @classmethod
    def existing(cls, path: Path, dtype, count: int) -> _Column:
        """A column written before (by another process), opened for reading."""
        column = cls.__new__(cls)
        column.path, column.dtype, column.writable = path, np.dtype(dtype), False
        column.count, column._fd = count, None
        column.fh = path.open("rb")
        column.finish()
        return column

    def finish(self) -> None:
        """Done appending: from now on values are read back (and, if ``writable``, overwritten with :meth:`put`)."""
        self.fh.close()
        if _PREAD:
            self._fd = os.open(self.path, os.O_RDWR if self.writable else os.O_RDONLY)
        else:  # no pread (Windows): one binary handle, seek and read (or write) under a lock
            self._reader, self._lock = self.path.open("r+b" if self.writable else "rb"), threading.Lock()

    def reopen(self) -> None:
        """Appending again after :meth:`finish` (then :meth:`finish` again)."""
        self.close()
        self.fh = self.path.open("ab")

    def put(self, start: int, values: np.ndarray) -> None:
        """Overwrite the values from position ``start`` on (a column made ``writable``)."""
        raw = np.ascontiguousarray(values, dtype=self.dtype).tobytes()
        if _PREAD:
            written = os.pwrite(self._fd, raw, start * self.dtype.itemsize)
        else:
            with self._lock:
                self._reader.seek(start * self.dtype.itemsize)
                written = self._reader.write(raw)
        if written != len(raw):
            raise OSError(f"{self.path}: short write")

    def read(self, start: int, stop: int) -> np.ndarray:
        """A copy of the values at positions ``start`` … ``stop - 1`` (writable)."""
        return self._read(start, stop).copy() if stop > start else np.empty(0, dtype=self.dtype)

    def _read(self, start: int, stop: int) -> np.ndarray:
        size = self.dtype.itemsize
        if _PREAD:
            raw = os.pread(self._fd, (stop - start) * size, start * size)
        else:
            with self._lock:
                self._reader.seek(start * size)
                raw = self._reader.read((stop - start) * size)
        if len(raw) != (stop - start) * size:
            raise OSError(f"{self.path}: short read (the feature store was changed while in use)")
        return np.frombuffer(raw, dtype=self.dtype)

    def take(self, positions: np.ndarray) -> np.ndarray:
        """A copy of the values at ``positions``."""
        out = np.empty(len(positions), dtype=self.dtype)
        if not len(positions):
            return out
        order = np.argsort(positions, kind="stable")
        ordered = positions[order]
        span = max(1, SPAN * 4 // self.dtype.itemsize)  # SPAN int32 values' bytes, whatever the values
        i, count = 0, len(ordered)
        while i < count:
            start = int(ordered[i])
            j = int(np.searchsorted(ordered, start + span, side="left"))
            out[order[i:j]] = self._read(start, int(ordered[j - 1]) + 1)[ordered[i:j] - start]
            i = j
        return out

    def close(self) -> None:
        if not self.fh.closed:
            self.fh.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if getattr(self, "_reader", None) is not None:
            self._reader.close()
            self._reader = None


_TRIM = None
_TRIMMED_AT = 0.0


def release_free_memory(every: float = 0.0) -> None:
    """Give the heap's free pages back to the operating system (glibc ``malloc_trim``; nothing elsewhere).
    A long run of numpy temporaries on worker threads leaves freed memory in each thread's arena; without
    this the process's resident size creeps up to the sum of the arenas' high-water marks. ``every``:
    at most once in that many seconds (a trim walks the heap and holds its locks)."""
    global _TRIM, _TRIMMED_AT
    if _TRIM is None:
        _TRIM = False
        try:
            import ctypes

            libc = ctypes.CDLL(None)
            _TRIM = libc.malloc_trim if hasattr(libc, "malloc_trim") else False
        except (OSError, AttributeError):  # pragma: no cover - not glibc
            _TRIM = False
    if _TRIM:
        import time

        now = time.monotonic()
        if now - _TRIMMED_AT >= every:
            _TRIM(0)
            _TRIMMED_AT = time.monotonic()


class Forked:
    """``fn()`` run in a forked child process (Linux); :meth:`result` waits for it and gives back what it
    returned (pickled through a pipe) or raises what it raised. Fork only where no other thread runs."""

    def __init__(self, fn: Callable[[], object]) -> None:
        import pickle

        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            status = 1
            try:
                os.close(read_end)
                try:
                    payload, status = pickle.dumps((True, fn())), 0
                except BaseException as exc:  # handed to the parent, which raises it
                    try:
                        payload = pickle.dumps((False, exc))
                    except Exception:
                        payload = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
                with os.fdopen(write_end, "wb") as fh:
                    fh.write(payload)
            finally:
                os._exit(status)
        os.close(write_end)
        self.pid, self.fd = pid, read_end

    def result(self):
        import pickle

        try:
            with os.fdopen(self.fd, "rb") as fh:
                payload = fh.read()
            _pid, status = os.waitpid(self.pid, 0)
        except BaseException:
            self.kill()
            raise
        self.pid = None
        if not payload:
            raise RuntimeError(f"a forked process (feature store reader or neighbours writer) ended without a result (status {status})")
        ok, value = pickle.loads(payload)
        if not ok:
            raise value
        return value

    def kill(self) -> None:
        """Stop the child (if it has not been waited for)."""
        import signal

        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.pid = None


def can_fork() -> bool:
    """Whether this process may fork a child that runs Python (:class:`Forked`): on Linux, and only while no
    other thread runs (a fork copies only the calling thread, and a lock another thread held stays held)."""
    return _CAN_FORK and threading.active_count() == 1


MMAP_THRESHOLD = 4 << 20  # allocations from this size up get their own mapping, returned when freed
TRIM_THRESHOLD = 2 << 20  # a heap gives back its free top from this size up, at the free that makes it


def fix_heap_thresholds(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Fixed glibc ``mallopt`` thresholds for this process instead of the adaptive ones (True where set).
    Adaptively, each free of a large mapped array raises the mmap threshold (to 32 MB) and the trim
    threshold with it (to 64 MB), so a worker thread's heap keeps up to that much free memory at its top;
    ``malloc_trim`` gives back the main heap's top, not a thread heap's. Measured on 200,000 reports
    (``similarity --top-k 10``, 2 threads): 17 MB less resident after scoring, no slower. For a command's
    process (the CLI), not for a library call: the setting is the whole process's."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, int(mmap_threshold))) and bool(mallopt(m_trim_threshold, int(trim_threshold)))


def _compact(offsets: np.ndarray) -> np.ndarray:
    """Row offsets as int32 where they fit (half the memory a report), else int64; a copy."""
    return offsets.astype(np.int32) if not len(offsets) or offsets[-1] < 2**31 else offsets.astype(np.int64)


def _row_positions(indptr: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(offsets of the values of ``positions``' rows, concatenated; the new row pointer)."""
    starts = indptr[positions].astype(np.int64)
    lengths = indptr[positions + 1] - starts
    new = np.zeros(len(positions) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new[1:])
    flat = np.repeat(starts - new[:-1], lengths) + np.arange(new[-1], dtype=np.int64)
    return flat, new


class FeatureStore:
    """Per-family incidence rows of a corpus in files under ``directory`` (see the module docstring).
    Build it with :meth:`build`; :meth:`close` removes the files of a store that made its own folder."""

    def __init__(self, directory: Path, names: Sequence[str], owns: bool) -> None:
        self.directory, self.names, self._owns = Path(directory), list(names), owns
        self.n = 0
        self.indptr: list[np.ndarray] = []
        self.sizes: list[np.ndarray] = []  # |A| per report and family (float32)
        self.widths: list[int] = []
        self.vocab_sizes: dict[str, int] = {}
        self.merged: dict[str, int] = {name: 0 for name in self.names}
        self._df: list[np.ndarray] = []
        self._columns: list[_Column] = []
        self._ids: _Column | None = None
        self._id_offsets: np.ndarray = np.zeros(1, dtype=np.int64)
        self.nonempty = np.zeros((len(self.names), 0), dtype=bool)

    # ---- building

    @classmethod
    def build(cls, records: Iterable[dict], families: Sequence[str] = FAMILIES, fuzzy: float | None = None,
              directory: str | Path | None = None, chunk: int = CHUNK, isolated: bool = False,
              split: Callable[[int, int], Iterable[dict]] | None = None, readers: int = 2) -> FeatureStore:
        """Read ``records`` once (a list or a stream) and write their feature rows; with ``fuzzy`` the
        near-identical strings of a family are joined first (:func:`~radtool.analysis.similarity.fuzzy_merge`).
        ``directory``: where the files go (default: a new folder under the system's temporary folder,
        removed by :meth:`close`).

        ``isolated``: read the records in a forked child process (Linux), which writes the files and hands
        back the few arrays kept in memory. Reading a corpus makes and frees millions of small objects; a
        few that live on (caches, interned keys) keep whole allocator arenas of this process resident
        (~9 MB at 200,000 reports), which the child takes with it when it exits. Only for records that
        are read, not parsed (a parse folder's graphs.jsonl): a child forked after a parser has started
        its threads is not safe. Elsewhere (no fork, or other threads running) the records are read here.

        ``split``: ``split(i, count)`` gives part i of ``count`` of the same records, the parts in turn being
        ``records`` (:func:`~radtool.analysis.corpus.iter_records_part` of a graphs.jsonl). Isolated, the
        parts are then read by ``readers`` child processes at once, and the first joins the others' rows to
        its own: the files are those of one reader (~1.8x faster on two cores)."""
        owns = directory is None
        folder = Path(tempfile.mkdtemp(prefix="radtool-features-")) if owns else Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        store = cls(folder, families, owns)
        try:
            if isolated and can_fork():
                store._build_in_child(records, chunk, fuzzy, split if readers > 1 else None, readers)
            else:
                store._build(records, chunk, fuzzy)
        except BaseException:
            store.close()
            raise
        return store

    def _build(self, records: Iterable[dict], chunk: int, fuzzy: float | None,
               split: Callable[[int, int], Iterable[dict]] | None = None, readers: int = 1) -> None:
        if split is not None:
            self._write_parts(split, readers, chunk)
        else:
            self._write(records, chunk)
        if fuzzy:
            self._merge_fuzzy(fuzzy, chunk)
        self._vocab = self._vocab_index = None  # the strings are not needed for scoring
        release_free_memory()  # the records read were many small objects

    def _build_in_child(self, records: Iterable[dict], chunk: int, fuzzy: float | None,
                        split: Callable[[int, int], Iterable[dict]] | None = None, readers: int = 1) -> None:
        """:meth:`_build` in a forked child: it writes the files and the arrays kept in memory
        (``arrays.npz``), which are then loaded here."""

        def build() -> None:
            self._build(records, chunk, fuzzy, split, readers)
            self._save_arrays()

        Forked(build).result()
        self._load_arrays()

    def _write_parts(self, split: Callable[[int, int], Iterable[dict]], count: int, chunk: int) -> None:
        """:meth:`_write` of the parts of the records (``split``): parts 1 … count - 1 are written by forked
        children into folders of their own while this process writes part 0; then their rows are
        appended to its files in turn, their column ids renumbered in this vocabulary (as one reader
        would have numbered them: new strings after the known ones, in the order first seen)."""
        helpers = [Forked(lambda i=i: self._write_part(split, i, count, chunk)) for i in range(1, count)]
        try:
            self._write(split(0, count), chunk)
            for i, helper in enumerate(helpers, start=1):
                helper.result()
                self._append_part(self.directory / f"part{i}", chunk)
        except BaseException:
            for helper in helpers:
                helper.kill()
            raise

    def _write_part(self, split: Callable[[int, int], Iterable[dict]], i: int, count: int, chunk: int) -> None:
        """Part ``i`` of ``count`` written to its own folder, with its arrays and its vocabulary (a child's work)."""
        import pickle

        part = FeatureStore(self.directory / f"part{i}", self.names, owns=False)
        part.directory.mkdir(parents=True, exist_ok=True)
        part._write(split(i, count), chunk)
        part._save_arrays()
        with (part.directory / "vocab.pickle").open("wb") as fh:
            pickle.dump(part._vocab, fh, protocol=pickle.HIGHEST_PROTOCOL)

    def _append_part(self, folder: Path, chunk: int) -> None:
        """The rows of a part written by :meth:`_write_part` appended to this store's files (then its folder is removed)."""
        import pickle

        part = FeatureStore(folder, self.names, owns=True)
        try:
            part._load_arrays()
            with (folder / "vocab.pickle").open("rb") as fh:
                part_vocab = pickle.load(fh)
            for f in range(len(self.names)):
                vocab = self._vocab_index[f]
                remap = np.fromiter((vocab.setdefault(s, len(vocab)) for s in part_vocab[f]), dtype=np.int32, count=len(part_vocab[f]))
                self._vocab[f].extend(part_vocab[f][i] for i in np.flatnonzero(remap >= len(self._vocab[f])).tolist())
                column = self._columns[f]
                column.reopen()
                for s0 in range(0, part.n, chunk):
                    rows = part._rows(f, np.arange(s0, min(part.n, s0 + chunk)))
                    rows = sp.csr_matrix((rows.data, remap[rows.indices], rows.indptr), shape=(rows.shape[0], max(1, len(vocab))))
                    rows.sort_indices()  # renumbered: each row's ids ascending again
                    column.append(rows.indices)
                column.finish()
                df = np.zeros(len(vocab), dtype=np.int64)
                df[: len(self._df[f])] = self._df[f]
                np.add.at(df, remap, part._df[f])
                self._df[f] = df
                self.indptr[f] = _compact(np.concatenate([self.indptr[f].astype(np.int64), part.indptr[f][1:].astype(np.int64) + int(self.indptr[f][-1])]))
                self.widths[f] = len(vocab)
            self._ids.reopen()
            self._ids.append(part._ids.read(0, part._ids.count))
            self._ids.finish()
            self._id_offsets = _compact(np.concatenate([self._id_offsets.astype(np.int64), part._id_offsets[1:].astype(np.int64) + int(self._id_offsets[-1])]))
            self.n += part.n
            self.vocab_sizes = dict(zip(self.names, self.widths))
            self._finish_sizes()
        finally:
            part.close()

    _ARRAYS = "arrays.npz"

    def _save_arrays(self) -> None:
        import json

        arrays = {f"indptr{f}": p for f, p in enumerate(self.indptr)}
        arrays.update({f"df{f}": d for f, d in enumerate(self._df)})
        arrays["id_offsets"] = self._id_offsets
        np.savez(self.directory / self._ARRAYS, **arrays)
        meta = {"n": self.n, "widths": self.widths, "merged": self.merged,
                "columns": [[c.path.name, c.count] for c in self._columns], "ids": self._ids.count}
        (self.directory / "arrays.json").write_text(json.dumps(meta), encoding="utf-8")

    def _load_arrays(self) -> None:
        import json

        meta = json.loads((self.directory / "arrays.json").read_text(encoding="utf-8"))
        with np.load(self.directory / self._ARRAYS) as arrays:
            self.indptr = [arrays[f"indptr{f}"] for f in range(len(self.names))]
            self._df = [arrays[f"df{f}"] for f in range(len(self.names))]
            self._id_offsets = arrays["id_offsets"]
        self.n, self.widths, self.merged = meta["n"], meta["widths"], meta["merged"]
        self.vocab_sizes = dict(zip(self.names, self.widths))
        self._columns = [_Column.existing(self.directory / name, np.int32, count) for name, count in meta["columns"]]
        self._ids = _Column.existing(self.directory / "ids.utf8", np.uint8, meta["ids"])
        self._vocab = None
        self._finish_sizes()

    def _write(self, records: Iterable[dict], chunk: int) -> None:
        names = self.names
        vocab: list[dict[str, int]] = [{} for _ in names]
        columns = [_Column(self.directory / f"{f}.int32", np.int32) for f in names]
        ids = _Column(self.directory / "ids.utf8", np.uint8)
        id_offsets = array("q", [0])
        indptr = [array("q", [0]) for _ in names]
        df = [np.zeros(0, dtype=np.int64) for _ in names]
        pending: list[array] = [array("i") for _ in names]
        lengths: list[array] = [array("i") for _ in names]
        raw_ids = bytearray()

        def flush() -> None:
            nonlocal raw_ids
            for f in range(len(names)):
                if not lengths[f]:
                    continue
                lens = np.frombuffer(lengths[f], dtype=np.int32).astype(np.int64)
                cols = np.frombuffer(pending[f], dtype=np.int32) if len(pending[f]) else np.zeros(0, dtype=np.int32)
                ptr = np.zeros(len(lens) + 1, dtype=np.int64)
                np.cumsum(lens, out=ptr[1:])
                rows = sp.csr_matrix((np.ones(len(cols), dtype=np.float32), cols.copy(), ptr), shape=(len(lens), max(1, len(vocab[f]))))
                rows.sort_indices()  # each row's column ids ascending, as scipy keeps them
                columns[f].append(rows.indices)
                counts = np.bincount(rows.indices, minlength=len(vocab[f]))
                if len(counts) > len(df[f]):
                    df[f] = np.concatenate([df[f], np.zeros(len(counts) - len(df[f]), dtype=np.int64)])
                df[f][: len(counts)] += counts
                base = indptr[f][-1]
                indptr[f].extend((ptr[1:] + base).tolist())
                pending[f], lengths[f] = array("i"), array("i")
            ids.append(np.frombuffer(bytes(raw_ids), dtype=np.uint8))
            raw_ids = bytearray()

        n = 0
        for record in records:
            raw = str(record["id"]).encode("utf-8")
            raw_ids += raw
            id_offsets.append(id_offsets[-1] + len(raw))
            for f, name in enumerate(names):
                v = vocab[f]
                before = len(pending[f])
                pending[f].extend(v.setdefault(s, len(v)) for s in feature_sets(record, name))
                lengths[f].append(len(pending[f]) - before)
            n += 1
            if n % chunk == 0:
                flush()
        flush()
        for column in (*columns, ids):
            column.finish()
        self.n = n
        self._columns, self._ids = columns, ids
        self._id_offsets = _compact(np.frombuffer(id_offsets, dtype=np.int64))
        self.indptr = [_compact(np.frombuffer(p, dtype=np.int64)) for p in indptr]
        self.widths = [len(v) for v in vocab]
        self._df = [np.concatenate([d, np.zeros(max(0, w - len(d)), dtype=np.int64)]) for d, w in zip(df, self.widths)]
        self._vocab = [list(v) for v in vocab]  # kept only until a fuzzy merge has used it
        self._vocab_index = vocab  # and these until the parts of a split build are joined
        self.vocab_sizes = dict(zip(names, self.widths))
        self._finish_sizes()

    def _finish_sizes(self) -> None:
        self.sizes = [np.diff(p).astype(np.float32) for p in self.indptr]
        self.nonempty = np.array([s > 0 for s in self.sizes]).reshape(len(self.names), self.n)

    def _merge_fuzzy(self, threshold: float, chunk: int) -> None:
        """Rewrite each family's rows with near-identical strings joined (a report has a merged feature
        if it had any of its members), as :class:`SimilarityIndex` does in memory."""
        from .similarity import fuzzy_merge

        for f, name in enumerate(self.names):
            vocab = self._vocab[f]
            counts = Counter({v: int(d) for v, d in zip(vocab, self._df[f])})
            if name == "entities":
                mapping = fuzzy_merge(counts, threshold, group=lambda k: k.rpartition(" [")[2], text=lambda k: k.rpartition(" [")[0])
            else:
                mapping = fuzzy_merge(counts, threshold)
            self.merged[name] = sum(1 for k, v in mapping.items() if k != v)
            new_vocab = list(dict.fromkeys(mapping[v] for v in vocab))
            position = {v: i for i, v in enumerate(new_vocab)}
            remap = np.array([position[mapping[v]] for v in vocab], dtype=np.int32)
            old = self._columns[f]
            column = _Column(self.directory / f"{name}.merged.int32", np.int32)
            indptr = [np.zeros(1, dtype=np.int64)]
            for s0 in range(0, self.n, chunk):
                rows = self._rows(f, np.arange(s0, min(self.n, s0 + chunk)))
                rows = sp.csr_matrix((rows.data, remap[rows.indices], rows.indptr), shape=(rows.shape[0], len(new_vocab)))
                rows.sum_duplicates()
                column.append(rows.indices)
                indptr.append(rows.indptr[1:] + indptr[-1][-1])
            column.finish()
            old.close()
            old.path.unlink()
            self._columns[f] = column
            self.indptr[f] = _compact(np.concatenate(indptr))
            self.widths[f] = len(new_vocab)
            self.vocab_sizes[name] = len(new_vocab)
            self._df[f] = self._recount(f, chunk)
        self._finish_sizes()

    def _recount(self, f: int, chunk: int) -> np.ndarray:
        df = np.zeros(self.widths[f], dtype=np.int64)
        for s0 in range(0, self.n, chunk):
            df += np.bincount(self._rows(f, np.arange(s0, min(self.n, s0 + chunk))).indices, minlength=self.widths[f])
        return df

    # ---- reading

    def _rows(self, f: int, positions: np.ndarray) -> sp.csr_matrix:
        flat, ptr = _row_positions(self.indptr[f], positions)
        indices = self._columns[f].take(flat)
        return sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, ptr), shape=(len(positions), self.widths[f]))

    def gather(self, positions: np.ndarray | slice, families: Sequence[int] | None = None) -> list[sp.csr_matrix]:
        """The rows of ``positions`` (in that order), one CSR matrix per family (float32 ones, int32
        column ids, sorted in each row); ``families``: only these (by number)."""
        positions = np.arange(self.n)[positions] if isinstance(positions, slice) else np.asarray(positions, dtype=np.int64)
        chosen = range(len(self.names)) if families is None else families
        out = [self._rows(f, positions) for f in chosen]
        return out

    def ids_of(self, positions: np.ndarray | Sequence[int]) -> list[str]:
        positions = np.asarray(positions, dtype=np.int64)
        flat, ptr = _row_positions(self._id_offsets, positions)
        raw = self._ids.take(flat).tobytes()
        return [raw[a:b].decode("utf-8") for a, b in zip(ptr[:-1].tolist(), ptr[1:].tolist())]

    def doc_freq(self) -> list[np.ndarray]:
        """Reports that have each feature, per family."""
        return self._df

    def close(self) -> None:
        for column in self._columns:
            column.close()
        if self._ids is not None:
            self._ids.close()
        self._columns, self._ids = [], None
        if self._owns and self.directory.exists():
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
