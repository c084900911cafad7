"""The shipped CheXpert-convention gold (corpora/openi/chexpert) is what its README says it is: two
independent annotations of the same 240 reports, the final labels equal to them where they agree and
to the documented adjudication where they differ, labels and ids only."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from radtool.io.labels import read_labels

REPO = Path(__file__).resolve().parents[2]
GOLD = REPO / "corpora" / "openi" / "chexpert"
CHEXPERT_COLUMNS = ["No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
                    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
                    "Fracture", "Support Devices"]


@pytest.fixture(scope="module")
def tables():
    return {name: read_labels(GOLD / f"{name}.csv") for name in ("gold", "annotator_1", "annotator_2")}


def test_same_reports_and_columns(tables):
    for table in tables.values():
        assert table.columns == CHEXPERT_COLUMNS
        assert table.ids == tables["gold"].ids
    assert len(tables["gold"]) == 240
    ids = tables["gold"].ids
    assert sum(int(i[3:]) % 5 == 0 for i in ids) == 48  # held-out split, as for the OpenI gold


def test_gold_is_agreement_plus_documented_adjudication(tables):
    gold, a1, a2 = (tables[n].by_id() for n in ("gold", "annotator_1", "annotator_2"))
    with (GOLD / "adjudication.csv").open(newline="", encoding="utf-8") as fh:
        decisions = {(r["report_id"], r["column"]): r for r in csv.DictReader(fh)}
    disagreements = set()
    for rid, row in gold.items():
        for col in CHEXPERT_COLUMNS:
            if a1[rid][col] == a2[rid][col]:
                assert row[col] == a1[rid][col], (rid, col)
            else:
                disagreements.add((rid, col))
                d = decisions[(rid, col)]
                as_text = lambda v: "" if v is None else str(v)  # noqa: E731
                assert (d["a1"], d["a2"], d["final"]) == (as_text(a1[rid][col]), as_text(a2[rid][col]), as_text(row[col]))
                assert d["reason"].strip()
    assert disagreements == set(decisions)
    assert len(disagreements) == 23  # the figure the README gives


def test_no_finding_never_zero(tables):
    for row in tables["gold"].rows:
        assert row["No Finding"] in (1, None)


def test_no_report_text_shipped():
    # the report text is CC BY-NC-ND: only ids and labels are in this folder
    with (REPO / "corpora" / "openi" / "reports.csv").open(newline="", encoding="utf-8") as fh:
        sentences = {s.strip() for r in csv.DictReader(fh) for s in (r["findings"] + " " + r["impression"]).split(".") if len(s.strip()) > 40}
    for path in GOLD.glob("*.csv"):
        text = path.read_text(encoding="utf-8")
        assert not [s for s in sentences if s in text], path.name
