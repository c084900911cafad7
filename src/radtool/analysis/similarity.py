"""Report similarity over feature sets: sim(A, B) = |A ∩ B| / max(|A|, |B|), per family and combined.

Each family is a binary report × feature incidence matrix X; intersections are X[rows] @ X.T and the
denominators come from the row sums, so nothing loops over pairs of reports. Rows are processed in
blocks whose dense score arrays fit a memory budget. Features that most reports share ("be",
"lungs") make X @ X.T nearly dense; those columns are multiplied as a small dense BLAS product and the
long tail of rare features as a sparse product, which gives the same integers much faster.

The combined score is the mean over the families that at least one of the two reports has; a family
both reports lack says nothing about them and is left out (its per-family score is NaN). Two reports
with no features at all score 0.
"""

from __future__ import annotations

import math
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .featurestore import _row_positions, release_free_memory
from .features import FAMILIES, feature_sets

DENSE_SHARE = 0.05  # a feature in more than this share of reports goes to the dense product (measured break-even ~4-6 %)
MAX_DENSE_COLUMNS = 1024
PAIR_BLOCK = 65536  # neighbour pairs scored per family at a time
DENSE_MEMORY_MB = 512  # at most this much for the dense columns of all families (n × columns float32)
TILE = 512  # side of the square score tiles of the fast kernel (three float32 tiles stay in a 2 MB L2 cache... roughly)


def overlap_similarity(a: set, b: set) -> float:
    """Eq. (1): |A ∩ B| / max(|A|, |B|); NaN when both sets are empty."""
    m = max(len(a), len(b))
    return len(a & b) / m if m else float("nan")


# ---------------------------------------------------------------- fuzzy vocabulary merging


def fuzzy_merge(counts: Counter, threshold: float, group: Callable[[str], str] | None = None,
                text: Callable[[str], str] | None = None, chunk: int = 2000) -> dict[str, str]:
    """Map each vocabulary string to a representative: strings whose rapidfuzz ``ratio`` is at least
    ``threshold`` (0-100) are joined (single linkage), and a cluster is named by its most frequent member.
    ``group`` keeps strings of different groups apart (entity labels); ``text`` picks the part compared."""
    from rapidfuzz import fuzz, process

    group = group or (lambda s: "")
    text = text or (lambda s: s)
    by_group: dict[str, list[str]] = {}
    for s in counts:
        by_group.setdefault(group(s), []).append(s)
    mapping: dict[str, str] = {}
    for members in by_group.values():
        members.sort()
        texts = [text(s) for s in members]
        parent = list(range(len(members)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for start in range(0, len(texts), chunk):
            scores = process.cdist(texts[start : start + chunk], texts, scorer=fuzz.ratio, score_cutoff=threshold,
                                   dtype=np.uint8, workers=-1)
            rows, cols = np.nonzero(scores)
            for r, c in zip((rows + start).tolist(), cols.tolist()):
                if r < c:
                    ra, rc = find(r), find(c)
                    if ra != rc:
                        parent[max(ra, rc)] = min(ra, rc)
        clusters: dict[int, list[str]] = {}
        for i, s in enumerate(members):
            clusters.setdefault(find(i), []).append(s)
        for cluster in clusters.values():
            rep = max(cluster, key=lambda s: (counts[s], -len(s), s))
            for s in cluster:
                mapping[s] = rep
    return mapping


# ---------------------------------------------------------------- incidence matrices


@dataclass
class _Family:
    name: str
    vocab: list[str]
    matrix: sp.csr_matrix  # binary, reports × features
    sizes: np.ndarray  # |A| per report (float32)
    dense: np.ndarray = field(repr=False, default=None)  # frequent columns, reports × d (float32)
    sparse: sp.csr_matrix = field(repr=False, default=None)  # the other columns
    sparse_t: sp.csc_matrix = field(repr=False, default=None)
    merged: int = 0  # vocabulary strings merged away by --fuzzy
    size1: np.ndarray = field(repr=False, default=None)  # max(|A|, 1): the denominator, 0/1 = 0 where both are empty
    col_tiles: dict = field(repr=False, default_factory=dict)  # tile size → [sparse_t of each column tile (CSR)]

    def tiles_t(self, tile: int) -> list[sp.csr_matrix]:
        if tile not in self.col_tiles:
            n = self.sparse.shape[0]
            self.col_tiles[tile] = [self.sparse[s : s + tile].T.tocsr() for s in range(0, n, tile)]
        return self.col_tiles[tile]


class _IncidenceBuilder:
    """A binary CSR matrix built one row (feature set) at a time, in compact arrays."""

    def __init__(self) -> None:
        from array import array

        self.vocab: dict[str, int] = {}
        self.indices = array("q")
        self.indptr = array("q", [0])

    def add(self, features: Iterable[str]) -> None:
        vocab = self.vocab
        self.indices.extend(vocab.setdefault(f, len(vocab)) for f in features)
        self.indptr.append(len(self.indices))

    def build(self) -> tuple[sp.csr_matrix, list[str]]:
        n = len(self.indptr) - 1
        indices = np.frombuffer(self.indices, dtype=np.int64) if len(self.indices) else np.zeros(0, dtype=np.int64)
        matrix = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices.copy(), np.frombuffer(self.indptr, dtype=np.int64).copy()),
                               shape=(n, len(self.vocab)))
        matrix.sort_indices()
        vocab = list(self.vocab)
        self.vocab, self.indices = {}, None
        return matrix, vocab


def incidence(sets: Sequence[set[str]]) -> tuple[sp.csr_matrix, list[str]]:
    builder = _IncidenceBuilder()
    for s in sets:
        builder.add(s)
    return builder.build()


def _fuzzy_columns(name: str, matrix: sp.csr_matrix, vocab: list[str], threshold: float) -> tuple[sp.csr_matrix, list[str], int]:
    """Columns of near-identical strings joined (see :func:`fuzzy_merge`): a report has the merged
    feature if it had any of its members."""
    df = np.asarray((matrix > 0).sum(axis=0)).ravel()
    counts = Counter({v: int(d) for v, d in zip(vocab, df)})
    if name == "entities":
        mapping = fuzzy_merge(counts, threshold, group=lambda k: k.rpartition(" [")[2], text=lambda k: k.rpartition(" [")[0])
    else:
        mapping = fuzzy_merge(counts, threshold)
    merged = sum(1 for k, v in mapping.items() if k != v)
    new_vocab = list(dict.fromkeys(mapping[v] for v in vocab))
    position = {v: i for i, v in enumerate(new_vocab)}
    remap = np.array([position[mapping[v]] for v in vocab], dtype=np.int64)
    coo = matrix.tocoo()
    out = sp.csr_matrix((np.ones(coo.nnz, dtype=np.float32), (coo.row, remap[coo.col])), shape=(matrix.shape[0], len(new_vocab)))
    out.sum_duplicates()
    out.data[:] = 1
    out.sort_indices()
    return out, new_vocab, merged


def _split(fam: _Family, dense_columns: int = MAX_DENSE_COLUMNS) -> None:
    n = fam.matrix.shape[0]
    df = np.asarray(fam.matrix.sum(axis=0)).ravel()
    order = np.argsort(-df, kind="stable")
    frequent = order[df[order] > max(DENSE_SHARE * n, 8)][:dense_columns]
    rare = np.setdiff1d(np.arange(fam.matrix.shape[1]), frequent)
    csc = fam.matrix.tocsc()
    fam.dense = np.ascontiguousarray(csc[:, frequent].toarray(), dtype=np.float32)
    fam.sparse = csc[:, rare].tocsr()
    del csc
    fam.sparse_t = fam.sparse.T.tocsr()
    fam.size1 = np.maximum(fam.sizes, 1).astype(np.float32)
    fam.col_tiles = {}


class _Rows:
    """What the tile kernel needs about a set of query rows (a slice or positions), gathered once."""

    def __init__(self, index: SimilarityIndex, rows: slice | np.ndarray) -> None:
        self.parts = [(fam.dense[rows], fam.sparse[rows], fam.size1[rows][:, None]) for fam in index.families.values()]
        nonempty = index.nonempty[:, rows].T  # rows × families
        self.m = nonempty.shape[0]
        self.partial = np.flatnonzero(~nonempty.all(axis=1))  # rows lacking some family: fewer families in the mean
        self.partial_count = nonempty[self.partial].sum(axis=1).astype(np.float32)[:, None]
        self.partial_empty = (~nonempty[self.partial]).astype(np.float32)


