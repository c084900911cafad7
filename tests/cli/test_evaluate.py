import json

from typer.testing import CliRunner

from radtool.cli import app
from radtool.evaluate import evaluate

runner = CliRunner()


def write(path, text):
    path.write_text(text)
    return path


def test_evaluate_counts_and_aliases(tmp_path):
    pred = write(tmp_path / "p.csv", "report_id,Pleural Effusion,No Finding,Hernia\na,1,,0\nb,0,1,0\nc,-1,,0\n")
    gold = write(tmp_path / "g.csv", "report_id,Effusion,normal,Hernia\na,1,0,0\nb,0,1,0\nc,1,0,0\n")
    res = evaluate(pred, gold)
    eff = res["observations"]["Pleural Effusion"]
    assert (eff["tp"], eff["fp"], eff["fn"]) == (1, 0, 1)
    assert res["observations"]["No Finding"]["f1"] == 1.0
    assert res["not_averaged"] == ["Hernia"]
    assert abs(res["micro"]["f1"] - 2 / 3) < 1e-9
    res2 = evaluate(pred, gold, positive=frozenset({1, -1}))
    assert res2["observations"]["Pleural Effusion"]["f1"] == 1.0


def test_evaluate_cli_table_and_json(tmp_path):
    pred = write(tmp_path / "p.csv", "report_id,Pleural Effusion\na,1\nb,0\n")
    gold = write(tmp_path / "g.csv", "report_id,Effusion\na,1\nb,1\n")
    result = runner.invoke(app, ["evaluate", "--pred", str(pred), "--gold", str(gold), "--out", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    assert "micro" in result.output
    assert json.loads((tmp_path / "s.json").read_text())["micro"]["recall"] == 0.5


def test_evaluate_bad_input(tmp_path):
    pred = write(tmp_path / "p.csv", "report_id,Foo\na,1\n")
    gold = write(tmp_path / "g.csv", "report_id,Effusion\na,1\n")
    result = runner.invoke(app, ["evaluate", "--pred", str(pred), "--gold", str(gold)])
    assert result.exit_code == 2 and "no label columns in common" in result.output
    result = runner.invoke(app, ["evaluate", "--pred", str(tmp_path / "missing.csv"), "--gold", str(gold)])
    assert result.exit_code == 2 and "not found" in result.output
    result = runner.invoke(app, ["evaluate", "--pred", str(pred), "--gold", str(gold), "--positive", "2"])
    assert result.exit_code == 2
