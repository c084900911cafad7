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
