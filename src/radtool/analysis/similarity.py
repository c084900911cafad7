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

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .features import FAMILIES, feature_sets

DENSE_SHARE = 0.01  # a feature in more than this share of reports goes to the dense product
MAX_DENSE_COLUMNS = 1024


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


def incidence(sets: Sequence[set[str]]) -> tuple[sp.csr_matrix, list[str]]:
    vocab: dict[str, int] = {}
    indptr = [0]
    indices: list[int] = []
    for s in sets:
        indices.extend(vocab.setdefault(f, len(vocab)) for f in s)
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.float32)
    matrix = sp.csr_matrix((data, np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
                           shape=(len(sets), len(vocab)))
    matrix.sort_indices()
    return matrix, list(vocab)


def _split(fam: _Family) -> None:
    n = fam.matrix.shape[0]
    df = np.asarray(fam.matrix.sum(axis=0)).ravel()
    order = np.argsort(-df, kind="stable")
    frequent = order[df[order] > max(DENSE_SHARE * n, 8)][:MAX_DENSE_COLUMNS]
    rare = np.setdiff1d(np.arange(fam.matrix.shape[1]), frequent)
    csc = fam.matrix.tocsc()
    fam.dense = np.ascontiguousarray(csc[:, frequent].toarray(), dtype=np.float32)
    fam.sparse = csc[:, rare].tocsr()
    fam.sparse_t = fam.sparse.T.tocsr()


class SimilarityIndex:
    """Binary incidence matrices of a corpus for chosen families; scores any rows against all reports."""

    def __init__(self, ids: Sequence[str], sets: dict[str, Sequence[set[str]]], fuzzy: float | None = None) -> None:
        self.ids = list(ids)
        self.n = len(self.ids)
        self.families: dict[str, _Family] = {}
        for name, family_sets in sets.items():
            merged = 0
            if fuzzy:
                counts = Counter(f for s in family_sets for f in s)
                if name == "entities":
                    mapping = fuzzy_merge(counts, fuzzy, group=lambda k: k.rpartition(" [")[2], text=lambda k: k.rpartition(" [")[0])
                else:
                    mapping = fuzzy_merge(counts, fuzzy)
                merged = sum(1 for k, v in mapping.items() if k != v)
                family_sets = [{mapping[f] for f in s} for s in family_sets]
            matrix, vocab = incidence(family_sets)
            fam = _Family(name, vocab, matrix, np.asarray(matrix.sum(axis=1), dtype=np.float32).ravel(), merged=merged)
            _split(fam)
            self.families[name] = fam

    @classmethod
    def from_records(cls, records: Sequence[dict], families: Sequence[str] = FAMILIES, fuzzy: float | None = None) -> SimilarityIndex:
        return cls([r["id"] for r in records], {f: [feature_sets(r, f) for r in records] for f in families}, fuzzy=fuzzy)

    def block_size(self, memory_mb: float = 256) -> int:
        per_row = self.n * 4 * (len(self.families) + 3)  # float32: each family + combined + counts + scratch
        return int(max(1, min(self.n, memory_mb * 2**20 // max(per_row, 1))))

    def intersections(self, name: str, rows: np.ndarray) -> np.ndarray:
        fam = self.families[name]
        out = fam.dense[rows] @ fam.dense.T if fam.dense.shape[1] else np.zeros((len(rows), self.n), dtype=np.float32)
        if fam.sparse.nnz:
            rare = (fam.sparse[rows] @ fam.sparse_t).tocoo()
            _add_coo(out, rare)
        return out

    def scores(self, rows: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``(combined, {family: scores})`` of ``rows`` against every report, float32 arrays len(rows) × n;
        family scores are NaN where both reports lack the family."""
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

    def blocks(self, rows: np.ndarray | None = None, memory_mb: float = 256) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]]:
        rows = np.arange(self.n) if rows is None else np.asarray(rows, dtype=np.int64)
        size = self.block_size(memory_mb)
        for start in range(0, len(rows), size):
            block = rows[start : start + size]
            combined, per = self.scores(block)
            yield block, combined, per


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


def top_k_neighbors(index: SimilarityIndex, k: int = 10, dup_threshold: float | None = 0.9, max_duplicates: int = 1_000_000,
                    memory_mb: float = 256, progress: Callable[[int], None] | None = None,
                    matrix: np.ndarray | None = None) -> Neighbors:
    """Top-k most similar other reports of every report (self-pairs excluded), near-duplicate pairs with
    combined similarity ≥ ``dup_threshold``, and mean pairwise similarities. If ``matrix`` (n × n) is
    given, it is filled with the combined scores (diagonal included)."""
    import time

    started = time.perf_counter()
    n = index.n
    kk = min(k, max(n - 1, 0))
    nbr = np.full((n, k), -1, dtype=np.int64)
    comb = np.full((n, k), np.nan, dtype=np.float32)
    fams = {f: np.full((n, k), np.nan, dtype=np.float32) for f in index.families}
    sums = {f: 0.0 for f in [*index.families, "combined"]}
    counts = {f: 0 for f in sums}
    dups: list[tuple[int, int, float]] = []
    n_dups = 0
    for rows, combined, per in index.blocks(memory_mb=memory_mb):
        local = np.arange(len(rows))
        if matrix is not None:
            matrix[rows] = combined
        # mean over distinct pairs: upper triangle only (j > i)
        upper = np.arange(n)[None, :] > rows[:, None]
        for f, s in per.items():
            ok = upper & ~np.isnan(s)
            sums[f] += float(s[ok].sum(dtype=np.float64))
            counts[f] += int(ok.sum())
        sums["combined"] += float(combined[upper].sum(dtype=np.float64))
        counts["combined"] += int(upper.sum())
        if dup_threshold is not None:
            r, c = np.nonzero((combined >= dup_threshold) & upper)
            n_dups += len(r)
            room = max_duplicates - len(dups)
            if room > 0:
                dups.extend(zip(rows[r[:room]].tolist(), c[:room].tolist(), combined[r[:room], c[:room]].tolist()))
        combined[local, rows] = -np.inf  # no self-pairs
        top = _top_k(combined, kk)
        nbr[rows, :kk] = top
        comb[rows, :kk] = np.take_along_axis(combined, top, axis=1)
        for f, s in per.items():
            fams[f][rows, :kk] = np.take_along_axis(s, top, axis=1)
        if progress:
            progress(len(rows))
    mean = {f: (sums[f] / counts[f] if counts[f] else float("nan")) for f in sums}
    return Neighbors(index.ids, nbr, comb, fams, dups, n_dups, mean, time.perf_counter() - started)


def similarity_matrix(index: SimilarityIndex, memory_mb: float = 256) -> np.ndarray:
    out = np.zeros((index.n, index.n), dtype=np.float32)
    for rows, combined, _per in index.blocks(memory_mb=memory_mb):
        out[rows] = combined
    return out
