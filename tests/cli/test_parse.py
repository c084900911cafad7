import json
from pathlib import Path

from typer.testing import CliRunner

from radtool.cli import app
from tests.conftest import read_csv

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_parse_csv_writes_all_outputs(small_csv, tmp_path):
    out = tmp_path / "out"
    result = run("parse", small_csv, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    rows = read_csv(out / "labels.csv")
    assert [r["report_id"] for r in rows] == ["r1", "r2", "r3"]
    assert rows[1]["Pleural Effusion"] == "1" and rows[1]["Pneumonia"] == "-1" and rows[1]["Cardiomegaly"] == "1"
    assert rows[0]["No Finding"] == "1" and rows[0]["Pleural Effusion"] == "0"
    assert rows[2]["Consolidation"] == "0"
    graphs = [json.loads(line) for line in (out / "graphs.jsonl").read_text().splitlines()]
    assert [g["id"] for g in graphs] == ["r1", "r2", "r3"]
    ent = next(e for e in graphs[1]["entities"].values() if e["tokens"] == "pleural effusion")
    assert ent["label"] == "Observation::definitely present"
    assert {s["name"] for s in graphs[1]["sections"]} == {"FINDINGS", "IMPRESSION"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reports"] == 3
    assert not list(out.glob(".*.tmp"))


def test_parse_text_columns_become_sections(small_csv, tmp_path):
    out = tmp_path / "out"
    result = run("parse", small_csv, "--out", out, "--quiet", "--text-col", "impression", "--text-col", "findings", "--schema", "chestxray14")
    assert result.exit_code == 0, result.output
    rows = read_csv(out / "labels.csv")
    assert list(rows[0])[-1] == "No Finding" and "Effusion" in rows[0]


def test_parse_jsonl_and_folder(tmp_path):
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text(json.dumps({"id": "a", "report": "No pneumothorax."}) + "\nnot json\n" + json.dumps({"id": "c", "report": "Small effusion."}) + "\n")
    result = run("parse", jsonl, "--out", tmp_path / "o1", "--quiet")
    assert result.exit_code == 0, result.output
    rows = read_csv(tmp_path / "o1" / "labels.csv")
    assert [r["id"] for r in rows] == ["a", "2", "c"]
    assert rows[1]["Pneumothorax"] == "" and rows[2]["Pleural Effusion"] == "1"
    folder = tmp_path / "txt"
    (folder / "p10" / "p1000").mkdir(parents=True)
    (folder / "x1.txt").write_text("FINDINGS: No effusion.\nIMPRESSION: Normal.")
    (folder / "p10" / "p1000" / "s5000.txt").write_text("FINDINGS: Small effusion.")
    (folder / "x2.txt").write_bytes(b"Small effusion \xff\xfe here.")
    result = run("parse", folder, "--out", tmp_path / "o2", "--quiet")
    assert result.exit_code == 0, result.output
    rows = read_csv(tmp_path / "o2" / "labels.csv")
    assert [r["report_id"] for r in rows] == ["s5000", "x1", "x2"]  # sorted by relative path
    assert rows[0]["Pleural Effusion"] == "1"
    summary = json.loads((tmp_path / "o2" / "summary.json").read_text())
    assert any("non-UTF-8" in p["problem"] for p in summary["problems"])


def test_missing_file_exits_2_with_one_line(tmp_path):
    result = run("parse", tmp_path / "nope.csv", "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "input not found" in result.output
    assert "Traceback" not in result.output


def test_missing_column_names_the_columns(small_csv, tmp_path):
    result = run("parse", small_csv, "--out", tmp_path / "o", "--text-col", "report_text")
    assert result.exit_code == 2
    assert "report_text" in result.output and "findings" in result.output


def test_no_text_column_is_a_clear_error(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    result = run("parse", path, "--out", tmp_path / "o")
    assert result.exit_code == 2 and "--text-col" in result.output


def test_unknown_schema_exits_2(small_csv, tmp_path):
    result = run("parse", small_csv, "--out", tmp_path / "o", "--schema", "nope")
    assert result.exit_code == 2 and "schema not found" in result.output


def test_hard_rows_are_processed_and_accounted_for(tmp_path):
    path = tmp_path / "hard.csv"
    long_text = "Small left pleural effusion. " * 3000
    content = (
        "report_id,report\n"
        "d1,\n"
        "d2,\"Line one: no pneumothorax.\nLine two: small effusion.\"\n"
        f"d3,\"{long_text}\"\n"
        "d1,Normal chest.\n"
    ).encode() + b"d5,caf\xe9 effusion\n"
    path.write_bytes(content)
    out = tmp_path / "o"
    result = run("parse", path, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    rows = read_csv(out / "labels.csv")
    assert [r["report_id"] for r in rows] == ["d1", "d2", "d3", "d1", "d5"]
    assert rows[1]["Pleural Effusion"] == "1" and rows[1]["Pneumothorax"] == "0"
    assert rows[2]["Pleural Effusion"] == "1"
    problems = json.loads((out / "summary.json").read_text())["problems"]
    text = " ".join(p["problem"] for p in problems)
    assert "empty report text" in text and "duplicate id" in text and "non-UTF-8" in text


def test_graphml_export(small_csv, tmp_path):
    import networkx as nx

    result = run("parse", small_csv, "--out", tmp_path / "o", "--quiet", "--graphml", tmp_path / "g")
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "g").glob("*.graphml"))
    assert len(files) == 3
    graph = nx.read_graphml(files[1])
    assert graph.number_of_nodes() > 0


def test_parse_with_two_processes_matches_one(tmp_path):
    path = tmp_path / "many.csv"
    sentences = ["No pneumothorax.", "Small left effusion.", "Heart is enlarged.", "Possible pneumonia.", "Lungs are clear."]
    lines = ["id,report"] + [f"{i},\"{sentences[i % 5]} {sentences[(i * 3) % 5]} Finding number {i}.\"" for i in range(300)]
    path.write_text("\n".join(lines) + "\n")
    assert run("parse", path, "--out", tmp_path / "a", "--quiet").exit_code == 0
    assert run("parse", path, "--out", tmp_path / "b", "--quiet", "--n-process", "2").exit_code == 0
    assert (tmp_path / "a" / "labels.csv").read_text() == (tmp_path / "b" / "labels.csv").read_text()


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    import pytest

    from radtool.io import atomic_write

    target = tmp_path / "x.csv"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as fh:
            fh.write("half")
            raise RuntimeError("interrupted")
    assert not target.exists() and list(Path(tmp_path).iterdir()) == []


def test_out_that_is_a_file_is_a_clear_error(small_csv, tmp_path):
    target = tmp_path / "labels.csv"
    target.write_text("keep me")
    result = run("parse", small_csv, "--out", target)
    assert result.exit_code == 2 and "exists and is a file" in result.output
    assert target.read_text() == "keep me"


def test_summary_records_the_label_sections(small_csv, tmp_path):
    """summary.json says which sections gave the labels: the vision plugin's leakage guard reads it."""
    from radtool.labeling import label_sections

    default, findings = tmp_path / "default", tmp_path / "findings"
    assert run("parse", small_csv, "--out", default, "-q").exit_code == 0
    assert run("parse", small_csv, "--out", findings, "-q", "--section", "findings").exit_code == 0
    assert json.loads((default / "summary.json").read_text())["label_sections"] == sorted(label_sections())
    assert json.loads((findings / "summary.json").read_text())["label_sections"] == ["FINDINGS"]
    rows = read_csv(findings / "labels.csv")
    assert rows[1]["Pneumonia"] == "" and rows[1]["Pleural Effusion"] == "1"  # the impression's pneumonia is not read
