"""RadGraph JSON as RadGraph tooling reads it: entity indices point into the record's own ``text``."""

from __future__ import annotations

from pathlib import Path

import pytest

from radtool.io.readers import read_reports
from radtool.labeling import ENTITY_LABELS
from radtool.parse import parse_reports

CORPUS = Path(__file__).resolve().parents[2] / "corpora" / "openi" / "reports.csv"


def mismatches(record: dict) -> list[tuple[str, str]]:
    words = record["text"].split(" ")
    return [
        (ent["tokens"], " ".join(words[ent["start_ix"] : ent["end_ix"] + 1]))
        for ent in record["entities"].values()
        if ent["tokens"] != " ".join(words[ent["start_ix"] : ent["end_ix"] + 1])
    ]


@pytest.mark.parametrize(
    "text, entity",
    [
        ("Well-expanded lungs.", "Well - expanded"),
        ("Left-sided pleural effusion.", "pleural effusion"),
        ("Stable left-sided  effusion,  no pneumothorax.", "pneumothorax"),
    ],
)
def test_hyphenated_entities_agree_with_text(nlp, text, entity):
    record = nlp(text)._.radgraph
    assert mismatches(record) == []
    assert entity in [e["tokens"] for e in record["entities"].values()]


def test_labels_are_radgraphs_four(nlp):
    record = nlp("The heart is enlarged. No effusion. Possible pneumonia in the left lower lobe.")._.radgraph
    labels = {e["label"] for e in record["entities"].values()}
    assert labels <= set(ENTITY_LABELS)
    assert {"Observation::definitely present", "Observation::definitely absent", "Observation::uncertain", "Anatomy::definitely present"} == labels


@pytest.fixture(scope="module")
def openi_records() -> list[dict]:
    reports, _id_col = read_reports(CORPUS)
    return parse_reports(reports)


@pytest.mark.slow
def test_every_bundled_entity_matches_its_indices(openi_records):
    assert len(openi_records) > 3000
    n_entities = sum(len(r["entities"]) for r in openi_records)
    assert n_entities > 40_000
    bad = {r["id"]: mismatches(r) for r in openi_records if mismatches(r)}
    assert bad == {}


@pytest.mark.slow
def test_bundled_labels_use_radgraph_vocabulary(openi_records):
    used = {e["label"] for r in openi_records for e in r["entities"].values()}
    assert used <= set(ENTITY_LABELS)
