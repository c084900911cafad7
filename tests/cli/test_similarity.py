import numpy as np
import pytest
from typer.testing import CliRunner

import radtool.cli.similarity as similarity_cmd
from radtool.cli import app
from tests.conftest import read_csv

from ._corpus import parse_folder

runner = CliRunner()


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    return parse_folder(tmp_path_factory.mktemp("similarity"))


_rows = read_csv


def test_top_k_neighbors_and_near_duplicates(parsed, tmp_path):
    result = runner.invoke(app, ["similarity", str(parsed), "--out", str(tmp_path), "--top-k", "2"])
    assert result.exit_code == 0, result.output
    rows = _rows(tmp_path / "neighbors.csv")
    assert list(rows[0]) == ["report_id", "neighbor_id", "rank", "similarity", "noun_phrases", "verbs", "entities"]
    assert len(rows) == 12 and all(r["report_id"] != r["neighbor_id"] for r in rows)
    r1 = [r for r in rows if r["report_id"] == "r1"]
    assert r1[0]["neighbor_id"] == "r3" and float(r1[0]["similarity"]) == pytest.approx(1.0)  # same text
    dups = _rows(tmp_path / "near_duplicates.csv")
    assert {(d["report_id"], d["duplicate_id"]) for d in dups} >= {("r1", "r3")}
    assert (tmp_path / "top1_similarity.png").stat().st_size > 0
    assert "combined" in result.output


def test_matrix_is_square_symmetric_with_unit_diagonal(parsed, tmp_path):
    result = runner.invoke(app, ["similarity", str(parsed), "--out", str(tmp_path), "--matrix", "--features", "np,entities", "--fuzzy", "90", "-q"])
    assert result.exit_code == 0, result.output
    rows = _rows(tmp_path / "matrix.csv")
    ids = [r["report_id"] for r in rows]
    assert ids == list(rows[0])[1:]
    for r in rows:
        assert float(r[r["report_id"]]) == pytest.approx(1.0)
        for other in ids:
            assert float(r[other]) == pytest.approx(float(rows[ids.index(other)][r["report_id"]]))
    assert not (tmp_path / "neighbors.csv").exists()


def test_matrix_refused_above_the_limit(parsed, tmp_path, monkeypatch):
    monkeypatch.setattr(similarity_cmd, "MATRIX_LIMIT", 3)
    result = runner.invoke(app, ["similarity", str(parsed), "--out", str(tmp_path), "--matrix"])
    assert result.exit_code == 2 and "--top-k" in result.output


@pytest.mark.parametrize("args,needle", [(["--features", "adjectives"], "adjectives"), (["--fuzzy", "250"], "--fuzzy"),
                                         (["--top-k", "0"], "--top-k")])
def test_bad_options_are_user_errors(parsed, tmp_path, args, needle):
    result = runner.invoke(app, ["similarity", str(parsed), "--out", str(tmp_path), *args])
    assert result.exit_code == 2 and needle in result.output


def test_missing_input_is_a_user_error(tmp_path):
    result = runner.invoke(app, ["similarity", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "not found" in result.output


def test_scores_are_formatted_by_table_as_one_at_a_time():
    """neighbors.csv's scores come from a table of 10,001 strings: the same text as f"{v:.4f}" for every
    float32, ties (x.xxxx5) and their float32 neighbours included; NaN is blank."""
    from radtool.cli.similarity import _fmt, _fmt_scores

    ties = ((np.arange(20001) + 0.5) / 20000).astype(np.float32)
    values = np.concatenate([np.random.default_rng(3).random(200_000).astype(np.float32), ties,
                             np.nextafter(ties, np.float32(0)), np.nextafter(ties, np.float32(1)),
                             (np.arange(1, 300) / np.arange(2, 301)).astype(np.float32), np.array([np.nan, 0, 1], np.float32)])
    assert _fmt_scores(values) == [_fmt(float(v)) for v in values]
    assert _fmt_scores(np.array([1.5, np.nan], np.float32)) == ["1.5000", ""]  # outside 0 … 1: one at a time


def test_neighbours_written_by_two_processes_are_the_bytes_of_one(parsed, tmp_path, monkeypatch):
    import json

    one, two = tmp_path / "one", tmp_path / "two"
    result = runner.invoke(app, ["similarity", str(parsed), "--out", str(one), "--top-k", "3", "-q"])
    assert result.exit_code == 0, result.output
    monkeypatch.setattr(similarity_cmd, "SPLIT_WRITE_FROM", 0)
    monkeypatch.setattr(similarity_cmd, "ROWS_PER_WRITE", 2)  # the second process from the 3rd report on (6 reports)
    real = similarity_cmd._second_half
    if real(100) is None:
        pytest.skip("one process writes: no fork here, or one CPU")
    halves = []
    monkeypatch.setattr(similarity_cmd, "_second_half", lambda n: halves.append(real(n)) or halves[-1])
    result = runner.invoke(app, ["similarity", str(parsed), "--out", str(two), "--top-k", "3", "-q"])
    assert result.exit_code == 0, result.output
    assert halves == [2]
    for name in ["neighbors.csv", "near_duplicates.csv"]:
        assert (two / name).read_bytes() == (one / name).read_bytes()
    summaries = [json.loads((d / "similarity.json").read_text(encoding="utf-8")) for d in (one, two)]
    for s in summaries:
        del s["seconds"]
    assert summaries[0] == summaries[1]  # the top-1 means too: the second half's top-1 scores came back
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())  # no part file left
