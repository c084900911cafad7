"""The on-disk feature store that ``similarity --top-k`` scores from: the same rows, ids, document
frequencies and results as the in-memory index, read back in any order and in small spans."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import radtool.analysis.featurestore as fs
import radtool.analysis.similarity as sim
from radtool.analysis.featurestore import FeatureStore
from radtool.analysis.similarity import SimilarityIndex, top_k_neighbors

from .test_similarity import _random_records, _tied_records
from .records import PRESENT, record


def _records():
    out = _random_records(70, seed=21) + _tied_records(30, seed=22)
    out += [record("émpty, \"quoted\" id"), record("only-verbs", verbs=["be", "see"]),
            record("plural", nps=["small pleural effusions", "np1"], entities=[("effusions", PRESENT)]),
            record("singular", nps=["small pleural effusion", "np2"], entities=[("effusion", PRESENT)])]
    for i, r in enumerate(out):
        r["id"] = f"{r['id']}-{i}"
    return out


@pytest.mark.parametrize("fuzzy,pread,isolated", [(None, True, False), (90, True, False), (None, False, False),
                                                   (None, True, True), (90, True, True)])
def test_store_holds_the_index_rows_ids_and_frequencies(tmp_path, monkeypatch, fuzzy, pread, isolated):
    monkeypatch.setattr(fs, "SPAN", 7)  # rows read back in many short spans
    monkeypatch.setattr(fs, "_PREAD", pread and fs._PREAD)  # False: seek and read, as where there is no pread
    records = _records()
    index = SimilarityIndex.from_records(records, fuzzy=fuzzy)
    with FeatureStore.build(iter(records), fuzzy=fuzzy, directory=tmp_path / "store", chunk=16, isolated=isolated) as store:
        if isolated and fs._CAN_FORK and threading.active_count() == 1:  # read in a child, which handed back the arrays
            assert (tmp_path / "store" / "arrays.npz").is_file()
        assert store.n == index.n and store.names == index.names
        assert store.vocab_sizes == index.vocab_sizes and store.merged == index.merged
        if fuzzy:
            assert sum(store.merged.values()) > 0
        order = np.random.default_rng(0).permutation(index.n)
        for got, want in zip(store.gather(order), index.gather(order)):
            assert (got != want).nnz == 0 and got.has_sorted_indices
        for got, want in zip(store.doc_freq(), index.doc_freq()):
            np.testing.assert_array_equal(got, want)
        for got, want in zip(store.sizes, index.sizes):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(store.nonempty, index.nonempty)
        assert store.ids_of(order) == [index.ids[i] for i in order]
        assert store.ids_of([0, 0, index.n - 1]) == [index.ids[0], index.ids[0], index.ids[-1]]
        assert sim.mean_pairwise(store) == index.mean_pairwise()
    assert (tmp_path / "store").exists()  # a folder it was given is the caller's


@pytest.mark.parametrize("full_row_below", [0.15, 1.1])  # 1.1: every report is scored against every block
def test_store_top_k_is_the_index_top_k_and_cleans_up(monkeypatch, full_row_below):
    monkeypatch.setattr(sim, "WAVE", 2)
    monkeypatch.setattr(sim, "EXACT_BATCH", 30)
    monkeypatch.setattr(sim, "CANDIDATE_BATCH", 50)
    monkeypatch.setattr(sim, "FULL_ROW_BELOW", full_row_below)
    records = _records()
    index = SimilarityIndex.from_records(records)
    store = FeatureStore.build(records)
    folder = store.directory
    try:
        for k, dup, memory_mb in [(5, 0.9, 0.002), (10, 0.5, 0.001), (3, None, 256), (len(records) + 3, 0.9, 0.002)]:
            want = top_k_neighbors(index, k=k, dup_threshold=dup, memory_mb=memory_mb, workers=2)
            got = top_k_neighbors(store, k=k, dup_threshold=dup, memory_mb=memory_mb, workers=2)
            assert got._file is not None and want._file is None  # the store's tables went to disk, in parts
            np.testing.assert_array_equal(got.index, want.index)
            np.testing.assert_array_equal(got.combined, want.combined)
            for r0, r1 in [(0, 1), (3, 40), (0, index.n)]:
                for a, b in zip(got.rows(r0, r1), want.rows(r0, r1)):
                    np.testing.assert_array_equal(a, b)
            got.close()
            assert got.duplicates == want.duplicates and got.duplicate_pairs == want.duplicate_pairs
            for f in want.per_family:
                np.testing.assert_array_equal(got.per_family[f], want.per_family[f])
            assert got.mean_pairwise == want.mean_pairwise
        assert any(p.name.startswith("block") for p in (folder / "blocks").iterdir())  # the second pass's blocks went to disk
        everything = top_k_neighbors(store, k=4, dup_threshold=0.9, keep_zero=True)  # scores every pair: the store, in memory
        np.testing.assert_array_equal(everything.index, top_k_neighbors(index, k=4, dup_threshold=0.9, keep_zero=True).index)
    finally:
        store.close()
    assert not folder.exists()


@pytest.mark.parametrize("isolated", [False, True])
def test_a_failed_build_leaves_no_files(tmp_path, monkeypatch, isolated):
    from radtool.errors import UserError

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))

    def broken():
        yield from _records()[:5]
        raise UserError("graphs.jsonl: line 6 is not JSON")

    with pytest.raises(UserError, match="line 6 is not JSON"):  # raised in the reading child, raised again here
        FeatureStore.build(broken(), isolated=isolated)
    assert list(tmp_path.iterdir()) == []


def test_release_free_memory_is_safe_to_call_often():
    for _ in range(3):
        fs.release_free_memory()
    fs.release_free_memory(every=3600)  # rate-limited: returns at once
