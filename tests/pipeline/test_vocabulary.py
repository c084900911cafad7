"""One entity-label vocabulary (RadGraph's) across graphs.jsonl, stats charts and show pages."""

from __future__ import annotations

import pytest

from radtool.analysis.show import arc_diagrams, render_html
from radtool.analysis.stats import LABEL_COLORS
from radtool.labeling import ENTITY_LABELS, entity_label, long_label, short_label


def test_radgraph_has_four_labels_and_no_uncertain_anatomy():
    assert ENTITY_LABELS == (
        "Anatomy::definitely present",
        "Observation::definitely present",
        "Observation::uncertain",
        "Observation::definitely absent",
    )
    assert [short_label(label) for label in ENTITY_LABELS] == ["ANAT-DP", "OBS-DP", "OBS-U", "OBS-DA"]
    assert all(long_label(short_label(label)) == label for label in ENTITY_LABELS)
    assert entity_label("Anatomy", "uncertain") == "Anatomy::definitely present"
    assert set(LABEL_COLORS) == set(ENTITY_LABELS)


@pytest.fixture(scope="module")
def record(nlp):
    return nlp("Possible pneumonia in the left lower lobe. No effusion.")._.radgraph


def test_show_page_uses_the_json_labels(record):
    page = render_html(record)
    for ent in record["entities"].values():
        assert ent["label"] in page
    assert "ANAT-U" not in page and "ANAT-DA" not in page
    tags = {w["tag"] for d in arc_diagrams(record) for w in d["words"] if w["tag"]}
    assert tags <= set(ENTITY_LABELS) and "Observation::uncertain" in tags


def test_show_short_labels_on_request(record):
    tags = {w["tag"] for d in arc_diagrams(record, short_labels=True) for w in d["words"] if w["tag"]}
    assert tags <= {"ANAT-DP", "OBS-DP", "OBS-U", "OBS-DA"} and "OBS-U" in tags
    assert "OBS-U" in render_html(record, short_labels=True)
