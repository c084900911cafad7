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


def _graphs(path, records, blank_line: bool = True, final_newline: bool = True):
    import json

    lines = [json.dumps(r) for r in records]
    if blank_line:
        lines.insert(len(lines) // 3, "")
    path.write_text("\n".join(lines) + ("\n" if final_newline else ""), encoding="utf-8")
    return path


@pytest.mark.parametrize("blank_line,final_newline", [(True, True), (False, False)])
def test_the_parts_of_a_graphs_file_in_turn_are_its_records(tmp_path, blank_line, final_newline):
    from radtool.analysis.corpus import iter_records, iter_records_part

    graphs = _graphs(tmp_path / "graphs.jsonl", _records(), blank_line, final_newline)
    whole = list(iter_records(graphs))
    for parts in (1, 2, 3, 7, 200):  # 200: more parts than lines, most of them empty
        got = [r for i in range(parts) for r in iter_records_part(graphs, i, parts)]
        assert got == whole


def test_a_bad_line_in_a_part_names_its_line_in_the_file(tmp_path):
    from radtool.analysis.corpus import iter_records_part
    from radtool.errors import UserError

    graphs = _graphs(tmp_path / "graphs.jsonl", _records(), blank_line=False)
    lines = graphs.read_text(encoding="utf-8").splitlines()
    lines[80] = "{not json"
    graphs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match="line 81 is not JSON"):
        for i in range(3):
            list(iter_records_part(graphs, i, 3))


@pytest.mark.skipif(not fs._CAN_FORK, reason="fork: Linux")
@pytest.mark.parametrize("readers,fuzzy", [(2, None), (3, None), (2, 90)])
def test_a_store_read_in_parts_has_the_files_of_one_reader(tmp_path, readers, fuzzy):
    from radtool.analysis.corpus import iter_records, iter_records_part

    graphs = _graphs(tmp_path / "graphs.jsonl", _records())
    one = FeatureStore.build(iter_records(graphs), fuzzy=fuzzy, directory=tmp_path / "one", chunk=16)
    split = lambda part, parts: iter_records_part(graphs, part, parts)  # noqa: E731
    assert threading.active_count() == 1  # else the build would not fork, and this would test nothing
    parts = FeatureStore.build(iter_records(graphs), fuzzy=fuzzy, directory=tmp_path / "parts", chunk=16, isolated=True,
                               split=split, readers=readers)
    with one, parts:
        assert sorted(p.name for p in (tmp_path / "parts").iterdir() if not p.name.startswith("arrays")) == \
            sorted(p.name for p in (tmp_path / "one").iterdir())  # the parts' folders are gone
        for name in [p.name for p in (tmp_path / "one").iterdir()]:
            assert (tmp_path / "parts" / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name
        assert parts.n == one.n and parts.widths == one.widths and parts.merged == one.merged
        for a, b in [*zip(parts.indptr, one.indptr), *zip(parts.doc_freq(), one.doc_freq()), (parts._id_offsets, one._id_offsets),
                     (parts.nonempty, one.nonempty)]:
            np.testing.assert_array_equal(a, b)
        assert parts.ids_of(range(parts.n)) == one.ids_of(range(one.n))


@pytest.mark.skipif(not fs._CAN_FORK, reason="fork: Linux")
def test_a_bad_line_in_a_later_part_fails_the_build_and_leaves_no_files(tmp_path, monkeypatch):
    from radtool.analysis.corpus import iter_records, iter_records_part
    from radtool.errors import UserError

    graphs = _graphs(tmp_path / "graphs.jsonl", _records(), blank_line=False)
    lines = graphs.read_text(encoding="utf-8").splitlines()
    lines[95] = "[1, 2]"
    graphs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    with pytest.raises(UserError, match="line 96 is not a radtool report record"):  # raised by the second reader
        FeatureStore.build(iter_records(graphs), isolated=True, split=lambda i, n: iter_records_part(graphs, i, n), readers=2)
    assert list(temp.iterdir()) == []
