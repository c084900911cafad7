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

import numpy as np
import scipy.sparse as sp

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
        """Side of the square tiles of the fast kernel: TILE (small enough that the few tile buffers stay in
        the CPU cache), less if ``memory_mb`` is tiny (tests use that to get many uneven tiles)."""
        return int(max(1, min(TILE, self.n, math.isqrt(int(memory_mb * 2**20 / (4 * 8))))))

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
            if s_rows.nnz and cols_t.nnz:
                rare = s_rows @ cols_t  # the long tail: a sparse product, added in place
                if rare.nnz:
                    pos = np.repeat(np.arange(m, dtype=np.int64) * c, np.diff(rare.indptr)) + rare.indices
                    target.reshape(-1)[pos] += rare.data
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

    def permuted(self, order: np.ndarray) -> SimilarityIndex:
        """The same index with its reports in ``order`` (position p holds report order[p])."""
        order = np.asarray(order, dtype=np.int64)
        out = SimilarityIndex([self.ids[i] for i in order.tolist()],
                              matrices={name: (fam.matrix[order], fam.vocab) for name, fam in self.families.items()},
                              memory_mb=self.memory_mb)
        for name, fam in self.families.items():
            out.families[name].merged = fam.merged
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
        left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
        out = {}
        for name, fam in self.families.items():
            inter = np.zeros(len(left), dtype=np.float32)
            for p0 in range(0, len(left), PAIR_BLOCK):  # in blocks: row gathers of millions of pairs are large
                p1 = p0 + PAIR_BLOCK
                inter[p0:p1] = np.asarray(fam.matrix[left[p0:p1]].multiply(fam.matrix[right[p0:p1]]).sum(axis=1), dtype=np.float32).ravel()
            denom = np.maximum(fam.sizes[left], fam.sizes[right])
            with np.errstate(invalid="ignore", divide="ignore"):
                out[name] = (inter / denom).astype(np.float32)
        return out

    def mean_pairwise(self) -> dict[str, float]:
        """Mean similarity over distinct pairs, per family (pairs where one of the two has it) and combined
        (all pairs), without scoring the pairs: columns are grouped by (which families a report has, set
        size), so Σ_j |A_i ∩ B_j| / max(|A_i|, |B_j|) is a sum over groups of (A_i · Σ_group B_j) / max(|A_i|, size)."""
        n, names = self.n, list(self.families)
        if n < 2:
            return {f: float("nan") for f in [*names, "combined"]}
        pattern = np.zeros(self.n, dtype=np.int64)
        for f in range(len(names)):
            pattern |= self.nonempty[f].astype(np.int64) << f
        patterns = np.unique(pattern)
        pidx = np.searchsorted(patterns, pattern)
        pat_fams = ((patterns[:, None] >> np.arange(len(names))[None, :]) & 1).astype(bool)  # P × F
        # D[p, q]: families that a report with pattern p or one with pattern q has
        defined = (pat_fams[:, None, :] | pat_fams[None, :, :]).sum(axis=2).astype(np.float64)
        inv_defined = 1.0 / np.maximum(defined, 1)
        out: dict[str, float] = {}
        combined_sum = 0.0
        for f, (name, fam) in enumerate(self.families.items()):
            size = fam.sizes.astype(np.int64)
            key = pidx * (int(size.max()) + 1) + size
            groups, gidx = np.unique(key, return_inverse=True)
            g_pattern, g_size = groups // (int(size.max()) + 1), (groups % (int(size.max()) + 1)).astype(np.float64)
            member = sp.csr_matrix((np.ones(n), (gidx, np.arange(n))), shape=(len(groups), n))
            totals = (member @ fam.matrix).T.tocsr()  # features × groups: Σ B_j per group
            family_sum = 0.0
            sizes64 = fam.sizes.astype(np.float64)
            step = max(1, (32 << 20) // (8 * max(1, len(groups))))  # rows per block: ~32 MB of float64 at a time
            for r0 in range(0, n, step):
                r1 = min(n, r0 + step)
                inter = (fam.matrix[r0:r1] @ totals).toarray().astype(np.float64)  # rows × groups: Σ_j∈group |A_i ∩ B_j|
                scaled = inter / np.maximum(np.maximum(sizes64[r0:r1, None], g_size[None, :]), 1)
                family_sum += float(scaled.sum())
                combined_sum += float((scaled * inv_defined[pidx[r0:r1]][:, g_pattern]).sum())
            self_sum = float(self.nonempty[f].sum())  # score(i, i) = 1 where report i has the family
            z = float(n - self.nonempty[f].sum())
            pairs = n * (n - 1) / 2 - z * (z - 1) / 2
            out[name] = (family_sum - self_sum) / 2 / pairs if pairs else float("nan")
        self_combined = float(self.nonempty.any(axis=0).sum())
        out["combined"] = (combined_sum - self_combined) / 2 / (n * (n - 1) / 2)
        return out


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
        self.idx = np.full((n, k), -1, dtype=np.int64)

    def threshold(self, rows: slice | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.val[rows, self.k - 1], self.idx[rows, self.k - 1]

    def offer(self, r: np.ndarray, c: np.ndarray, v: np.ndarray) -> None:
        if not len(r) or not self.k:
            return
        rows = np.unique(r)
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


def _finish(index: SimilarityIndex, top: _TopK, k: int, keep_zero: bool, keys: list[np.ndarray], vals: list[np.ndarray],
            n_dups: int, max_duplicates: int, started: float) -> Neighbors:
    """The :class:`Neighbors` of a finished top-k table and the near-duplicate pairs found."""
    import time

    n, kk = index.n, top.k
    positions = np.arange(n, dtype=np.int64)
    nbr = np.full((n, k), -1, dtype=np.int64)
    comb = np.full((n, k), np.nan, dtype=np.float32)
    nbr[:, :kk] = top.idx
    comb[:, :kk] = top.val
    have = nbr >= 0
    if not keep_zero:  # a neighbour that shares no feature is no neighbour: empty reports get none
        have &= comb > 0
        nbr[~have] = -1
    comb[~have] = np.nan
    fams = {f: np.full((n, k), np.nan, dtype=np.float32) for f in index.families}
    left = np.repeat(positions, k).reshape(n, k)[have]
    for f, v in index.pair_scores(left, nbr[have]).items():
        fams[f][have] = v
    key, val = _first_pairs(keys, vals, max_duplicates)
    key, val = (key[0], val[0]) if key else (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
    dups = list(zip((key // max(n, 1)).tolist(), (key % max(n, 1)).tolist(), val.tolist()))
    return Neighbors(index.ids, nbr, comb, fams, dups, n_dups, index.mean_pairwise(), time.perf_counter() - started)


# ---------------------------------------------------------------- pruned top-k: exact, without scoring every pair exactly

BOUND_EPS = 1e-4  # margin for float32 rounding in the bound and in the scores (both err by < 1e-5 here)
BAND = 2  # tiles on each side of a row tile scored exactly for its lower bound, in an order that puts reports sharing rare features near
OFFER_BATCH = 250_000  # candidate pairs gathered before they update the top-k tables (and the thresholds)
WAVE = 16  # column tiles per task of the second pass
FULL_ROW_BELOW = 0.15  # a report whose lower bound is under this is scored against every report


def locality_orders(index: SimilarityIndex, count: int = 2) -> list[np.ndarray]:
    """Orders of the reports in which those that share rare features, likely neighbours, come near each
    other: for each of the ``count`` families with the largest vocabularies, sorted by their rarest feature
    in that family (by document frequency), then by their rarest in the next family, and so on."""
    n = index.n
    rarest = {}
    for name, fam in index.families.items():
        x = fam.matrix
        width = x.shape[1]
        df = np.bincount(x.indices, minlength=width).astype(np.int64)
        key = np.full(n, (width + 1) * (n + 1), dtype=np.int64)  # reports without the family last
        has = np.flatnonzero(np.diff(x.indptr) > 0)
        if len(has):
            key[has] = np.minimum.reduceat(df[x.indices] * width + x.indices, x.indptr[has])
        rarest[name] = key
    names = sorted(index.families, key=lambda f: -index.families[f].matrix.shape[1])
    orders = []
    for first in names[:count]:
        keys = [rarest[f] for f in [first, *(f for f in names if f != first)]]
        orders.append(np.lexsort((np.arange(n), *reversed(keys))))
    return orders or [np.arange(n)]


class _Bound:
    """A cheap upper bound of the combined score of every pair, from one product over all families.

    With y_a = concat_f X_f[a] / sqrt(|A_f| · m_a) (m_a: how many families report a has), y_a · y_b ≥
    combined(a, b): per family |A ∩ B| / max(|A|, |B|) ≤ |A ∩ B| / sqrt(|A| |B|), and the mean divides by the
    families either report has, at least max(m_a, m_b) ≥ sqrt(m_a m_b). Rows are in ``order``; frequent
    columns of Y go to a dense BLAS product and the rest to a sparse one, as in the exact kernel."""

    def __init__(self, index: SimilarityIndex, order: np.ndarray, tile: int) -> None:
        n = index.n
        m = index.nonempty.sum(axis=0).astype(np.float64)
        parts = []
        for fam in index.families.values():
            w = np.zeros(n)
            has = fam.sizes > 0
            w[has] = 1 / np.sqrt(fam.sizes[has].astype(np.float64) * m[has])
            x = fam.matrix
            parts.append(sp.csr_matrix((w[np.repeat(np.arange(n), np.diff(x.indptr))].astype(np.float32), x.indices, x.indptr), shape=x.shape))
        y = (sp.hstack(parts, format="csr") if parts else sp.csr_matrix((n, 0), dtype=np.float32))[order]
        df = np.bincount(y.indices, minlength=y.shape[1])
        budget = int(max(0, min(MAX_DENSE_COLUMNS, index.memory_mb * 2**20 // max(1, 4 * n))))
        by_df = np.argsort(-df, kind="stable")
        frequent = np.sort(by_df[df[by_df] > max(DENSE_SHARE * n, 8)][:budget])
        rare = np.setdiff1d(np.arange(y.shape[1]), frequent)
        csc = y.tocsc()
        self.dense = np.ascontiguousarray(csc[:, frequent].toarray(), dtype=np.float32)
        self.tail = csc[:, rare].tocsr()
        self.tiles_t = [self.tail[s : s + tile].T.tocsr() for s in range(0, n, tile)]


@dataclass
class _PairJob:
    """What scoring one row tile needs (Dask ships it to every worker once). Tiles are of reports in
    ``order`` (position p of a tile is report order[p]); results are in original positions."""

    index: SimilarityIndex | None
    order: np.ndarray
    tile: int
    k: int
    dup_threshold: float  # inf: no near-duplicates
    band: int = BAND
    orders: list[np.ndarray] | None = None  # the first pass: the orders whose bands give lower bounds
    bound: _Bound | None = None  # the second pass:
    families: list | None = None  # (incidence matrix, max(|A|, 1)) per family, rows in order
    nonempty: np.ndarray | None = None  # families × reports, in order


def exact_pair_scores(families: Sequence[tuple[sp.csr_matrix, np.ndarray]], nonempty: np.ndarray, left: np.ndarray,
                      right: np.ndarray) -> np.ndarray:
    """Combined scores of the pairs (left[i], right[i]), with the float32 operations of the tile kernel in
    its order, so the same bits: Σ_f |A_f ∩ B_f| / max(|A_f|, |B_f|, 1), then / the families either has."""
    total = np.zeros(len(left), dtype=np.float32)
    for f, (matrix, size1) in enumerate(families):
        inter = np.empty(len(left), dtype=np.float32)
        for p0 in range(0, len(left), PAIR_BLOCK):
            p1 = p0 + PAIR_BLOCK
            inter[p0:p1] = np.asarray(matrix[left[p0:p1]].multiply(matrix[right[p0:p1]]).sum(axis=1), dtype=np.float32).ravel()
        np.divide(inter, np.maximum(size1[left], size1[right]), out=inter)
        if f:
            total += inter
        else:
            total = inter
    defined = (nonempty[:, left] | nonempty[:, right]).sum(axis=0).astype(np.float32)
    return total / np.maximum(defined, np.float32(1))


def band_tile(job: _PairJob, t: int) -> tuple[np.ndarray, np.ndarray]:
    """A lower bound of the k-th best score of the reports of row tile i of order o (t = o · tiles + i):
    their k-th best among the reports of the tiles i - band … i + band, scored exactly (0 where fewer than
    k score above 0)."""
    index, tile, n, k = job.index, job.tile, job.index.n, job.k
    o, i = divmod(t, -(-n // tile))
    order = job.orders[o]
    rows = order[i * tile : (i + 1) * tile]
    c0 = max(0, (i - job.band) * tile)
    cols = order[c0 : (i + job.band + 1) * tile]
    s = index.exact_block(rows, cols)
    s[np.arange(len(rows)), np.arange(len(rows)) + i * tile - c0] = -np.inf  # not itself
    if k <= 0 or k >= s.shape[1]:
        return rows, np.zeros(len(rows), dtype=np.float32)
    kth = np.partition(s, s.shape[1] - k, axis=1)[:, s.shape[1] - k]
    return rows, np.maximum(kth, np.float32(0))


def bound_tile(job: _PairJob, task: tuple[int, int, int], theta: np.ndarray):
    """Row tile i against the column tiles j0 ≤ j < j1 (j ≥ i) of ``task``: the pairs whose bound reaches
    the threshold (``theta``, per report in order) of either report, scored exactly →
    ``(a, b, score, near-duplicate keys min·n + max, their scores, their count)``."""
    n, tile, bound, order = len(job.order), job.tile, job.bound, job.order
    i, j0, j1 = task
    r0, r1 = i * tile, min(n, (i + 1) * tile)
    rows_dense, rows_tail = bound.dense[r0:r1], bound.tail[r0:r1]
    theta_r = theta[r0:r1, None]
    buf = np.empty(tile * tile, dtype=np.float32)
    found_a: list[np.ndarray] = []
    found_b: list[np.ndarray] = []
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    waiting = 0
    for j in range(j0, j1):
        c0, c1 = j * tile, min(n, (j + 1) * tile)
        m, c = r1 - r0, c1 - c0
        s = buf[: m * c].reshape(m, c)
        if rows_dense.shape[1]:
            np.matmul(rows_dense, bound.dense[c0:c1].T, out=s)
        else:
            s.fill(0)
        if rows_tail.nnz:
            cols = bound.tiles_t[j]
            if cols.nnz:
                rare = rows_tail @ cols
                if rare.nnz:
                    pos = np.repeat(np.arange(m, dtype=np.int64) * c, np.diff(rare.indptr)) + rare.indices
                    s.reshape(-1)[pos] += rare.data
        mask = s >= theta_r
        mask |= s >= theta[None, c0:c1]
        r, cc = _nonzero2d(mask)
        if i == j:
            up = cc > r
            r, cc = r[up], cc[up]
        if len(r):
            found_a.append(r + r0)
            found_b.append(cc + c0)
            waiting += len(r)
        if waiting > PAIR_BLOCK or (j == j1 - 1 and waiting):
            a, b = np.concatenate(found_a), np.concatenate(found_b)
            found_a.clear()
            found_b.clear()
            waiting = 0
            v = exact_pair_scores(job.families, job.nonempty, a, b)  # rows in order: the pairs' reports are near in memory
            useful = (v >= theta[a]) | (v >= theta[b])  # under both thresholds: in neither top-k (nor a near-duplicate)
            kept.append((a[useful], b[useful], v[useful]))
    a, b, v = (np.concatenate(x) for x in zip(*kept)) if kept else (np.zeros(0, dtype=np.int64),) * 2 + (np.zeros(0, dtype=np.float32),)
    a, b = order[a], order[b]
    dup = v >= job.dup_threshold
    lo, hi = np.minimum(a[dup], b[dup]), np.maximum(a[dup], b[dup])
    return a, b, v, lo * n + hi, v[dup], int(dup.sum())


def _run_tiles(fn, job: _PairJob, tasks: Sequence, take, workers: int | None, client, waves: Sequence[int] = (),
               theta: Callable[[], np.ndarray] | None = None) -> None:
    """``take(fn(job, task), task)`` for every task: on ``workers`` threads, or on the workers of a Dask
    client. With ``theta`` the tasks get ``theta()`` as a third argument: threads the live array (it only
    rises as results come in), Dask a copy taken at the start of each wave (``waves``: where they start)."""
    if client is not None:
        from dask.distributed import as_completed

        shipped = client.scatter(job, broadcast=True, hash=False)
        bounds = [*sorted({0, *waves}), len(tasks)]
        for w0, w1 in zip(bounds, bounds[1:]):
            extra = [client.scatter(theta(), broadcast=True, hash=False)] if theta is not None else []
            futures = [client.submit(fn, shipped, task, *extra, pure=False) for task in tasks[w0:w1]]
            task_of = {f.key: task for f, task in zip(futures, tasks[w0:w1])}
            for future in as_completed(futures):
                take(future.result(), task_of[future.key])
                future.release()
        return
    n_workers = min(_workers(workers), len(tasks))
    extra = [theta()] if theta is not None else []
    with _one_blas_thread(n_workers > 1):
        if n_workers <= 1:
            for task in tasks:
                take(fn(job, task, *extra), task)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(n_workers) as pool:
                for task, result in zip(tasks, pool.map(lambda t: fn(job, t, *extra), tasks)):
                    take(result, task)


def top_k_neighbors(index: SimilarityIndex, k: int = 10, dup_threshold: float | None = 0.9, max_duplicates: int = 1_000_000,
                    memory_mb: float = 256, progress: Callable[[int], None] | None = None,
                    matrix: np.ndarray | None = None, workers: int | None = None, keep_zero: bool = False,
                    client=None) -> Neighbors:
    """Top-k most similar other reports of every report (self-pairs excluded; ties by position; only
    reports that share a feature, unless ``keep_zero``: a report without features has no neighbours),
    near-duplicate pairs with combined similarity ≥ ``dup_threshold``, and mean pairwise similarities.
    If ``matrix`` (n × n) is given, it is filled with the combined scores (diagonal included).

    Exact, without scoring every pair exactly. Reports are put in an order where those sharing rare
    features are near (:func:`locality_orders`); a band of tiles along the diagonal is scored exactly, which
    gives each report a lower bound τ of its k-th best score; every other pair gets a cheap upper bound
    (:class:`_Bound`, one product per tile), and only pairs whose bound reaches τ of either report (or the
    near-duplicate threshold) are scored exactly, with the kernel's float32 operations. Reports whose τ
    stays low are scored against every report. Row tiles run on ``workers`` threads (default: the CPUs) or
    on the workers of a ``dask.distributed`` ``client``: the result is the same.
    ``matrix``, ``keep_zero`` and a threshold ≤ 0 (every pair a near-duplicate) score all pairs."""
    import time

    if matrix is not None or keep_zero or (dup_threshold is not None and dup_threshold <= 0) or index.n < 2:
        return _all_pairs_top_k(index, k, dup_threshold, max_duplicates, memory_mb, progress, matrix, workers, keep_zero)
    started = time.perf_counter()
    n = index.n
    kk = min(k, n - 1)
    dup = float(np.float32(np.inf if dup_threshold is None else dup_threshold))
    tile = index.tile_size(memory_mb)
    n_tiles = -(-n // tile)
    orders = locality_orders(index)
    job = _PairJob(index, orders[0], tile, kk, dup, band=BAND)
    top = _TopK(n, kk)
    keys: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    n_dups = 0
    pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    live = None  # per report in order: the threshold of the second pass, raised as exact scores come in

    def offer_pending() -> None:  # in batches: one offer touches the top-k of every report it names
        if pending:
            a, b, v = (np.concatenate(x) for x in zip(*pending))
            pending.clear()
            top.offer(np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([v, v]))
            if live is not None and kk:  # a k-th best of distinct exact pairs is a lower bound too
                rows = np.unique(np.concatenate([a, b]))
                rows = rows[top.idx[rows, kk - 1] >= 0]
                pos = rank[rows]
                raised = np.minimum(top.val[rows, kk - 1], np.float32(dup)) - np.float32(BOUND_EPS)
                live[pos] = np.maximum(live[pos], np.where(pinned[pos], live[pos], raised))

    def take(result, task: tuple[int, int, int]) -> None:
        nonlocal n_dups
        a, b, v, dk, dv, nd = result
        pending.append((a, b, v))
        if sum(len(x[0]) for x in pending) > OFFER_BATCH:
            offer_pending()
        if nd:
            keys.append(dk)
            vals.append(dv)
            n_dups += nd
        if progress:
            i, j0, j1 = task
            progress((min(n, (i + 1) * tile) - i * tile) * (j1 - j0) / (n_tiles - i))

    tau = np.zeros(n, dtype=np.float32)

    def take_tau(result, _i: int) -> None:
        rows, kth = result
        tau[rows] = np.maximum(tau[rows], kth)

    job.orders = orders  # each order gives a lower bound; the larger one is kept
    _run_tiles(band_tile, job, range(len(orders) * n_tiles), take_tau, workers, client)
    order = orders[0]
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    empty = ~index.nonempty.any(axis=0)
    full = ~empty & (tau < FULL_ROW_BELOW)
    theta = np.where(full | empty, np.float32(dup), np.minimum(tau, np.float32(dup))) - np.float32(BOUND_EPS)
    job.index = job.orders = None  # the second pass needs the bound and the families in order, not the index
    job.bound = _Bound(index, order, tile)
    job.families = [(fam.matrix[order], fam.size1[order]) for fam in index.families.values()]
    job.nonempty = index.nonempty[:, order]
    live = theta.astype(np.float32)[order]
    pinned = (full | empty)[order]  # their threshold stays the near-duplicate one
    # tasks: a row tile against a run of column tiles; near the diagonal first (in this order the likely
    # neighbours are near), so that thresholds have risen by the time the far tiles are scored
    tasks, waves = [], []
    for w0 in range(0, n_tiles, WAVE):
        waves.append(len(tasks))
        tasks += [(i, i + w0, min(n_tiles, i + w0 + WAVE)) for i in range(n_tiles) if i + w0 < n_tiles]
    _run_tiles(bound_tile, job, tasks, take, workers, client, waves, theta=lambda: live)
    offer_pending()
    rows = np.flatnonzero(full)
    if len(rows) and kk:  # low τ: these reports are scored against every report, and their top-k starts afresh
        top.val[rows] = -np.inf
        top.idx[rows] = -1
        step = int(max(1, memory_mb * 2**20 // max(1, 64 * n)))  # rows × n scores and their masks: ~memory_mb / 4 at a time
        for s0 in range(0, len(rows), step):
            block = rows[s0 : s0 + step]
            s = index.combined_scores(block, memory_mb)
            s[np.arange(len(block)), block] = -np.inf
            cut = np.partition(s, n - kk, axis=1)[:, n - kk]
            r, c = _nonzero2d((s >= cut[:, None]) & (s > 0))
            top.offer(block[r], c, s[r, c])
    return _finish(index, top, k, keep_zero, keys, vals, n_dups, max_duplicates, started)


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
