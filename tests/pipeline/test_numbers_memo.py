"""The number-blind sentence memo: sentences that differ only in stand-alone numbers share one parse and
keep their own words; ``--exact-numbers`` parses each as written; every way of running gives the same bytes."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from radtool.cli.parse import parse
from radtool.parse import ReportParser, numbers_key

ZERO = re.compile(r"\d")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Stable 3.2 cm nodule since 04/11/2019.", "Stable 0.0 cm nodule since 00/00/0000."),
        ("1. No acute disease. 2. Stable cardiomegaly.", "0. No acute disease. 0. Stable cardiomegaly."),
        ("Compared to the study at 10:42, a 12-15 mm effusion.", "Compared to the study at 00:00, a 00-00 mm effusion."),
        # numbers inside words are words: vertebral levels, ordinals, sizes written with their unit, "x2"
        ("T12 compression, 3rd rib, 3.2cm, x2, C7-T1.", "T12 compression, 3rd rib, 3.2cm, x2, C7-T1."),
        ("No pneumothorax.", "No pneumothorax."),
    ],
)
def test_numbers_key(text, key):
    assert numbers_key(text) == key
    assert len(numbers_key(text)) == len(text)


REPORTS = [
    ("A1", "Stable 3.2 cm nodule in the right upper lobe compared to 04/11/2019. Small left pleural effusion measuring 2 cm."),
    ("A2", "Stable 1.7 cm nodule in the right upper lobe compared to 12/01/2020. Small left pleural effusion measuring 5 cm."),
    ("A3", "Stable 3.2 cm nodule in the right upper lobe compared to 04/11/2019. No pneumothorax. T12 compression deformity."),
    ("A4", "1. Interval increase in the 45 mm right effusion since 01/02/2003. 2. No pneumothorax."),
    ("A5", "7. Interval increase in the 12 mm right effusion since 11/12/2013. 8. No pneumothorax."),
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("numbers")
    path = base / "reports.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "impression"])
        w.writerows(REPORTS)
    out = {}
    for name, numbers, n_process in (("blind", True, 1), ("exact", False, 1), ("blind2", True, 2)):
        out[name] = base / name
        parse(path, out[name], numbers=numbers, n_process=n_process, partition=2)
    return out


def _records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "graphs.jsonl").read_text(encoding="utf-8").splitlines()]


def test_fewer_sentences_parsed_and_the_same_words(runs):
    blind, exact = (json.loads((runs[k] / "summary.json").read_text()) for k in ("blind", "exact"))
    assert blind["distinct_sentences"] == exact["distinct_sentences"]  # counted as written
    assert blind["parsed_sentences"] < exact["parsed_sentences"]
    assert blind["memo"]["numbers"] == "blind" and exact["memo"]["numbers"] == "exact"
    for b, e in zip(_records(runs["blind"]), _records(runs["exact"])):
        assert b["text"] == e["text"]  # every report keeps its own numbers
        assert [x["tokens"] for x in b["entities"].values()] == [x["tokens"] for x in e["entities"].values()]


def test_reports_that_differ_in_numbers_share_one_parse_and_keep_their_numbers(runs):
    recs = {r["id"]: r for r in _records(runs["blind"])}
    for a, b in (("A1", "A2"), ("A4", "A5")):
        ra, rb = recs[a], recs[b]
        assert ra["labels"] == rb["labels"]
        assert ra["entities"] == rb["entities"]  # no entity holds a number
        assert [ZERO.sub("0", p) for p in ra["noun_phrases"]] == [ZERO.sub("0", p) for p in rb["noun_phrases"]]
        assert ra["verbs"] == rb["verbs"]
    for rec in recs.values():
        words = set(rec["text"].lower().split(" "))
        for phrase in rec["noun_phrases"]:
            assert set(phrase.split(" ")) <= words, phrase  # the report's own words, numbers included


def test_two_processes_write_the_same_bytes(runs):
    for name in ("labels.csv", "graphs.jsonl"):
        assert (runs["blind"] / name).read_bytes() == (runs["blind2"] / name).read_bytes()


def test_a_key_the_tokenizer_cuts_differently_is_not_used():
    parser = ReportParser()
    text = "A 3.2 cm nodule."
    assert parser._memo_key(text) == "A 0.0 cm nodule."
    parser.nlp.tokenizer.add_special_case("0.0", [{"ORTH": "0"}, {"ORTH": ".0"}])  # "0.0" is now two tokens
    assert parser._memo_key(text) == text  # parsed as written
    assert ReportParser(numbers=False)._memo_key(text) == text
