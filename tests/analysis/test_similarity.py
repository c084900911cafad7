import math
import random

import numpy as np
import scipy.sparse as sp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radtool.analysis.features import FAMILIES, feature_sets
from radtool.analysis.similarity import SimilarityIndex, fuzzy_merge, overlap_similarity, similarity_matrix, top_k_neighbors

from .records import ABSENT, ANATOMY, PRESENT, record

sets_ = st.sets(st.sampled_from("abcdefgh"), max_size=8)


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ({"x", "y"}, {"x", "y"}, 1.0),  # identity
        ({"x"}, {"y"}, 0.0),  # disjoint
        ({"x", "y", "z"}, {"x"}, 1 / 3),
        ({"x", "y"}, {"y", "z", "w", "v"}, 1 / 4),
        ({"x", "y", "z", "w"}, {"x", "y", "z", "v"}, 3 / 4),
    ],
)
def test_overlap_similarity_hand_computed(a, b, expected):
    assert overlap_similarity(a, b) == pytest.approx(expected)


def test_overlap_similarity_of_two_empty_sets_is_undefined():
    assert math.isnan(overlap_similarity(set(), set()))
    assert overlap_similarity(set(), {"x"}) == 0.0


@given(sets_, sets_)
def test_overlap_similarity_symmetric_and_bounded(a, b):
    s = overlap_similarity(a, b)
    if a or b:
        assert 0.0 <= s <= 1.0
        assert s == overlap_similarity(b, a)
        assert (s == 1.0) == (a == b)