class SimilarityIndex:
    """Binary incidence matrices of a corpus for chosen families; scores any rows against all reports."""

    def __init__(self, ids: Sequence[str], sets: dict[str, Sequence[set[str]]] | None = None, fuzzy: float | None = None,
                 matrices: dict[str, tuple[sp.csr_matrix, list[str]]] | None = None, memory_mb: float = DENSE_MEMORY_MB) -> None:
        self.ids = list(ids)
        self.n = len(self.ids)
        self.memory_mb = memory_mb
        self.families: dict[str, _Family] = {}
        if matrices is None:
            matrices = {name: incidence(family_sets) for name, family_sets in (sets or {}).items()}
        # frequent columns go to a dense product; their budget is shared by the families
        dense_columns = int(max(0, min(MAX_DENSE_COLUMNS, memory_mb * 2**20 // max(1, 4 * self.n * max(1, len(matrices))))))
        for name, (matrix, vocab) in matrices.items():
            merged = 0
            if fuzzy:
                matrix, vocab, merged = _fuzzy_columns(name, matrix, vocab, fuzzy)
            fam = _Family(name, vocab, matrix, np.asarray(matrix.sum(axis=1), dtype=np.float32).ravel(), merged=merged)
            _split(fam, dense_columns)
            self.families[name] = fam
        # families × reports: which reports have a family at all (the mean skips families both reports lack)
        self.nonempty = np.array([fam.sizes > 0 for fam in self.families.values()]).reshape(len(self.families), self.n)
        self._nonempty32 = self.nonempty.astype(np.float32)
        self._nfam = np.float32(len(self.families))

    @classmethod
    def from_records(cls, records: Iterable[dict], families: Sequence[str] = FAMILIES, fuzzy: float | None = None,
                     memory_mb: float = DENSE_MEMORY_MB) -> SimilarityIndex:
        """The index of report records: a list, or a stream (graphs.jsonl read line by line) that is read
        once and never held: only the ids and the compact incidence matrices are kept."""
        ids: list[str] = []
        builders = {f: _IncidenceBuilder() for f in families}
        for record in records:
            ids.append(record["id"])
            for f, builder in builders.items():
                builder.add(feature_sets(record, f))
        return cls(ids, fuzzy=fuzzy, matrices={f: b.build() for f, b in builders.items()}, memory_mb=memory_mb)

    def block_size(self, memory_mb: float = 256) -> int:
        per_row = self.n * 4 * (len(self.families) + 3)  # float32: each family + combined + counts + scratch
        return int(max(1, min(self.n, memory_mb * 2**20 // max(per_row, 1))))

    def tile_size(self, memory_mb: float = 256) -> int:
        """Side of the square tiles of the fast kernel (see :func:`_tile_size`)."""
        return _tile_size(self.n, memory_mb)

    def intersections(self, name: str, rows: np.ndarray) -> np.ndarray:
        fam = self.families[name]
        out = fam.dense[rows] @ fam.dense.T if fam.dense.shape[1] else np.zeros((len(rows), self.n), dtype=np.float32)
        if fam.sparse.nnz:
            rare = (fam.sparse[rows] @ fam.sparse_t).tocoo()
            _add_coo(out, rare)
        return out

    def scores(self, rows: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``(combined, {family: scores})`` of ``rows`` against every report, float32 arrays len(rows) × n;
        family scores are NaN where both reports lack the family. The plain reference computation: the
        fast paths (``combined_scores``, ``top_k_neighbors``) give the same float32 values."""
        rows = np.asarray(rows, dtype=np.int64)
        total = np.zeros((len(rows), self.n), dtype=np.float32)
        defined = np.zeros((len(rows), self.n), dtype=np.float32)
        per = {}
        for name, fam in self.families.items():
            inter = self.intersections(name, rows)
            denom = np.maximum(fam.sizes[rows][:, None], fam.sizes[None, :])
            with np.errstate(invalid="ignore", divide="ignore"):
                np.divide(inter, denom, out=inter)  # 0/0 → NaN marks "both empty"
            has = denom > 0
            total += np.where(has, inter, 0)
            defined += has
            per[name] = inter
        with np.errstate(invalid="ignore", divide="ignore"):
            combined = np.where(defined > 0, total / np.maximum(defined, 1), 0).astype(np.float32)
        return combined, per

    # ---- fast kernel: combined scores only, one cache-sized tile at a time, no temporaries

    def _tile(self, q: _Rows, t: int, tile: int, bufs: np.ndarray) -> np.ndarray:
        """Combined scores of the rows ``q`` against the reports of column tile ``t`` (float32, a view of
        ``bufs[0]``); ``bufs`` is 3 × (≥ rows·tile) float32 scratch."""
        c0, c1 = t * tile, min(self.n, (t + 1) * tile)
        return self._block(q, slice(c0, c1), c1 - c0, [fam.tiles_t(tile)[t] for fam in self.families.values()], bufs)

    def exact_block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Combined scores of ``rows`` against ``cols`` (positions), the same float32 bits as the tiles."""
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        bufs = np.empty((3, max(1, len(rows) * len(cols))), dtype=np.float32)
        sparse_t = [fam.sparse[cols].T.tocsr() for fam in self.families.values()]
        return self._block(_Rows(self, rows), cols, len(cols), sparse_t, bufs).copy()

    def _block(self, q: _Rows, cols: slice | np.ndarray, c: int, sparse_t: list[sp.csr_matrix], bufs: np.ndarray) -> np.ndarray:
        m = q.m
        out, tmp, den = (b[: m * c].reshape(m, c) for b in bufs)
        for f, ((d_rows, s_rows, size_rows), fam, cols_t) in enumerate(zip(q.parts, self.families.values(), sparse_t)):
            target = out if f == 0 else tmp
            if d_rows.shape[1]:
                np.matmul(d_rows, fam.dense[cols].T, out=target)  # |A ∩ B| over frequent features (BLAS)
            else:
                target.fill(0)
            add_product(target, s_rows.indptr, s_rows.indices, s_rows.data, cols_t)  # the long tail: a sparse product, added in place
            np.maximum(size_rows, fam.size1[None, cols], out=den)
            np.divide(target, den, out=target)  # 0/1 where both sets are empty: adds nothing
            if f:
                out += tmp
        if len(q.partial):  # rows lacking a family: divide by the families that one of the two has
            sub = out[q.partial]
            defined = q.partial_count + q.partial_empty @ self._nonempty32[:, cols]
            np.maximum(defined, 1, out=defined)
            np.divide(out, self._nfam, out=out)
            out[q.partial] = sub / defined
        else:
            np.divide(out, self._nfam, out=out)
        return out

    def combined_scores(self, rows: np.ndarray, memory_mb: float = 256) -> np.ndarray:
        """Combined scores of ``rows`` against every report (float32, len(rows) × n) by the fast kernel."""
        rows = np.asarray(rows, dtype=np.int64)
        tile = self.tile_size(memory_mb)
        q = _Rows(self, rows)
        bufs = np.empty((3, len(rows) * tile), dtype=np.float32)
        out = np.empty((len(rows), self.n), dtype=np.float32)
        for t in range(-(-self.n // tile)):
            out[:, t * tile : (t + 1) * tile] = self._tile(q, t, tile, bufs)
        return out

    def blocks(self, rows: np.ndarray | None = None, memory_mb: float = 256,
               per_family: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]]:
        """Row blocks ``(rows, combined, {family: scores})`` within ``memory_mb``; with ``per_family=False``
        the fast kernel computes the combined scores only (the dict is empty)."""
        rows = np.arange(self.n) if rows is None else np.asarray(rows, dtype=np.int64)
        if per_family:
            size = self.block_size(memory_mb)
        else:
            size = int(max(1, min(max(len(rows), 1), memory_mb * 2**20 // max(self.n * 4 * 2, 1))))
        for start in range(0, len(rows), size):
            block = rows[start : start + size]
            if per_family:
                combined, per = self.scores(block)
            else:
                combined, per = self.combined_scores(block, memory_mb), {}
            yield block, combined, per

    def pair_scores(self, left: np.ndarray, right: np.ndarray) -> dict[str, np.ndarray]:
        """Per-family scores of the pairs (left[i], right[i]) (float32; NaN where both lack the family)."""
        return pair_family_scores(self, left, right)

    def mean_pairwise(self) -> dict[str, float]:
        """Mean similarity over distinct pairs, per family and combined (see :func:`mean_pairwise`)."""
        return mean_pairwise(self)

    # ---- what the pruned top-k reads, as a FeatureStore offers it

    @property
    def names(self) -> list[str]:
        return list(self.families)

    @property
    def sizes(self) -> list[np.ndarray]:
        return [fam.sizes for fam in self.families.values()]

    @property
    def widths(self) -> list[int]:
        return [fam.matrix.shape[1] for fam in self.families.values()]

    @property
    def vocab_sizes(self) -> dict[str, int]:
        return {name: len(fam.vocab) for name, fam in self.families.items()}

    @property
    def merged(self) -> dict[str, int]:
        return {name: fam.merged for name, fam in self.families.items()}

    def doc_freq(self) -> list[np.ndarray]:
        return [np.bincount(fam.matrix.indices, minlength=fam.matrix.shape[1]) for fam in self.families.values()]

    def gather(self, positions: np.ndarray | slice, families: Sequence[int] | None = None) -> list[sp.csr_matrix]:
        fams = list(self.families.values())
        return [fams[f].matrix[positions] for f in (range(len(fams)) if families is None else families)]

    def ids_of(self, positions: Iterable[int]) -> list[str]:
        return [self.ids[i] for i in np.asarray(positions, dtype=np.int64).tolist()]

    @classmethod
    def from_store(cls, store, memory_mb: float = DENSE_MEMORY_MB) -> SimilarityIndex:
        """The in-memory index of a :class:`~radtool.analysis.featurestore.FeatureStore` (for the paths that
        score every pair: --matrix, small corpora)."""
        everything = np.arange(store.n)
        matrices = {name: (x, [None] * store.vocab_sizes[name]) for name, x in zip(store.names, store.gather(everything))}
        out = cls(store.ids_of(everything), matrices=matrices, memory_mb=memory_mb)
        for name, fam in out.families.items():
            fam.merged = store.merged[name]
        return out


def _tile_size(n: int, memory_mb: float = 256) -> int:
    """Side of the square tiles of the fast kernel: TILE (small enough that the few tile buffers stay in
    the CPU cache), less if ``memory_mb`` is tiny (tests use that to get many uneven tiles)."""
    return int(max(1, min(TILE, n, math.isqrt(int(memory_mb * 2**20 / (4 * 8))))))


def _add_coo(out: np.ndarray, coo: sp.coo_matrix) -> None:
    flat = out.reshape(-1)
    flat[coo.row.astype(np.int64) * out.shape[1] + coo.col] += coo.data  # (row, col) pairs are unique in a product


# ---------------------------------------------------------------- neighbours, matrix, duplicates


@dataclass
class Neighbors:
    ids: list[str]
    index: np.ndarray  # n × k neighbour positions (-1 where fewer than k other reports)
    combined: np.ndarray  # n × k
    per_family: dict[str, np.ndarray]  # family → n × k (NaN where both lack it)
    duplicates: list[tuple[int, int, float]]  # (i, j, combined), i < j
    duplicate_pairs: int  # all pairs above the threshold, even past max_duplicates
    mean_pairwise: dict[str, float]  # family or "combined" → mean over distinct pairs with the family defined
    seconds: float = 0.0
    _file: object = None  # where index and combined are a file's records (a pruned top-k spilled to disk)

    def rows(self, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
        """``index[r0:r1]`` and ``combined[r0:r1]``, copies; read from the file where the tables are on disk
        (without mapping its pages into memory)."""
        if self._file is not None:
            records = self._file.read(r0, r1)
            return records["idx"], records["val"]
        return self.index[r0:r1].copy(), self.combined[r0:r1].copy()

    def close(self) -> None:
        """Close the file behind the tables, if any (``index`` and ``combined`` are not to be read after)."""
        if self._file is not None:
            self._file.close()


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, scores.shape[1])
    if k <= 0:
        return np.zeros((scores.shape[0], 0), dtype=np.int64)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else np.tile(np.arange(scores.shape[1]), (scores.shape[0], 1))
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)  # best first; ties by position for stable output
    return np.take_along_axis(part, order, axis=1)


class _TopK:
    """Running top-k per report: best score first, ties by the smaller position (exact, whatever order the
    candidates come in). ``offer`` takes candidate (row, column, score) triples."""

    def __init__(self, n: int, k: int) -> None:
        self.k = k
        self.val = np.full((n, k), -np.inf, dtype=np.float32)
        self.idx = np.full((n, k), -1, dtype=np.int32)

    @classmethod
    def of(cls, idx: np.ndarray, val: np.ndarray) -> _TopK:
        """Tables that exist (rows × k, writable)."""
        top = cls(0, idx.shape[1])
        top.idx, top.val = idx, val
        return top

    def threshold(self, rows: slice | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.val[rows, self.k - 1], self.idx[rows, self.k - 1]

    def put(self, rows: np.ndarray, idx: np.ndarray, val: np.ndarray) -> None:
        """Replace the tables of ``rows`` with ``idx`` / ``val`` (len(rows) × k)."""
        self.idx[rows], self.val[rows] = idx, val

    def result(self, k: int, keep_zero: bool) -> tuple[np.ndarray, np.ndarray, None]:
        """The result's tables (:func:`_final_tables`, in place where k wide) and no file."""
        return (*_final_tables(self.idx, self.val, k, keep_zero), None)

    def offer(self, r: np.ndarray, c: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Merge the candidates in; → (the rows offered whose table is full, their k-th best score)."""
        if not len(r) or not self.k:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if len(r) > OFFER_ROWS:  # a few thousand reports at a time: the merge's scratch stays small
            order = np.argsort(r, kind="stable")
            r, c, v = r[order], c[order], v[order]
            cuts = np.flatnonzero(np.diff(r)) + 1
            starts = np.concatenate([[0], cuts[OFFER_ROWS - 1 :: OFFER_ROWS], [len(r)]])
            done = [self._offer(r[a:b], c[a:b], v[a:b]) for a, b in zip(starts[:-1], starts[1:])]
            return np.concatenate([x for x, _ in done]), np.concatenate([y for _, y in done])
        return self._offer(r, c, v)

    def _offer(self, r: np.ndarray, c: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows, at = np.unique(r, return_inverse=True)
        at = at.ravel()
        counts = np.bincount(at, minlength=len(rows))
        width = self.k + int(counts.max())
        if width <= 4 * self.k + 64:  # few candidates a report (the pruned top-k's batches): merged in a table
            return self._offer_table(rows, at, counts, width, c, v)
        old_v, old_i = self.val[rows], self.idx[rows]
        keep = old_i >= 0
        r = np.concatenate([np.repeat(rows, self.k)[keep.ravel()], r])
        c = np.concatenate([old_i[keep], c])
        v = np.concatenate([old_v[keep], v])
        order = np.lexsort((c, -v, r))
        r, c, v = r[order], c[order], v[order]
        first = np.searchsorted(r, r, side="left")
        rank = np.arange(len(r)) - first
        sel = rank < self.k
        self.val[rows] = -np.inf
        self.idx[rows] = -1
        self.val[r[sel], rank[sel]] = v[sel]
        self.idx[r[sel], rank[sel]] = c[sel]
        full = rows[self.idx[rows, self.k - 1] >= 0]
        return full, self.val[full, self.k - 1]

    def _offer_table(self, rows: np.ndarray, at: np.ndarray, counts: np.ndarray, width: int, c: np.ndarray,
                     v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_offer` for candidates of ``rows`` (``at``: each one's place in ``rows``) through a rows × width
        table: each report's table and then its candidates, sorted in each row by one int64 key, the score's
        bits made to order as the float (higher first) above the position (smaller first)."""
        k = self.k
        order = np.argsort(at, kind="stable")
        at_sorted = at[order]
        slot = np.arange(len(at_sorted)) - (np.cumsum(counts) - counts)[at_sorted] + k
        val = np.full((len(rows), width), -np.inf, dtype=np.float32)
        idx = np.full((len(rows), width), -1, dtype=np.int64)
        val[:, :k], idx[:, :k] = self.val[rows], self.idx[rows]
        val[at_sorted, slot], idx[at_sorted, slot] = v[order], c[order]
        bits = (val + np.float32(0)).view(np.int32).astype(np.int64)  # + 0: -0.0 is 0.0
        bits ^= (bits >> 31) & 0x7FFFFFFF  # negative floats: the other bits flipped, so the ints order as the floats
        key = (-bits << 32) | (idx & 0xFFFFFFFF)  # higher score first, then smaller position; empty slots (-inf, -1) last
        best = np.argsort(key, axis=1)[:, :k]
        self.val[rows] = np.take_along_axis(val, best, axis=1)
        self.idx[rows] = np.take_along_axis(idx, best, axis=1)
        full = rows[self.idx[rows, k - 1] >= 0]
        return full, self.val[full, k - 1]


class _SpilledTopK:
    """:class:`_TopK` tables kept in a file (``path``), for corpora whose n × k tables should not stay in
    memory: rows are stored in ``order`` (row ``order[i]`` at record i), cut in parts of ``size`` records,
    and an offer reads, merges and writes back the parts its rows fall in. In the second pass of the pruned
    top-k a task's rows are two blocks of that order, so an offer touches two parts."""

    def __init__(self, n: int, k: int, order: np.ndarray, rank: np.ndarray, size: int, path: Path) -> None:
        from .featurestore import _Column

        self.n, self.k, self.size = n, k, max(1, int(size))
        self.record = np.dtype([("idx", np.int32, (k,)), ("val", np.float32, (k,))])
        self._order, self.rank = order, rank  # rank[order] = 0 … n - 1
        self.path = Path(path)
        self.file = _Column(self.path, self.record, writable=True)
        for p0 in range(0, n, self.size):
            empty = np.empty(min(n, p0 + self.size) - p0, dtype=self.record)
            empty["idx"], empty["val"] = -1, -np.inf
            self.file.append(empty)
        self.file.finish()

    def _part(self, p: int) -> tuple[int, _TopK]:
        p0 = p * self.size
        records = self.file.read(p0, min(self.n, p0 + self.size))
        return p0, _TopK.of(np.ascontiguousarray(records["idx"]), np.ascontiguousarray(records["val"]))

    def _save(self, p0: int, part: _TopK) -> None:
        records = np.empty(len(part.idx), dtype=self.record)
        records["idx"], records["val"] = part.idx, part.val
        self.file.put(p0, records)

    def _by_part(self, rows: np.ndarray):
        ranks = self.rank[rows].astype(np.int64)
        parts = ranks // self.size
        order = np.argsort(parts, kind="stable")
        cuts = np.flatnonzero(np.diff(parts[order])) + 1
        for group in np.split(order, cuts):
            if len(group):
                yield int(parts[group[0]]), group, ranks[group]

    def offer(self, r: np.ndarray, c: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not len(r) or not self.k:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        rows, kth = [], []
        for p, group, ranks in self._by_part(r):
            p0, part = self._part(p)
            full, val = part.offer(ranks - p0, c[group], v[group])
            self._save(p0, part)
            rows.append(self._order[full + p0])
            kth.append(val)
        return np.concatenate(rows), np.concatenate(kth)

    def put(self, rows: np.ndarray, idx: np.ndarray, val: np.ndarray) -> None:
        """Replace the tables of ``rows`` with ``idx`` / ``val`` (len(rows) × k)."""
        for p, group, ranks in self._by_part(rows):
            p0, part = self._part(p)
            part.idx[ranks - p0], part.val[ranks - p0] = idx[group], val[group]
            self._save(p0, part)

    def result(self, k: int, keep_zero: bool):
        """The result's tables (:func:`_final_tables`), written in corpus order to a file beside this one:
        → read-only maps of its neighbours and scores, and the file (read by rows with ``Neighbors.rows``).
        This table's own file is closed."""
        from .featurestore import _Column

        record = np.dtype([("idx", np.int32, (k,)), ("val", np.float32, (k,))])
        file = _Column(self.path.with_name("neighbors.bin"), record)
        for r0 in range(0, self.n, STREAM_ROWS):
            part = self.file.take(self.rank[r0 : r0 + STREAM_ROWS])
            out = np.empty(len(part), dtype=record)
            out["idx"], out["val"] = _final_tables(part["idx"], part["val"], k, keep_zero)
            file.append(out)
        file.finish()
        self.file.close()
        table = np.memmap(file.path, dtype=record, mode="r", shape=(self.n,))
        return table["idx"], table["val"], file


def _nonzero2d(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero`` of a C-ordered 2-d mask, ~10× faster when few entries are set (1-d nonzero is vectorized)."""
    if not mask.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    flat = np.flatnonzero(mask)
    return np.divmod(flat, mask.shape[1])


def _candidates(scores: np.ndarray, kth: np.ndarray, kidx: np.ndarray, cols: np.ndarray, axis: int, want: int):
    """Entries of ``scores`` that beat the current k-th best of their report (``axis`` 1: reports are rows,
    0: reports are columns): a higher score, or the same score at a smaller position."""
    # a tie with the k-th best only wins at a smaller position: where every column here comes later, ask for
    # more (the next float up), which keeps the tie-heavy candidates out of the mask
    cut = np.where(kidx < cols[0], np.nextafter(kth, np.float32(np.inf)), kth)
    open_ = np.flatnonzero(kidx < 0)  # reports without k neighbours yet: first cut to the tile's own k-th best
    if len(open_):
        size = scores.shape[axis]
        if size > want:
            if axis == 1:
                cut[open_] = np.partition(scores[open_], size - want, axis=1)[:, size - want]
            else:
                cut[open_] = np.partition(scores[:, open_], size - want, axis=0)[size - want]
    r, c = _nonzero2d(scores >= (cut[:, None] if axis == 1 else cut[None, :]))
    v = scores[r, c]
    mine, other = (r, c) if axis == 1 else (c, r)
    ok = (v > kth[mine]) | ((v == kth[mine]) & (cols[other] < kidx[mine])) | ((kidx[mine] < 0) & (v > -np.inf))
    return mine[ok], other[ok], v[ok]


def _workers(workers: int | None) -> int:
    if workers:
        return max(1, workers)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _all_pairs_top_k(index: SimilarityIndex, k: int = 10, dup_threshold: float | None = 0.9, max_duplicates: int = 1_000_000,
                    memory_mb: float = 256, progress: Callable[[int], None] | None = None,
                    matrix: np.ndarray | None = None, workers: int | None = None, keep_zero: bool = False) -> Neighbors:
    """Top-k most similar other reports of every report (self-pairs excluded; ties by position; only
    reports that share a feature, unless ``keep_zero``: a report without features has no neighbours),
    near-duplicate pairs with combined similarity ≥ ``dup_threshold``, and mean pairwise similarities.
    If ``matrix`` (n × n) is given, it is filled with the combined scores (diagonal included).

    Scores are symmetric, so only the tiles on and above the diagonal are computed; each updates the
    top-k of its rows and (transposed) of its columns. ``workers`` threads (default: the CPUs) take row
    tiles in turn; numpy and BLAS release the GIL, and BLAS is kept to one thread per worker."""
    import time

    started = time.perf_counter()
    n = index.n
    kk = min(k, max(n - 1, 0))
    tile = index.tile_size(memory_mb)
    n_tiles = -(-n // tile)
    n_workers = min(_workers(workers), n_tiles)
    positions = np.arange(n, dtype=np.int64)
    next_tile = iter(range(n_tiles))
    lock = threading.Lock()

    def work() -> tuple[_TopK, list[np.ndarray], list[np.ndarray], int]:
        top = _TopK(n, kk)
        keys: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        n_dup = 0
        bufs = np.empty((3, tile * tile), dtype=np.float32)
        while True:
            with lock:
                i = next(next_tile, None)
            if i is None:
                return top, keys, vals, n_dup
            r0, r1 = i * tile, min(n, (i + 1) * tile)
            q = _Rows(index, slice(r0, r1))
            for j in range(i, n_tiles):
                c0, c1 = j * tile, min(n, (j + 1) * tile)
                s = index._tile(q, j, tile, bufs)
                if matrix is not None:
                    matrix[r0:r1, c0:c1] = s
                    matrix[c0:c1, r0:r1] = s.T
                if i == j:
                    np.fill_diagonal(s, -np.inf)  # no self-pairs
                if dup_threshold is not None:
                    r, c = _nonzero2d(s >= dup_threshold)
                    if i == j:
                        up = c > r
                        r, c = r[up], c[up]
                    if len(r):
                        n_dup += len(r)
                        keys.append((r + r0) * n + (c + c0))
                        vals.append(s[r, c])
                        if sum(len(x) for x in keys) > 2 * max_duplicates + 1_000_000:
                            keys[:], vals[:] = _first_pairs(keys, vals, max_duplicates)
                if kk:
                    kth, kidx = top.threshold(slice(r0, r1))
                    r, c, v = _candidates(s, kth, kidx, positions[c0:c1], axis=1, want=kk)
                    top.offer(r + r0, c + c0, v)
                    if i != j:
                        kth, kidx = top.threshold(slice(c0, c1))
                        r, c, v = _candidates(s, kth, kidx, positions[r0:r1], axis=0, want=kk)
                        top.offer(r + c0, c + r0, v)
            if progress:
                progress(r1 - r0)

    with _one_blas_thread(n_workers > 1):
        if n_workers == 1:
            results = [work()]
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(n_workers) as pool:
                futures = [pool.submit(work) for _ in range(n_workers)]
                results = [f.result() for f in futures]
    top = results[0][0]
    for other, *_rest in results[1:]:
        keep = other.idx >= 0
        top.offer(np.repeat(positions, kk)[keep.ravel()], other.idx[keep], other.val[keep])
    keys = [x for _t, kl, _v, _d in results for x in kl]
    vals = [x for _t, _k, vl, _d in results for x in vl]
    n_dups = sum(d for *_x, d in results)
    return _finish(index, top, k, keep_zero, keys, vals, n_dups, max_duplicates, started)


def _finish(index, top: _TopK, k: int, keep_zero: bool, keys: list[np.ndarray], vals: list[np.ndarray],
            n_dups: int, max_duplicates: int, started: float, per_family: bool = True) -> Neighbors:
    """The :class:`Neighbors` of a finished top-k table and the near-duplicate pairs found. Without
    ``per_family`` the per-family scores are left to the caller (:func:`pair_family_scores`, a block of
    reports at a time) and ``Neighbors.per_family`` is empty."""
    import time

    n = index.n
    nbr, comb, file = top.result(k, keep_zero)  # a spilled table's result is a file in corpus order
    fams: dict[str, np.ndarray] = {}
    if per_family:
        have = nbr >= 0
        fams = {f: np.full((n, k), np.nan, dtype=np.float32) for f in index.names}
        left = np.repeat(np.arange(n, dtype=np.int64), k).reshape(n, k)[have]
        for f, v in pair_family_scores(index, left, nbr[have]).items():
            fams[f][have] = v
        del have, left
        release_free_memory()
    key, val = _first_pairs(keys, vals, max_duplicates)
    key, val = (key[0], val[0]) if key else (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
    dups = list(zip((key // max(n, 1)).tolist(), (key % max(n, 1)).tolist(), val.tolist()))
    means = mean_pairwise(index)
    release_free_memory()
    return Neighbors(getattr(index, "ids", None), nbr, comb, fams, dups, n_dups, means, time.perf_counter() - started, file)


def _final_tables(idx: np.ndarray, val: np.ndarray, k: int, keep_zero: bool) -> tuple[np.ndarray, np.ndarray]:
    """A top-k table (rows × kk ≤ k, -1 / -inf where empty) as the result's: k columns, -1 / NaN where there
    is no neighbour, and without ``keep_zero`` no neighbour at score 0 (a report without features has none).
    Changes ``idx`` and ``val`` in place where they are k wide."""
    if idx.shape[1] != k:
        nbr = np.full((len(idx), k), -1, dtype=np.int32)
        comb = np.full((len(idx), k), np.nan, dtype=np.float32)
        nbr[:, : idx.shape[1]], comb[:, : idx.shape[1]] = idx, val
    else:  # the top-k table becomes the result: no n × k copies
        nbr, comb = idx, val
    have = nbr >= 0
    if not keep_zero:
        have &= comb > 0
        nbr[~have] = -1
    comb[~have] = np.nan
    return nbr, comb


def pair_family_scores(index, left: np.ndarray, right: np.ndarray) -> dict[str, np.ndarray]:
    """Per-family scores of the pairs (left[i], right[i]) of an index or a feature store (float32; NaN
    where both lack the family), reading the rows of :data:`EXACT_BATCH` pairs at a time."""
    left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    out = {name: np.zeros(len(left), dtype=np.float32) for name in index.names}
    for p0 in range(0, len(left), EXACT_BATCH):
        p1 = min(len(left), p0 + EXACT_BATCH)
        a, b = index.gather(left[p0:p1]), index.gather(right[p0:p1])
        pairs = np.arange(p1 - p0)
        for f, name in enumerate(index.names):
            inter = _intersections(a[f], b[f], pairs, pairs)
            denom = np.maximum(index.sizes[f][left[p0:p1]], index.sizes[f][right[p0:p1]])
            with np.errstate(invalid="ignore", divide="ignore"):
                out[name][p0:p1] = (inter / denom).astype(np.float32)
    return out


def mean_pairwise(index) -> dict[str, float]:
    """Mean similarity over distinct pairs, per family (pairs where one of the two has it) and combined
    (all pairs), without scoring the pairs: columns are grouped by (which families a report has, set
    size), so Σ_j |A_i ∩ B_j| / max(|A_i|, |B_j|) is a sum over groups of (A_i · Σ_group B_j) / max(|A_i|, size).
    Reads the rows of an index or a feature store a block at a time, twice."""
    n, names = index.n, list(index.names)
    if n < 2:
        return {f: float("nan") for f in [*names, "combined"]}
    pattern = np.zeros(n, dtype=np.int32)
    for f in range(len(names)):
        pattern |= index.nonempty[f].astype(np.int32) << f
    patterns = np.unique(pattern)
    pidx = np.searchsorted(patterns, pattern).astype(np.int32)
    del pattern
    pat_fams = ((patterns[:, None] >> np.arange(len(names))[None, :]) & 1).astype(bool)  # P × F
    # D[p, q]: families that a report with pattern p or one with pattern q has
    defined = (pat_fams[:, None, :] | pat_fams[None, :, :]).sum(axis=2).astype(np.float64)
    inv_defined = 1.0 / np.maximum(defined, 1)
    out: dict[str, float] = {}
    combined_sum = 0.0
    for f, name in enumerate(names):
        size = index.sizes[f].astype(np.int64)
        width = int(size.max()) + 1
        groups, gidx = np.unique(pidx.astype(np.int64) * width + size, return_inverse=True)
        gidx = gidx.astype(np.int32).ravel()
        del size
        g_pattern, g_size = groups // width, (groups % width).astype(np.float64)
        totals = None  # groups × features: Σ B_j per group
        for r0 in range(0, n, STREAM_ROWS):
            r1 = min(n, r0 + STREAM_ROWS)
            member = sp.csr_matrix((np.ones(r1 - r0), (gidx[r0:r1], np.arange(r1 - r0))), shape=(len(groups), r1 - r0))
            part = member @ index.gather(slice(r0, r1), families=[f])[0]
            totals = part if totals is None else totals + part
        totals = totals.T.tocsr()  # features × groups
        family_sum = 0.0
        sizes64 = index.sizes[f].astype(np.float64)
        step = max(1, (1 << 20) // (8 * max(1, len(groups))))  # rows per block: ~1 MB of float64 at a time
        for r0 in range(0, n, step):
            r1 = min(n, r0 + step)
            x = index.gather(slice(r0, r1), families=[f])[0]
            inter = (x @ totals).toarray().astype(np.float64)  # rows × groups: Σ_j∈group |A_i ∩ B_j|
            scaled = inter / np.maximum(np.maximum(sizes64[r0:r1, None], g_size[None, :]), 1)
            family_sum += float(scaled.sum())
            combined_sum += float((scaled * inv_defined[pidx[r0:r1]][:, g_pattern]).sum())
        self_sum = float(index.nonempty[f].sum())  # score(i, i) = 1 where report i has the family
        z = float(n - index.nonempty[f].sum())
        pairs = n * (n - 1) / 2 - z * (z - 1) / 2
        out[name] = (family_sum - self_sum) / 2 / pairs if pairs else float("nan")
    self_combined = float(index.nonempty.any(axis=0).sum())
    out["combined"] = (combined_sum - self_combined) / 2 / (n * (n - 1) / 2)
    return out


# ---------------------------------------------------------------- pruned top-k: exact, without scoring every pair exactly

BOUND_EPS = 1e-4  # margin for float32 rounding in the bound and in the scores (both err by < 1e-5 here)
BAND = 2  # tiles on each side of a row tile scored exactly for its lower bound, in an order that puts reports sharing rare features near
OFFER_BATCH = 20_000  # candidates gathered before they update the top-k tables (and the thresholds)
WAVE = 8  # tiles per task of the first pass (its row tiles), and per block of the second pass (a task: a block against a block)
FULL_ROW_BELOW = 0.15  # a report whose lower bound is under this is scored against every report
STREAM_ROWS = 8192  # reports read at a time where every row is visited in turn
CANDIDATE_BATCH = 8192  # bound candidates of a task gathered before the refined bound drops some and the rest are scored exactly
EXACT_BATCH = 2048  # candidate pairs of a task scored exactly at a time (their rows are gathered: ~0.5 KB a pair)
OFFER_ROWS = 2048  # reports whose top-k tables one step of an offer merges (its scratch is ~40 bytes × k × this)


def locality_orders(index, count: int = 2) -> list[np.ndarray]:
    """Orders of the reports in which those that share rare features, likely neighbours, come near each
    other: for each of the ``count`` families with the largest vocabularies, sorted by their rarest feature
    in that family (by document frequency), then by their rarest in the next family, and so on. Reads the
    rows of an index or a feature store a block at a time."""
    n, names, widths = index.n, list(index.names), list(index.widths)
    df = index.doc_freq()
    rarest = [np.full(n, (w + 1) * (n + 1), dtype=np.int64) for w in widths]  # reports without the family last
    for r0 in range(0, n, STREAM_ROWS):
        for f, x in enumerate(index.gather(slice(r0, min(n, r0 + STREAM_ROWS)))):
            has = np.flatnonzero(np.diff(x.indptr) > 0)
            if len(has):
                cols = x.indices.astype(np.int64)
                rarest[f][r0 + has] = np.minimum.reduceat(df[f][cols] * widths[f] + cols, x.indptr[has])
    by_width = sorted(range(len(names)), key=lambda f: -widths[f])
    orders = []
    for first in by_width[:count]:
        keys = [rarest[f] for f in [first, *(f for f in by_width if f != first)]]
        orders.append(np.lexsort((np.arange(n), *reversed(keys))).astype(np.int32 if n < 2**31 else np.int64))
    return orders or [np.arange(n)]


def _local_index(names: Sequence[str], parts: Sequence[Sequence[sp.csr_matrix]]) -> SimilarityIndex:
    """An in-memory index of the rows of ``parts`` (each a list of per-family rows) stacked in turn, over
    the columns that occur in them only (renumbered: the scores are the same, the transposes small)."""
    mats = []
    for f in range(len(names)):
        x = parts[0][f] if len(parts) == 1 else sp.vstack([p[f] for p in parts], format="csr")
        cols, inverse = np.unique(x.indices, return_inverse=True)
        mats.append(sp.csr_matrix((x.data, inverse.astype(np.int32).ravel(), x.indptr), shape=(x.shape[0], max(1, len(cols)))))
    m = mats[0].shape[0] if mats else 0
    return SimilarityIndex(range(m), matrices={name: (mat, None) for name, mat in zip(names, mats)})


def band_tile(names: Sequence[str], window: list[sp.csr_matrix], r0: int, r1: int, k: int, tile: int, band: int) -> np.ndarray:
    """A lower bound of the k-th best score of rows r0 … r1 of ``window`` (a run of reports in a locality
    order, cut in tiles; r0 a multiple of ``tile``): each row's k-th best among the reports of the tiles
    up to ``band`` tiles away from its own (in the window), scored exactly; 0 where fewer than k score above 0."""
    local = _local_index(names, [window])
    width = local.n
    n_tiles = -(-width // tile)
    out = np.zeros(r1 - r0, dtype=np.float32)
    bufs = np.empty((3, tile * tile), dtype=np.float32)
    for t0 in range(r0, r1, tile):
        t1, i = min(r1, t0 + tile), t0 // tile
        lo, hi = max(0, i - band), min(n_tiles, i + band + 1)
        m = t1 - t0
        if k <= 0 or k >= min(width, hi * tile) - lo * tile:
            continue
        q = _Rows(local, slice(t0, t1))
        best = np.full((m, k), -np.inf, dtype=np.float32)
        for t in range(lo, hi):
            s = local._tile(q, t, tile, bufs)
            if t == i:
                np.fill_diagonal(s, -np.inf)  # not itself
            both = np.concatenate([best, s], axis=1)  # the k best so far and this tile: keep the k best
            best = np.partition(both, both.shape[1] - k, axis=1)[:, both.shape[1] - k :]
        out[t0 - r0 : t1 - r0] = np.maximum(best.min(axis=1), np.float32(0))
    return out


@dataclass
class _Block:
    """A run of reports of the second pass's order, with what :func:`bound_tile` reads of them."""

    positions: np.ndarray  # their positions in the corpus
    dense: np.ndarray  # bound vectors, frequent columns (rows × d, float32)
    tail: sp.csr_matrix  # bound vectors, the other columns
    families: list  # (incidence rows, max(|A|, 1)) per family
    nonempty: np.ndarray  # families × rows
    tails_t: list  # the tail of each tile of ``tile`` reports, transposed (the right operand of a product)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"positions": self.positions, "dense": self.dense, "nonempty": self.nonempty,
               "tail_data": self.tail.data, "tail_indices": self.tail.indices, "tail_indptr": self.tail.indptr,
               "tail_shape": np.array(self.tail.shape)}
        for f, (x, size1) in enumerate(self.families):
            out.update({f"x{f}_indices": x.indices, f"x{f}_indptr": x.indptr, f"x{f}_shape": np.array(x.shape), f"x{f}_size1": size1})
        for t, x in enumerate(self.tails_t):
            out.update({f"t{t}_data": x.data, f"t{t}_indices": x.indices, f"t{t}_indptr": x.indptr, f"t{t}_shape": np.array(x.shape)})
        return out

    def save(self, path: Path) -> None:
        """One file: a JSON line naming each array (dtype, shape, byte range), then the arrays' bytes."""
        import json

        arrays = {name: np.ascontiguousarray(x) for name, x in self.arrays().items()}
        table, offset = {}, 0
        for name, x in arrays.items():
            table[name] = [x.dtype.str, list(x.shape), offset]
            offset += x.nbytes
        head = json.dumps({"tiles": len(self.tails_t), "families": len(self.families), "arrays": table}).encode() + b"\n"
        with path.open("wb") as fh:
            fh.write(head)
            for x in arrays.values():
                fh.write(x.tobytes())

    @classmethod
    def load(cls, path: Path, tails: bool = True) -> _Block:
        import json

        with path.open("rb") as fh:
            meta = json.loads(fh.readline())
            table = meta["arrays"]
            if tails or not meta["tiles"]:
                raw = fh.read()
            else:  # the transposed tiles come last: read up to them
                raw = fh.read(table["t0_data"][2])

        def get(name: str) -> np.ndarray:
            dtype, shape, offset = table[name]
            dtype = np.dtype(dtype)
            count = int(np.prod(shape)) if shape else 1
            return np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(shape)

        tail = sp.csr_matrix((get("tail_data"), get("tail_indices"), get("tail_indptr")), shape=tuple(get("tail_shape")))
        fams = []
        for f in range(meta["families"]):
            indices = get(f"x{f}_indices")
            x = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, get(f"x{f}_indptr")), shape=tuple(get(f"x{f}_shape")))
            fams.append((x, get(f"x{f}_size1")))
        tails_t = [sp.csr_matrix((get(f"t{t}_data"), get(f"t{t}_indices"), get(f"t{t}_indptr")), shape=tuple(get(f"t{t}_shape")))
                   for t in range(meta["tiles"] if tails else 0)]
        return cls(get("positions"), get("dense"), tail, fams, get("nonempty"), tails_t)


class _Blocks:
    """The second pass's order cut into blocks of ``size`` reports, prepared once: the bound vectors
    y_a = concat_f X_f[a] / sqrt(|A_f| · m_a) (m_a: how many families report a has), whose dot product
    bounds the combined score from above (per family |A ∩ B| / max(|A|, |B|) ≤ |A ∩ B| / sqrt(|A| |B|), and the
    mean divides by the families either report has, at least max(m_a, m_b) ≥ sqrt(m_a m_b)); columns that
    many reports share go to a dense BLAS product, the rest to a sparse one. Kept in memory, or with
    ``spill`` (a folder) written there and read back when a task needs them."""

    def __init__(self, index, order: np.ndarray, size: int, tile: int, memory_mb: float, spill: Path | None) -> None:
        self.order, self.size, self.tile, self.names = order, size, tile, list(index.names)
        self.count = -(-len(order) // size)
        self.spill = None if spill is None else Path(spill)
        n = index.n
        widths = list(index.widths)
        self.offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
        df = np.concatenate([d.astype(np.int64) for d in index.doc_freq()]) if widths else np.zeros(0, dtype=np.int64)
        budget = int(max(0, min(MAX_DENSE_COLUMNS, memory_mb * 2**20 // max(1, 16 * size))))
        by_df = np.argsort(-df, kind="stable")
        frequent = np.sort(by_df[df[by_df] > max(DENSE_SHARE * n, 8)][:budget])
        self.slot = np.full(int(self.offsets[-1]), -1, dtype=np.int64)  # column → its dense column, or -1
        self.slot[frequent] = np.arange(len(frequent))
        self.dense_width = len(frequent)
        # the other columns, numbered among those that two reports share at least: a feature of one report
        # adds nothing to any product (most of a vocabulary, and the transposed tiles' size)
        shared = (self.slot < 0) & (df >= 2)
        self.tail_column = np.where(shared, np.cumsum(shared) - 1, -1)
        self.tail_width = max(1, int(shared.sum()))
        self._kept: list[_Block] = []
        if self.spill is not None:
            self.spill.mkdir(parents=True, exist_ok=True)
        for b in range(self.count):
            block = self._prepare(index, order[b * size : (b + 1) * size])
            if self.spill is None:
                self._kept.append(block)
            else:
                block.save(self.spill / f"block{b}.bin")

    def _prepare(self, index, positions: np.ndarray) -> _Block:
        mats = index.gather(positions)
        m = len(positions)
        nonempty = np.array([np.diff(x.indptr) > 0 for x in mats]).reshape(len(mats), m)
        count = nonempty.sum(axis=0).astype(np.float64)
        data, cols, lens = [], [], np.zeros(m, dtype=np.int64)
        for f, x in enumerate(mats):
            size = np.diff(x.indptr).astype(np.float64)
            w = np.zeros(m)
            has = size > 0
            w[has] = 1 / np.sqrt(size[has] * count[has])
            data.append(np.repeat(w, np.diff(x.indptr)).astype(np.float32))
            cols.append(x.indices.astype(np.int64) + self.offsets[f])
            lens += np.diff(x.indptr)
        row = np.concatenate([np.repeat(np.arange(m), np.diff(x.indptr)) for x in mats]) if mats else np.zeros(0, dtype=np.int64)
        data = np.concatenate(data) if mats else np.zeros(0, dtype=np.float32)
        cols = np.concatenate(cols) if mats else np.zeros(0, dtype=np.int64)
        slot = self.slot[cols]
        dense = np.zeros((m, self.dense_width), dtype=np.float32)
        dense[row[slot >= 0], slot[slot >= 0]] = data[slot >= 0]
        tail_cols = self.tail_column[cols]
        rare = tail_cols >= 0
        tail = sp.csr_matrix((data[rare], (row[rare], tail_cols[rare])), shape=(m, self.tail_width))
        tail.sort_indices()
        fams = [(x, np.maximum(np.diff(x.indptr), 1).astype(np.float32)) for x in mats]
        tails_t = [tail[c0 : c0 + self.tile].T.tocsr() for c0 in range(0, m, self.tile)]
        return _Block(np.asarray(positions, dtype=np.int64), dense, tail, fams, nonempty, tails_t)

    def get(self, b: int, tails: bool = True) -> _Block:
        """Block ``b``; without ``tails``, its transposed tiles (only a right operand needs them) are not read."""
        if self.spill is None:
            return self._kept[b]
        return _Block.load(self.spill / f"block{b}.bin", tails)

    __getitem__ = get

    def span(self, b: int) -> tuple[int, int]:
        return b * self.size, min(len(self.order), (b + 1) * self.size)


def _intersections(xa: sp.csr_matrix, xb: sp.csr_matrix, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """|A ∩ B| of the pairs (row left[i] of ``xa``, row right[i] of ``xb``), float32: the column ids of each
    pair's two rows become keys pair · width + column, sorted on each side (rows keep their ids sorted);
    merged, a key that occurs twice is a column of both rows."""
    fa, pa = _row_positions(xa.indptr, left)
    fb, pb = _row_positions(xb.indptr, right)
    if not len(fa) or not len(fb):
        return np.zeros(len(left), dtype=np.float32)
    width = np.int64(max(xa.shape[1], xb.shape[1]) + 1)
    pair = np.arange(len(left), dtype=np.int64) * width
    keys = np.concatenate([np.repeat(pair, np.diff(pa)) + xa.indices[fa], np.repeat(pair, np.diff(pb)) + xb.indices[fb]])
    keys.sort(kind="stable")  # two sorted runs: one merge
    common = keys[1:][keys[1:] == keys[:-1]]  # a key twice: a column both rows have
    return np.bincount(common // width, minlength=len(left)).astype(np.float32)


def exact_pair_scores(families: Sequence[tuple[sp.csr_matrix, np.ndarray]], nonempty: np.ndarray, left: np.ndarray,
                      right: np.ndarray, right_families: Sequence[tuple[sp.csr_matrix, np.ndarray]] | None = None,
                      right_nonempty: np.ndarray | None = None) -> np.ndarray:
    """Combined scores of the pairs (left[i], right[i]), with the float32 operations of the tile kernel in
    its order, so the same bits: Σ_f |A_f ∩ B_f| / max(|A_f|, |B_f|, 1), then / the families either has.
    ``families`` is (incidence rows with sorted column ids, max(|A|, 1)) per family; ``right`` indexes
    ``right_families`` if given."""
    right_families = families if right_families is None else right_families
    right_nonempty = nonempty if right_nonempty is None else right_nonempty
    left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    total = np.zeros(len(left), dtype=np.float32)
    for f, ((matrix, size1), (rmatrix, rsize1)) in enumerate(zip(families, right_families)):
        inter = np.empty(len(left), dtype=np.float32)
        for p0 in range(0, len(left), PAIR_BLOCK):
            p1 = p0 + PAIR_BLOCK
            inter[p0:p1] = _intersections(matrix, rmatrix, left[p0:p1], right[p0:p1])
        np.divide(inter, np.maximum(size1[left], rsize1[right]), out=inter)
        if f:
            total += inter
        else:
            total = inter
    defined = (nonempty[:, left] | right_nonempty[:, right]).sum(axis=0).astype(np.float32)
    return total / np.maximum(defined, np.float32(1))


def _refined_bound(a: _Block, b: _Block, left: np.ndarray, right: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """A tighter upper bound of the combined scores of the pairs (row left[i] of ``a``, row right[i] of
    ``b``), from their bound-vector products ``bound`` and the set sizes: per family the score is
    cos_f · r_f, with cos_f = |A∩B| / sqrt(|A| |B|) ≤ r_f = sqrt(min(|A|, |B|) / max(|A|, |B|)) (0 unless both
    have the family), and the product is Σ_f cos_f / sqrt(m_a m_b), so Σ_f cos_f ≤ C = product · sqrt(m_a m_b).
    The most Σ_f cos_f r_f can be under those constraints is C given out to the families with the largest r
    first; divided by the families either report has, it bounds the score (a margin of BOUND_EPS on
    either side of the float32 arithmetic)."""
    families = len(a.families)
    sizes_a = np.array([size1[left] for _x, size1 in a.families]).reshape(families, len(left))
    sizes_b = np.array([size1[right] for _x, size1 in b.families]).reshape(families, len(right))
    has_a, has_b = a.nonempty[:, left], b.nonempty[:, right]
    ratio = np.sqrt(np.minimum(sizes_a, sizes_b) / np.maximum(sizes_a, sizes_b))
    ratio[~(has_a & has_b)] = 0
    ratio = -np.sort(-ratio, axis=0)  # the largest first
    budget = (bound + np.float32(BOUND_EPS)) * np.sqrt(has_a.sum(axis=0) * has_b.sum(axis=0)).astype(np.float32)
    value = np.zeros(len(left), dtype=np.float32)
    for r in ratio:
        x = np.minimum(r, budget)
        value += x * r
        budget -= x
    return value / np.maximum((has_a | has_b).sum(axis=0), 1).astype(np.float32) + np.float32(BOUND_EPS)


def _scipy_kernels():
    """scipy's C routines for a CSR product into arrays given (``csr_matmat``) and for adding a CSR matrix
    into a dense one (``csr_todense``, which adds), or None. They are scipy's private API: used only once a
    small product through them has given what the public operators give (checked once a process)."""
    global _KERNELS
    if _KERNELS is None:
        _KERNELS = False
        try:
            from scipy.sparse import _sparsetools

            rng = np.random.default_rng(0)
            x = sp.random(7, 9, density=0.4, format="csr", dtype=np.float32, random_state=rng)
            y = sp.random(9, 5, density=0.4, format="csr", dtype=np.float32, random_state=rng)
            x.indptr, x.indices, y.indptr, y.indices = (v.astype(np.int32) for v in (x.indptr, x.indices, y.indptr, y.indices))
            base = rng.random((7, 5), dtype=np.float32)
            out = base.copy()
            cp, cj, cx = np.empty(8, np.int32), np.empty(35, np.int32), np.empty(35, np.float32)
            _sparsetools.csr_matmat(7, 5, x.indptr, x.indices, x.data, y.indptr, y.indices, y.data, cp, cj, cx)
            _sparsetools.csr_todense(7, 5, cp, cj, cx, out)
            want = base.copy()
            want += (x @ y).toarray()
            if np.array_equal(out, want):
                _KERNELS = _sparsetools
        except Exception:  # pragma: no cover - another scipy: the public operators
            _KERNELS = False
    return _KERNELS or None


_KERNELS = None


_SCRATCH = threading.local()  # each thread's arrays for the products of add_product


def add_product(out: np.ndarray, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, right: sp.csr_matrix) -> None:
    """``out += X @ right``: X the CSR rows of ``indptr`` (len(out) + 1 pointers into ``indices`` / ``data``, which
    need not start at 0: a view of a bigger matrix's rows) and ``right`` CSR, ``out`` dense. With scipy's C
    routines (:func:`_scipy_kernels`), int32 ids and float32 values, straight into ``out``: the product's
    arrays are the thread's, kept from call to call, and there is no pass to size the product, no matrix
    object and no scatter; otherwise through the public operators. The product has each (row, column) once,
    so either way every entry of ``out`` gets one float32 addition: the same bits."""
    m, c = out.shape
    if indptr[0] == indptr[m] or not right.nnz:
        return
    kernels = _scipy_kernels()
    if kernels is not None and out.dtype == np.float32 and out.flags.c_contiguous and data.dtype == np.float32 \
            and right.data.dtype == np.float32 and all(x.dtype == np.int32 for x in (indptr, indices, right.indptr, right.indices)):
        cp, cj, cx = getattr(_SCRATCH, "arrays", (np.empty(0, np.int32),) * 3)
        if len(cp) < m + 1 or len(cj) < m * c:  # grown to the largest product yet (a tile: ~2 MB)
            size = max(m * c, len(cj))
            cp, cj, cx = np.empty(max(m + 1, len(cp)), dtype=np.int32), np.empty(size, dtype=np.int32), np.empty(size, dtype=np.float32)
            _SCRATCH.arrays = (cp, cj, cx)
        kernels.csr_matmat(m, c, indptr, indices, data, right.indptr, right.indices, right.data, cp, cj, cx)
        kernels.csr_todense(m, c, cp, cj, cx, out)
        return
    start, stop = int(indptr[0]), int(indptr[m])
    left = sp.csr_matrix((data[start:stop], indices[start:stop], indptr - start), shape=(m, right.shape[0]))
    rare = left @ right
    if rare.nnz:
        pos = np.repeat(np.arange(m, dtype=np.int64) * c, np.diff(rare.indptr)) + rare.indices
        out.reshape(-1)[pos] += rare.data


def bound_tile(a: _Block, b: _Block, theta_a: np.ndarray, theta_b: np.ndarray, tile: int, same: bool, dup: float, n: int, k: int):
    """The reports of block ``a`` against those of block ``b`` (``a`` itself where ``same``: then only the
    reports after each one), a tile × tile square at a time: the pairs whose bound reaches the threshold
    (``theta_a``, ``theta_b``) of either report, and then whose refined bound (:func:`_refined_bound`) does,
    are scored exactly. → ``(report, neighbour, score)`` of each
    report's k best here (ties by the smaller position: what the top-k tables keep), and ``(near-duplicate
    keys min·n + max, their scores, their count)``, in corpus positions."""
    ma, mb = len(a.positions), len(b.positions)
    buf = np.empty(tile * tile, dtype=np.float32)
    masks = np.empty((2, tile * tile), dtype=bool)
    dup_keys: list[np.ndarray] = []
    dup_vals: list[np.ndarray] = []
    best = _TopK(ma if same else ma + mb, k)  # rows: a's reports, then b's; neighbours in corpus positions
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    reduce_at = k * best.val.shape[0] // 4  # kept candidates beyond this are cut to each report's k best
    found_a: list[np.ndarray] = []
    found_b: list[np.ndarray] = []
    found_s: list[np.ndarray] = []
    waiting = 0

    def score() -> None:
        nonlocal waiting
        left_all, right_all, bound = np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_s)
        found_a.clear()
        found_b.clear()
        found_s.clear()
        waiting = 0
        value = _refined_bound(a, b, left_all, right_all, bound)
        keep = (value >= theta_a[left_all]) | (value >= theta_b[right_all])
        left_all, right_all = left_all[keep], right_all[keep]
        for p0 in range(0, len(left_all), EXACT_BATCH):  # a tile can give many: their rows' ids are merged a batch at a time
            score_batch(left_all[p0 : p0 + EXACT_BATCH], right_all[p0 : p0 + EXACT_BATCH])

    def score_batch(left: np.ndarray, right: np.ndarray) -> None:
        v = exact_pair_scores(a.families, a.nonempty, left, right, b.families, b.nonempty)
        is_dup = v >= dup
        if is_dup.any():
            pa, pb = a.positions[left[is_dup]], b.positions[right[is_dup]]
            dup_keys.append(np.minimum(pa, pb) * n + np.maximum(pa, pb))
            dup_vals.append(v[is_dup])
        # under a report's threshold (a lower bound of its k-th best, less a margin): not in its top-k
        for_a, for_b = v >= theta_a[left], v >= theta_b[right]
        la, ra, va = left[for_a], right[for_a], v[for_a]
        lb, rb, vb = left[for_b], right[for_b], v[for_b]
        kept.append((np.concatenate([la, rb if same else rb + ma]), np.concatenate([b.positions[ra], a.positions[lb]]), np.concatenate([va, vb])))
        if sum(len(x[0]) for x in kept) > reduce_at:
            best.offer(*(np.concatenate(x) for x in zip(*kept)))
            kept.clear()

    tail = a.tail
    for r0 in range(0, ma, tile):
        r1 = min(ma, r0 + tile)
        rows_dense = a.dense[r0:r1]
        theta_r = theta_a[r0:r1, None]
        for c0 in range(r0 if same else 0, mb, tile):
            c1 = min(mb, c0 + tile)
            m, c = r1 - r0, c1 - c0
            s = buf[: m * c].reshape(m, c)
            if rows_dense.shape[1]:
                np.matmul(rows_dense, b.dense[c0:c1].T, out=s)
            else:
                s.fill(0)
            add_product(s, tail.indptr[r0 : r1 + 1], tail.indices, tail.data, b.tails_t[c0 // tile])  # the rows' tail: a view
            mask, other = masks[0, : m * c].reshape(m, c), masks[1, : m * c].reshape(m, c)
            np.greater_equal(s, theta_r, out=mask)
            np.greater_equal(s, theta_b[None, c0:c1], out=other)
            mask |= other
            r, cc = _nonzero2d(mask)
            if same and c0 == r0:
                up = cc > r
                r, cc = r[up], cc[up]
            if len(r):
                found_a.append(r + r0)
                found_b.append(cc + c0)
                found_s.append(s[r, cc])
                waiting += len(r)
            if waiting > CANDIDATE_BATCH:
                score()
    if waiting:
        score()
    if kept:
        best.offer(*(np.concatenate(x) for x in zip(*kept)))
    at = a.positions if same else np.concatenate([a.positions, b.positions])
    r, ranks = np.nonzero(best.idx >= 0)
    keys = np.concatenate(dup_keys) if dup_keys else np.zeros(0, dtype=np.int64)
    vals = np.concatenate(dup_vals) if dup_vals else np.zeros(0, dtype=np.float32)
    return at[r], best.idx[r, ranks].astype(np.int64), best.val[r, ranks], keys, vals, len(keys)


def full_row_tile(names: Sequence[str], rows: list[sp.csr_matrix], row_positions: np.ndarray, block: _Block, k: int, tile: int):
    """Reports ``rows`` (at ``row_positions``) against every report of ``block``, scored exactly a tile
    of columns at a time: the pairs that can be in a report's top-k (its k best in a tile, ties included,
    above 0; not itself)."""
    m, width = len(row_positions), len(block.positions)
    local = _local_index(names, [rows, [x for x, _size1 in block.families]])
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for c0 in range(0, width, tile):
        c1 = min(width, c0 + tile)
        s = local.exact_block(np.arange(m), np.arange(m + c0, m + c1))
        r, c = np.nonzero(row_positions[:, None] == block.positions[None, c0:c1])
        s[r, c] = -np.inf
        cut = np.partition(s, c1 - c0 - k, axis=1)[:, c1 - c0 - k] if 0 < k < c1 - c0 else np.full(m, -np.inf, dtype=np.float32)
        r, c = _nonzero2d((s >= cut[:, None]) & (s > 0))
        found.append((row_positions[r], block.positions[c + c0], s[r, c]))
    return tuple(np.concatenate(x) for x in zip(*found)) if found else (np.zeros(0, dtype=np.int64),) * 2 + (np.zeros(0, dtype=np.float32),)


def _run_tasks(fn, tasks: Sequence, args_of: Callable, take: Callable, workers: int | None, client) -> None:
    """``take(fn(*args_of(task)), task)`` for every task, in task order: on ``workers`` threads (each
    calls ``args_of``, so each reads its own rows) or on the workers of a Dask client (the client reads
    the rows and sends them with the task; at most two tasks per worker are in flight). The heap's free
    pages are given back after each task (:func:`release_free_memory`), so that memory stays that of the
    tasks in flight."""

    def take_and_trim(result, task) -> None:
        take(result, task)
        release_free_memory()

    if client is not None:
        from dask.distributed import as_completed

        limit = 2 * max(1, len(client.scheduler_info().get("workers", {})))
        todo = iter(enumerate(tasks))
        done: dict[int, object] = {}
        next_take = 0
        running = as_completed()
        position: dict[str, int] = {}

        def submit() -> bool:
            item = next(todo, None)
            if item is None:
                return False
            i, task = item
            args = [client.scatter(x, hash=False) if isinstance(x, (_Block, list)) else x for x in args_of(task)]
            future = client.submit(fn, *args, pure=False)
            position[future.key] = i
            running.add(future)
            return True

        for _ in range(limit):
            if not submit():
                break
        for future in running:
            done[position.pop(future.key)] = future.result()
            future.release()
            while next_take in done:  # in task order, as the threads give them
                take_and_trim(done.pop(next_take), tasks[next_take])
                next_take += 1
            submit()
        return
    n_workers = min(_workers(workers), max(1, len(tasks)))
    with _one_blas_thread(n_workers > 1):
        if n_workers <= 1:
            for task in tasks:
                take_and_trim(fn(*args_of(task)), task)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(n_workers) as pool:
                for task, result in zip(tasks, pool.map(lambda t: fn(*args_of(t)), tasks)):
                    take_and_trim(result, task)


def top_k_neighbors(index, k: int = 10, dup_threshold: float | None = 0.9, max_duplicates: int = 1_000_000,
                    memory_mb: float = 256, progress: Callable[[int], None] | None = None,
                    matrix: np.ndarray | None = None, workers: int | None = None, keep_zero: bool = False,
                    client=None, per_family: bool = True, spill: str | Path | None = None) -> Neighbors:
    """Top-k most similar other reports of every report (self-pairs excluded; ties by position; only
    reports that share a feature, unless ``keep_zero``: a report without features has no neighbours),
    near-duplicate pairs with combined similarity ≥ ``dup_threshold``, and mean pairwise similarities.
    If ``matrix`` (n × n) is given, it is filled with the combined scores (diagonal included).

    ``index``: a :class:`SimilarityIndex` (in memory) or a :class:`~radtool.analysis.featurestore.FeatureStore`
    (on disk): the pruned path reads report rows a block at a time from either, so what it holds is the
    rows of the tasks in flight plus the top-k tables and a few numbers per report.

    Exact, without scoring every pair exactly. Reports are put in an order where those sharing rare
    features are near (:func:`locality_orders`); a band of tiles along the diagonal is scored exactly, which
    gives each report a lower bound τ of its k-th best score; every other pair gets a cheap upper bound
    (:class:`_Blocks`, one product per tile), and only pairs whose bound reaches τ of either report (or the
    near-duplicate threshold) are scored exactly, with the kernel's float32 operations. Reports whose τ
    stays low are scored against every report. Tasks run on ``workers`` threads (default: the CPUs) or
    on the workers of a ``dask.distributed`` ``client``: the result is the same. The prepared blocks of the
    second pass go to ``spill`` (default: a store's own folder; in memory for an in-memory index), and
    with them the top-k tables (:class:`_SpilledTopK`): then ``Neighbors.index`` / ``combined`` are
    read-only maps of a file there (read them by rows with ``Neighbors.rows``, which maps nothing).
    ``matrix``, ``keep_zero`` and a threshold ≤ 0 (every pair a near-duplicate) score all pairs, in memory."""
    import time

    if matrix is not None or keep_zero or (dup_threshold is not None and dup_threshold <= 0) or index.n < 2:
        if not isinstance(index, SimilarityIndex):
            index = SimilarityIndex.from_store(index)
        return _all_pairs_top_k(index, k, dup_threshold, max_duplicates, memory_mb, progress, matrix, workers, keep_zero)
    started = time.perf_counter()
    n, names = index.n, list(index.names)
    kk = min(k, n - 1)
    dup = float(np.float32(np.inf if dup_threshold is None else dup_threshold))
    tile = _tile_size(n, memory_mb)
    n_tiles = -(-n // tile)
    if spill is None and not isinstance(index, SimilarityIndex):
        spill = Path(index.directory) / "blocks"
    keys: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    n_dups = 0
    pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    # first pass: exact scores in a band along the diagonal of each locality order → τ
    orders = locality_orders(index)
    release_free_memory()
    tau = np.zeros(n, dtype=np.float32)

    groups = -(-n_tiles // WAVE)  # a task: WAVE row tiles of an order, with the tiles of their bands

    def band_args(t: int):
        o, g = divmod(t, groups)
        w0, w1 = max(0, g * WAVE - BAND), min(n_tiles, (g + 1) * WAVE + BAND)
        r0, r1 = (g * WAVE - w0) * tile, min(n, (g + 1) * WAVE * tile) - w0 * tile
        return names, index.gather(orders[o][w0 * tile : w1 * tile]), r0, r1, kk, tile, BAND

    def take_tau(kth: np.ndarray, t: int) -> None:
        o, g = divmod(t, groups)
        rows = orders[o][g * WAVE * tile : (g + 1) * WAVE * tile]
        tau[rows] = np.maximum(tau[rows], kth)

    _run_tasks(band_tile, range(len(orders) * groups), band_args, take_tau, workers, client)
    order = orders[0].astype(np.int32)
    del orders
    rank = np.empty(n, dtype=np.int32)
    rank[order] = np.arange(n, dtype=np.int32)
    empty = ~index.nonempty.any(axis=0)
    full = ~empty & (tau < FULL_ROW_BELOW)
    theta = np.where(full | empty, np.float32(dup), np.minimum(tau, np.float32(dup))) - np.float32(BOUND_EPS)
    del tau
    live = theta.astype(np.float32)[order]  # per report in order: the threshold, raised as exact scores come in
    pinned = (full | empty)[order]  # their threshold stays the near-duplicate one
    del theta, empty
    size = tile * WAVE  # reports per block of the second pass
    if spill is None:
        top = _TopK(n, kk)
    else:  # the n × k tables on disk too, in the second pass's order: a task's offer reads and writes two parts
        Path(spill).mkdir(parents=True, exist_ok=True)
        top = _SpilledTopK(n, kk, order, rank, size, Path(spill) / "topk.bin")

    def offer_pending() -> None:  # in batches: one offer touches the top-k of every report it names
        if pending:
            a, b, v = (np.concatenate(x) for x in zip(*pending))
            pending.clear()
            rows, kth = top.offer(a, b, v)
            if len(rows):  # a k-th best of distinct exact pairs is a lower bound too
                pos = rank[rows]
                raised = np.minimum(kth, np.float32(dup)) - np.float32(BOUND_EPS)
                live[pos] = np.maximum(live[pos], np.where(pinned[pos], live[pos], raised))

    # second pass: every other pair, a block of rows against a block of columns, near the diagonal first
    # (in this order the likely neighbours are near, so thresholds have risen by the time far blocks run)
    blocks = _Blocks(index, order, size, tile, memory_mb, None if spill is None else Path(spill))
    release_free_memory()
    tasks = [(i, i + d) for d in range(blocks.count) for i in range(blocks.count - d)]

    def pair_args(task: tuple[int, int]):
        (a0, a1), (b0, b1) = blocks.span(task[0]), blocks.span(task[1])
        same = task[0] == task[1]
        a = blocks.get(task[0], tails=same)  # only a right operand needs its transposed tiles
        return a, (a if same else blocks[task[1]]), live[a0:a1].copy(), live[b0:b1].copy(), tile, same, dup, n, kk

    def take(result, task: tuple[int, int]) -> None:
        nonlocal n_dups
        a, b, v, dk, dv, nd = result
        pending.append((a, b, v))
        if sum(len(x[0]) for x in pending) > OFFER_BATCH:
            offer_pending()
        if nd:
            # copied here, and joined now and then: a worker's small arrays kept for the rest of the run
            # would pin pages of its heap, which then cannot be given back
            keys.append(dk.copy())
            vals.append(dv.copy())
            n_dups += nd
            if len(keys) >= 64:
                keys[:], vals[:] = _first_pairs(keys, vals, max_duplicates)
        if progress:
            (a0, a1), (b0, b1) = blocks.span(task[0]), blocks.span(task[1])
            progress((a1 - a0) * (b1 - b0) / (n - a0))

    _run_tasks(bound_tile, tasks, pair_args, take, workers, client)
    offer_pending()
    rows = np.flatnonzero(full)
    del full
    if len(rows) and kk:  # low τ: these reports are scored against every report, and their top-k starts afresh
        fresh = _TopK(len(rows), kk)  # their tables, by their place in ``rows``
        at = np.full(n, -1, dtype=np.int32)
        at[rows] = np.arange(len(rows), dtype=np.int32)
        chunks = [rows[s0 : s0 + tile] for s0 in range(0, len(rows), tile)]
        full_tasks = [(c, b) for c in range(len(chunks)) for b in range(blocks.count)]

        def full_args(task: tuple[int, int]):
            chunk = chunks[task[0]]
            return names, index.gather(chunk), chunk, blocks.get(task[1], tails=False), kk, tile

        def take_full(result, _task) -> None:
            r, c, v = result
            fresh.offer(at[r], c, v)

        _run_tasks(full_row_tile, full_tasks, full_args, take_full, workers, client)
        del at
        top.put(rows, fresh.idx, fresh.val)
        del fresh
    del live, pinned
    return _finish(index, top, k, keep_zero, keys, vals, n_dups, max_duplicates, started, per_family=per_family)


def _first_pairs(keys: list[np.ndarray], vals: list[np.ndarray], limit: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The ``limit`` pairs with the smallest keys (i·n + j), in key order."""
    if not keys:
        return [], []
    key, val = np.concatenate(keys), np.concatenate(vals)
    if len(key) > limit:
        part = np.argpartition(key, limit - 1)[:limit] if limit > 0 else np.zeros(0, dtype=np.int64)
        key, val = key[part], val[part]
    order = np.argsort(key, kind="stable")
    return [key[order]], [val[order]]


class _one_blas_thread:
    """Limit BLAS to one thread while worker threads run (threadpoolctl when installed, else no-op)."""

    def __init__(self, active: bool) -> None:
        self.active, self.ctx = active, None

    def __enter__(self):
        if self.active:
            try:
                from threadpoolctl import threadpool_limits
            except ImportError:  # pragma: no cover
                return self
            self.ctx = threadpool_limits(1, user_api="blas")
            self.ctx.__enter__()
        return self

    def __exit__(self, *exc):
        if self.ctx is not None:
            self.ctx.__exit__(*exc)
        return False


def similarity_matrix(index: SimilarityIndex, memory_mb: float = 256) -> np.ndarray:
    out = np.zeros((index.n, index.n), dtype=np.float32)
    for rows, combined, _per in index.blocks(memory_mb=memory_mb, per_family=False):
        out[rows] = combined
    return out
