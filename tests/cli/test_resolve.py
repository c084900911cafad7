import csv

import pytest
from typer.testing import CliRunner

from radtool.cli import app
from tests.conftest import read_csv

from ._corpus import parse_folder

runner = CliRunner()


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    return parse_folder(tmp_path_factory.mktemp("resolve"))


_rows = read_csv


@pytest.mark.parametrize("policy,value", [("keep", "-1"), ("u_ones", "1"), ("u-zeros", "0")])
def test_fixed_policies(parsed, tmp_path, policy, value):
    result = runner.invoke(app, ["resolve", str(parsed), "--out", str(tmp_path), "--policy", policy, "-q"])
    assert result.exit_code == 0, result.output
    before = {r["report_id"]: r for r in _rows(parsed / "labels.csv")}
    after = {r["report_id"]: r for r in _rows(tmp_path / "labels.csv")}
    changed = [(i, c) for i, r in before.items() for c, v in r.items() if v == "-1"]
    assert changed, "the tiny corpus should have an uncertain label"
    assert all(after[i][c] == value for i, c in changed)
    assert len(_rows(tmp_path / "provenance.csv")) == len(changed)


def test_similarity_policy_records_provenance_and_scores_against_gold(parsed, tmp_path):
    gold = tmp_path / "gold.csv"
    with gold.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["report_id", "Pneumonia", "Effusion", "normal"])
        w.writerows([["r1", 0, 0, 1], ["r2", 1, 1, 0], ["r3", 0, 0, 1], ["r4", 1, 1, 0], ["r5", 1, 1, 0], ["r6", 0, 0, 1]])
    result = runner.invoke(app, ["resolve", str(parsed), "--out", str(tmp_path / "out"), "--k", "3", "--gold", str(gold)])
    assert result.exit_code == 0, result.output
    prov = _rows(tmp_path / "out" / "provenance.csv")
    assert prov and {"report_id", "observation", "old_value", "new_value", "neighbor_ids", "weights"} <= set(prov[0])
    for p in prov:
        ids, weights = p["neighbor_ids"].split(";"), p["weights"].split(";")
        assert p["report_id"] not in ids and len(ids) == len(weights) <= 3
    for policy in ("keep", "u_ones", "u_zeros", "similarity"):
        assert policy in result.output
        assert (tmp_path / "out" / "policies" / f"labels_{policy}.csv").exists()


def test_not_a_parse_folder_is_a_user_error(tmp_path):
    result = runner.invoke(app, ["resolve", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "graphs.jsonl" in result.output


def test_unknown_policy_is_a_user_error(parsed, tmp_path):
    result = runner.invoke(app, ["resolve", str(parsed), "--out", str(tmp_path), "--policy", "coin"])
    assert result.exit_code == 2 and "coin" in result.output


def test_holdout_split_prints_tune_and_heldout_tables(parsed, tmp_path):
    import json

    gold = tmp_path / "gold.csv"
    with gold.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["report_id", "Pneumonia", "Effusion"])
        w.writerows([["r1", 0, 0], ["r2", 1, 1], ["r3", 0, 0], ["r4", 1, 1], ["r5", 1, 1], ["r6", 0, 0]])
    result = runner.invoke(app, ["resolve", str(parsed), "--out", str(tmp_path / "out"), "--gold", str(gold), "--holdout-every", "2",
                                 "--policy", "calibrated", "--lr", "2"])
    assert result.exit_code == 0, result.output
    assert "TUNE" in result.output and "HELDOUT" in result.output and "calibrated" in result.output
    summary = json.loads((tmp_path / "out" / "resolve.json").read_text())
    assert summary["split_scores"]["heldout"]["u_zeros"]["reports"] == 3  # r2, r4, r6
    assert summary["calibrated"]["lr"] == 2


def test_bad_lr_is_a_user_error(parsed, tmp_path):
    result = runner.invoke(app, ["resolve", str(parsed), "--out", str(tmp_path), "--lr", "0.5"])
    assert result.exit_code == 2 and "--lr" in result.output


@pytest.mark.parametrize("policy,says", [("keep", "all kept as -1"), ("u_ones", "→ 1"), ("similarity", "similarity vote")])
def test_summary_line_speaks_of_the_policy_used(parsed, tmp_path, policy, says):
    # issue 7 item 7: --policy keep printed the similarity vote's counts
    result = runner.invoke(app, ["resolve", str(parsed), "--out", str(tmp_path / "out"), "--policy", policy])
    assert result.exit_code == 0, result.output
    assert says in result.output
    assert ("vote" in result.output) == (policy == "similarity")


def test_outputs_appear_together_and_a_foreign_folder_is_refused(parsed, tmp_path):
    from radtool.io.writers import check_output_dir

    out = tmp_path / "out"
    assert runner.invoke(app, ["resolve", str(parsed), "--out", str(out), "--policy", "keep", "-q"]).exit_code == 0
    assert check_output_dir(out) is None
    assert {p.name for p in out.iterdir()} >= {"labels.csv", "provenance.csv", "resolve.json"}
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = runner.invoke(app, ["resolve", str(parsed), "--out", str(tmp_path / "mine")])
    assert result.exit_code == 2 and "notes.txt" in result.output
    result = runner.invoke(app, ["resolve", str(parsed), "--out", str(parsed)])
    assert result.exit_code == 2 and "parse folder itself" in result.output
