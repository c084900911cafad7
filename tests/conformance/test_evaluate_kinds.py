"""The CheXpert labeler's evaluation: F1 of each label value as its own class (positive 1, negation 0,
uncertainty -1) and of mention (any non-blank value), from ``radtool evaluate --kinds``."""

import json

from typer.testing import CliRunner

from radtool.cli import app
from radtool.evaluate import evaluate_kinds

PRED = "report_id,Edema,Pneumonia\na,1,0\nb,-1,\nc,0,1\nd,,-1\n"
GOLD = "report_id,Edema,Pneumonia\na,1,0\nb,1,0\nc,0,\nd,,-1\n"


def files(tmp_path):
    (tmp_path / "p.csv").write_text(PRED)
    (tmp_path / "g.csv").write_text(GOLD)
    return tmp_path / "p.csv", tmp_path / "g.csv"


def test_each_value_is_scored_as_its_own_class(tmp_path):
    pred, gold = files(tmp_path)
    res = evaluate_kinds(pred, gold)
    edema = {k: res[k]["observations"]["Edema"] for k in res}
    # Edema gold: 1, 1, 0, blank; pred: 1, -1, 0, blank
    assert (edema["positive"]["tp"], edema["positive"]["fn"], edema["positive"]["fp"]) == (1, 1, 0)
    assert edema["negation"]["f1"] == 1.0
    assert (edema["uncertainty"]["fp"], edema["uncertainty"]["support"]) == (1, 0)
    assert edema["mention"]["f1"] == 1.0  # all three mentioned reports are found, whatever the value
    pneumonia = {k: res[k]["observations"]["Pneumonia"] for k in res}
    # Pneumonia gold: 0, 0, blank, -1; pred: 0, blank, 1, -1
    assert (pneumonia["mention"]["tp"], pneumonia["mention"]["fp"], pneumonia["mention"]["fn"]) == (2, 1, 1)
    assert (pneumonia["negation"]["tp"], pneumonia["negation"]["fn"]) == (1, 1)
    assert pneumonia["uncertainty"]["f1"] == 1.0


def test_cli_kinds_table_and_json(tmp_path):
    pred, gold = files(tmp_path)
    out = tmp_path / "s.json"
    result = CliRunner().invoke(app, ["evaluate", "--pred", str(pred), "--gold", str(gold), "--kinds", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "negation" in result.output and "mention" in result.output
    scores = json.loads(out.read_text())
    assert set(scores["kinds"]) == {"positive", "negation", "uncertainty", "mention"}
    assert scores["kinds"]["mention"]["observations"]["Edema"]["f1"] == 1.0
    plain = CliRunner().invoke(app, ["evaluate", "--pred", str(pred), "--gold", str(gold)])
    assert plain.exit_code == 0 and "mention" not in plain.output