def _random_records(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    nps = [f"np{i}" for i in range(12)]
    verbs = ["be", "see", "note", "appear"]
    ents = [("effusion", ABSENT), ("effusion", PRESENT), ("lungs", ANATOMY), ("pneumothorax", ABSENT), ("heart", ANATOMY)]
    out = []
    for i in range(n):
        out.append(record(f"r{i}", nps=rng.sample(nps, rng.randint(0, 5)), verbs=rng.sample(verbs, rng.randint(0, 3)),
                          entities=rng.sample(ents, rng.randint(0, 4))))
    out.append(dict(out[3], id="copy-of-r3"))  # an identical report
    return out


def _brute(records, families=FAMILIES):
    n = len(records)
    sets = {f: [feature_sets(r, f) for r in records] for f in families}
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            vals = [overlap_similarity(sets[f][i], sets[f][j]) for f in families]
            vals = [v for v in vals if not math.isnan(v)]
            out[i, j] = sum(vals) / len(vals) if vals else 0.0
    return out


@pytest.mark.parametrize("families", [FAMILIES, ("verbs",), ("noun_phrases", "entities")])
def test_sparse_matrix_equals_brute_force(families):
    records = _random_records(40)
    index = SimilarityIndex.from_records(records, families)
    fast = similarity_matrix(index, memory_mb=0.001)  # tiny budget: many row blocks
    assert index.block_size(0.001) < len(records)
    np.testing.assert_allclose(fast, _brute(records, families), atol=1e-6)


def test_dense_and_sparse_columns_agree(monkeypatch):
    import radtool.analysis.similarity as sim

    records = _random_records(30, seed=3)
    monkeypatch.setattr(sim, "DENSE_SHARE", 0.0)  # every frequent column dense
    dense = similarity_matrix(SimilarityIndex.from_records(records))
    monkeypatch.setattr(sim, "MAX_DENSE_COLUMNS", 0)  # everything sparse
    sparse = similarity_matrix(SimilarityIndex.from_records(records))
    np.testing.assert_allclose(dense, sparse, atol=1e-6)


def test_top_k_excludes_self_and_matches_brute_force():
    records = _random_records(25, seed=1)
    index = SimilarityIndex.from_records(records)
    result = top_k_neighbors(index, k=5, dup_threshold=0.99, memory_mb=0.001, keep_zero=True)
    brute = _brute(records)
    np.fill_diagonal(brute, -np.inf)
    for i in range(len(records)):
        assert i not in result.index[i].tolist()
        np.testing.assert_allclose(result.combined[i], np.sort(brute[i])[::-1][:5], atol=1e-6)
    copy = len(records) - 1
    assert result.index[copy, 0] == 3 and result.combined[copy, 0] == pytest.approx(1.0)
    assert (3, copy, pytest.approx(1.0)) in [(i, j, s) for i, j, s in result.duplicates]


def test_top_k_larger_than_corpus_pads_and_empty_reports_get_no_neighbours():
    records = [record("a", nps=["x"]), record("b", nps=["x", "y"]), record("c")]
    result = top_k_neighbors(SimilarityIndex.from_records(records), k=10)
    assert (result.index[:2, :1] >= 0).all() and (result.index[:, 1:] == -1).all()
    assert result.index[0, 0] == 1 and result.combined[0, 0] == pytest.approx(0.5)
    assert (result.index[2] == -1).all() and np.isnan(result.combined[2]).all()  # no features: no made-up neighbours
    kept = top_k_neighbors(SimilarityIndex.from_records(records), k=10, keep_zero=True)
    assert (kept.index[:, :2] >= 0).all() and kept.combined[2, 0] == 0.0  # the old padding, on request


def test_fuzzy_merge_joins_plurals_and_keeps_labels_apart():
    from collections import Counter

    counts = Counter({"pleural effusion": 10, "pleural effusions": 3, "effusion": 5, "effusions": 1, "pneumothorax": 4})
    mapping = fuzzy_merge(counts, 90)
    assert mapping["pleural effusions"] == "pleural effusion"
    assert mapping["effusions"] == "effusion"
    assert mapping["pneumothorax"] == "pneumothorax"
    records = [record("a", entities=[("effusions", ABSENT)]), record("b", entities=[("effusion", ABSENT)]),
               record("c", entities=[("effusion", PRESENT)])]
    index = SimilarityIndex.from_records(records, ("entities",), fuzzy=90)
    m = similarity_matrix(index)
    assert m[0, 1] == pytest.approx(1.0) and m[0, 2] == 0.0


@pytest.mark.parametrize("memory_mb,workers", [(0.001, 1), (0.002, 2), (256, 2)])
def test_fast_tiles_match_reference_and_brute_force(memory_mb, workers):
    records = _random_records(41, seed=5)  # 42 reports: tiles of 5-8 split them unevenly
    index = SimilarityIndex.from_records(records)
    ref, _per = index.scores(np.arange(index.n))
    np.testing.assert_array_equal(index.combined_scores(np.arange(index.n), memory_mb=memory_mb), ref)  # same float32 bits
    brute = _brute(records)
    np.fill_diagonal(brute, -np.inf)
    result = top_k_neighbors(index, k=7, dup_threshold=0.8, memory_mb=memory_mb, workers=workers)
    np.testing.assert_allclose(ref, np.where(np.isinf(brute), 1.0, brute), atol=1e-6)
    np.fill_diagonal(ref, -np.inf)
    for i in range(index.n):
        # exact order over the float32 scores: best first, ties by position
        expected = [j for j in sorted(range(index.n), key=lambda j: (-ref[i, j], j))[:7] if ref[i, j] > 0]
        assert result.index[i].tolist() == expected + [-1] * (7 - len(expected))
    pairs = sorted((i, j) for i in range(index.n) for j in range(i + 1, index.n) if ref[i, j] >= 0.8)
    assert [(i, j) for i, j, _s in result.duplicates] == pairs and result.duplicate_pairs == len(pairs)
    sets = {f: [feature_sets(r, f) for r in records] for f in FAMILIES}
    for f in FAMILIES:
        vals = [overlap_similarity(sets[f][i], sets[f][j]) for i in range(index.n) for j in range(i + 1, index.n)]
        vals = [v for v in vals if not math.isnan(v)]
        assert result.mean_pairwise[f] == pytest.approx(sum(vals) / len(vals), abs=1e-9)
        i, j = 0, result.index[0, 0]
        expected = overlap_similarity(sets[f][i], sets[f][j])
        assert (math.isnan(expected) and math.isnan(result.per_family[f][0, 0])) or result.per_family[f][0, 0] == pytest.approx(expected)
    upper = brute[np.triu_indices(index.n, 1)]
    assert result.mean_pairwise["combined"] == pytest.approx(upper.mean(), abs=1e-9)


def test_fast_kernel_with_empty_families_and_matrix():
    records = [record("a"), record("b"), record("c", nps=["x"]), record("d", verbs=["be"]), record("e", nps=["x"], verbs=["be"])]
    index = SimilarityIndex.from_records(records)
    matrix = np.zeros((5, 5), dtype=np.float32)
    result = top_k_neighbors(index, k=2, memory_mb=0.0001, matrix=matrix, keep_zero=True)
    np.testing.assert_allclose(matrix, _brute(records), atol=1e-6)
    assert result.index[0].tolist() == [1, 2]  # all scores 0: ties by position, never itself
    assert top_k_neighbors(index, k=2).index[0].tolist() == [-1, -1]  # by default: no neighbour that shares nothing


@pytest.mark.parametrize("fuzzy", [None, 90])
def test_index_from_a_stream_equals_index_from_a_list(fuzzy):
    records = _random_records(30, seed=7)
    listed = SimilarityIndex.from_records(records, fuzzy=fuzzy)
    streamed = SimilarityIndex.from_records(iter(records), fuzzy=fuzzy)  # read once, never held
    assert streamed.ids == listed.ids
    np.testing.assert_array_equal(similarity_matrix(streamed), similarity_matrix(listed))
    np.testing.assert_allclose(similarity_matrix(streamed), _brute(records), atol=1e-6)


def test_dense_column_budget_only_moves_columns_to_the_sparse_product():
    records = _random_records(60, seed=8)
    full = SimilarityIndex.from_records(records)
    tight = SimilarityIndex.from_records(records, memory_mb=0)  # no dense columns at all
    assert all(f.dense.shape[1] == 0 for f in tight.families.values()) and any(f.dense.shape[1] for f in full.families.values())
    np.testing.assert_array_equal(similarity_matrix(tight), similarity_matrix(full))


# ---- the pruned top-k (band lower bounds, one-product upper bound, exact scores for the pairs that can matter)


def _same_neighbors(a, b):
    assert a.index.tolist() == b.index.tolist()
    np.testing.assert_array_equal(a.combined, b.combined)  # same float32 bits (NaN where no neighbour)
    for f in b.per_family:
        np.testing.assert_array_equal(a.per_family[f], b.per_family[f])
    assert a.duplicates == b.duplicates and a.duplicate_pairs == b.duplicate_pairs
    assert a.mean_pairwise == b.mean_pairwise


def _tied_records(n: int, seed: int) -> list[dict]:
    """Reports with many equal scores: copies and near-copies, so that ties at the k-th place are common."""
    rng = random.Random(seed)
    base = _random_records(12, seed=seed)
    out = []
    for i in range(n):
        r = dict(rng.choice(base), id=f"t{i}")
        if rng.random() < 0.3:
            r = dict(r, noun_phrases=r["noun_phrases"][:-1])
        out.append(r)
    out[5] = record("empty-5")  # no features: no neighbours
    return out


@pytest.mark.parametrize("full_row_below", [0.0, 0.15, 2.0])  # no report / some / every report scored against all
@pytest.mark.parametrize("band", [0, 2])
@pytest.mark.parametrize("make", [_random_records, _tied_records])
def test_pruned_top_k_equals_all_pairs_byte_for_byte(monkeypatch, full_row_below, band, make):
    import radtool.analysis.similarity as sim

    monkeypatch.setattr(sim, "FULL_ROW_BELOW", full_row_below)
    monkeypatch.setattr(sim, "BAND", band)
    monkeypatch.setattr(sim, "OFFER_BATCH", 50)  # many small offers: thresholds rise while tiles run
    monkeypatch.setattr(sim, "WAVE", 2)  # blocks of 2 tiles,
    monkeypatch.setattr(sim, "EXACT_BATCH", 40)  # exact scores of a few pairs at a time,
    monkeypatch.setattr(sim, "CANDIDATE_BATCH", 60)  # and candidates refined and scored a few at a time
    monkeypatch.setattr(sim, "OFFER_ROWS", 5)  # the top-k tables merged a few reports at a time
    for seed, n, k, dup, memory_mb, workers in [(0, 90, 5, 0.9, 0.001, 1), (1, 130, 10, 0.5, 0.002, 2), (2, 70, 3, None, 0.0005, 2),
                                                (3, 60, 10, 1.0, 256, 1)]:
        records = make(n, seed)
        index = SimilarityIndex.from_records(records)
        assert -(-index.n // index.tile_size(memory_mb)) > 2 * band + 1 or memory_mb == 256  # tiles past the band
        pruned = top_k_neighbors(index, k=k, dup_threshold=dup, memory_mb=memory_mb, workers=workers)
        _same_neighbors(pruned, sim._all_pairs_top_k(index, k=k, dup_threshold=dup, memory_mb=memory_mb, workers=1))


def test_pruned_top_k_matches_brute_force_order_with_ties():
    records = _tied_records(80, seed=4)
    index = SimilarityIndex.from_records(records)
    ref, _per = index.scores(np.arange(index.n))
    np.fill_diagonal(ref, -np.inf)
    result = top_k_neighbors(index, k=6, dup_threshold=0.9, memory_mb=0.001, workers=2)
    ties = 0
    for i in range(index.n):
        expected = [j for j in sorted(range(index.n), key=lambda j: (-ref[i, j], j))[:6] if ref[i, j] > 0]
        assert result.index[i].tolist() == expected + [-1] * (6 - len(expected))
        ties += len(expected) == 6 and (ref[i] == ref[i, expected[-1]]).sum() > 1
    assert ties > 20  # the k-th place is shared in many rows: the smaller positions win
    assert (result.index[5] == -1).all() and np.isnan(result.combined[5]).all()  # the empty report
    pairs = sorted((i, j) for i in range(index.n) for j in range(i + 1, index.n) if ref[i, j] >= 0.9)
    assert [(i, j) for i, j, _s in result.duplicates] == pairs and result.duplicate_pairs == len(pairs)


def test_exact_pair_scores_are_the_kernel_bits_and_the_bound_bounds_them():
    from radtool.analysis.similarity import _Blocks, _refined_bound, exact_pair_scores

    records = _random_records(50, seed=9) + [record("only-verbs", verbs=["be"]), record("none")]
    index = SimilarityIndex.from_records(records)
    ref, _per = index.scores(np.arange(index.n))
    left, right = np.divmod(np.arange(index.n * index.n), index.n)
    families = [(fam.matrix, fam.size1) for fam in index.families.values()]
    np.testing.assert_array_equal(exact_pair_scores(families, index.nonempty, left, right).reshape(index.n, index.n), ref)
    np.testing.assert_array_equal(index.exact_block(np.arange(index.n)[::-1], np.arange(index.n)), ref[::-1])
    order = np.random.default_rng(0).permutation(index.n)
    for memory_mb in (256, 0):  # with dense columns, and with none
        blocks = _Blocks(index, order, 16, 8, memory_mb, None)
        parts = [blocks[b] for b in range(blocks.count)]
        assert blocks.count == 4 and (memory_mb == 0) == (blocks.dense_width == 0)
        # the bits of the exact scores between two blocks (each block's own rows) are the kernel's
        a, b = parts[0], parts[2]
        la, rb = np.divmod(np.arange(len(a.positions) * len(b.positions)), len(b.positions))
        got = exact_pair_scores(a.families, a.nonempty, la, rb, b.families, b.nonempty)
        np.testing.assert_array_equal(got.reshape(len(a.positions), -1), ref[np.ix_(a.positions, b.positions)])
        y = sp.vstack([sp.hstack([sp.csr_matrix(p.dense), p.tail]) for p in parts]).toarray()
        upper = np.empty_like(ref)
        upper[np.ix_(order, order)] = y @ y.T
        other = ~np.eye(index.n, dtype=bool)  # (a report's own features of one report are left out of its vector)
        assert (upper >= ref - 1e-6)[other].all()
        assert (np.abs(upper - ref)[(ref == 1) & other] < 1e-5).all()  # tight for identical sets
        # the refined bound (set sizes) bounds the scores too, and is tighter where sizes differ
        for a, b in [(parts[0], parts[2]), (parts[1], parts[1])]:
            la, rb = np.divmod(np.arange(len(a.positions) * len(b.positions)), len(b.positions))
            pa, pb = a.positions[la], b.positions[rb]
            keep = pa != pb
            la, rb, pa, pb = la[keep], rb[keep], pa[keep], pb[keep]
            refined = _refined_bound(a, b, la, rb, upper[pa, pb].astype(np.float32))
            assert (refined >= ref[pa, pb]).all()
            assert (refined <= upper[pa, pb] + 3e-4).all() and (refined < upper[pa, pb] - 0.05).mean() > 0.2


@pytest.mark.parametrize("fast", [True, False])
def test_add_product_adds_the_sparse_product_of_each_tile(monkeypatch, fast):
    import radtool.analysis.similarity as sim

    rng = np.random.default_rng(3)
    tail = sp.random(40, 300, density=0.05, format="csr", dtype=np.float32, random_state=rng)
    tail.indptr, tail.indices = tail.indptr.astype(np.int32), tail.indices.astype(np.int32)
    tail.data[:] = rng.random(tail.nnz, dtype=np.float32)
    right = sp.random(12, 300, density=0.05, format="csr", dtype=np.float32, random_state=rng)
    cols = right.T.tocsr()
    cols.indptr, cols.indices = cols.indptr.astype(np.int32), cols.indices.astype(np.int32)
    if fast:
        assert sim._scipy_kernels() is not None  # this scipy's C routines pass the check
    else:
        monkeypatch.setattr(sim, "_KERNELS", False)  # the public operators
    for r0, r1 in [(0, 16), (16, 32), (32, 40), (5, 6), (0, 40)]:  # rows past the first: their pointers do not start at 0
        base = rng.random((r1 - r0, 12), dtype=np.float32)
        got = base.copy()
        sim.add_product(got, tail.indptr[r0 : r1 + 1], tail.indices, tail.data, cols)
        want = base.copy()
        want += (tail[r0:r1] @ cols).toarray()  # each entry: one float32 addition
        np.testing.assert_array_equal(got, want)
        assert (got != base).any()


@pytest.mark.parametrize("per_row", [3, 200])  # few candidates a report (merged in a table) / many (sorted as a list)
def test_top_k_tables_keep_the_best_with_ties_by_position(per_row):
    from radtool.analysis.similarity import _TopK

    rng = np.random.default_rng(per_row)
    n, k = 30, 4
    top = _TopK(n, k)
    seen: dict[int, list[tuple[float, int]]] = {i: [] for i in range(n)}
    columns = rng.permutation(20000)
    used = 0
    for _ in range(6):
        rows = np.repeat(rng.choice(n, 12, replace=False), per_row)
        cols = columns[used : used + len(rows)]  # each (report, neighbour) offered once
        used += len(rows)
        vals = rng.choice(np.array([-1.5, -0.25, -0.0, 0.0, 0.125, 0.5, 0.5, 0.75, 1.0, 3.0], dtype=np.float32), len(rows))
        full, kth = top.offer(rows, cols, vals)
        for r, c, v in zip(rows.tolist(), cols.tolist(), vals.tolist()):
            seen[r].append((v, c))
        for i in range(n):
            best = sorted(seen[i], key=lambda x: (-x[0], x[1]))[:k]  # higher first; ties: smaller position
            assert top.idx[i].tolist() == [c for _v, c in best] + [-1] * (k - len(best))
            assert top.val[i].tolist() == [v for v, _c in best] + [-np.inf] * (k - len(best))
        assert sorted(full.tolist()) == sorted(set(rows.tolist()) & {i for i in range(n) if len(seen[i]) >= k})
        np.testing.assert_array_equal(kth, top.val[full, k - 1])
