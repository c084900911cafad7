"""The CheXpert labeler's rules, one case per rule radtool adopts, written from the rules (Irvin et al.,
AAAI 2019, "CheXpert"; the labeler's phrase and pattern files), not from radtool's output.

The labeler: (1) extracts mentions of each observation from phrase lists; (2) classifies each mention
as uncertain if a *pre-negation uncertainty* pattern matches ("cannot be excluded" contains a negation
word but is doubt), else negative if a *negation* pattern matches ("no", "without", "normal" for size
observations), else uncertain if a *post-negation uncertainty* pattern matches ("possible", "may"),
else positive; (3) aggregates per report: positive beats uncertain beats negative, unmentioned is blank;
No Finding is 1 when no pathology other than Support Devices is positive or uncertain, else blank.

Each case runs through the corpus parser (what ``radtool parse`` uses) with the default ``chexpert``
schema and checks only the columns it names (blank = ``None``). Where radtool deliberately differs from
the labeler, the case is in ``DIFFERENCES`` and docs/label-policy.md shows the same sentence.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from radtool.io.readers import Report
from radtool.parse import ReportParser

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def parser():
    return ReportParser(schema="chexpert")


def labels_of(parser, text: str, sections: list[tuple[str | None, str]] | None = None) -> dict:
    report = Report(id="r", row=1, sections=sections or [(None, text)])
    return parser.parse([report])[0]["labels"]


def check(labels: dict, expected: dict) -> None:
    got = {k: labels[k] for k in expected}
    assert got == expected


# rule -> (sentence, expected labels)
RULES = [
    # mention phrases with no cue are positive
    ("mention", "Small left pleural effusion.", {"Pleural Effusion": 1}),
    ("mention", "Mild pulmonary edema.", {"Edema": 1}),
    ("mention", "Right lower lobe consolidation.", {"Consolidation": 1}),
    # negation
    ("negation", "No pneumothorax.", {"Pneumothorax": 0}),
    ("negation", "There is no evidence of pneumothorax.", {"Pneumothorax": 0}),
    ("negation", "Lungs are clear without focal consolidation.", {"Consolidation": 0}),
    ("negation", "Negative for pneumonia.", {"Pneumonia": 0}),
    ("negation", "The lungs are free of consolidation.", {"Consolidation": 0}),
    ("negation", "The left pleural effusion has resolved.", {"Pleural Effusion": 0}),
    ("negation over a list", "No pneumothorax or pleural effusion.", {"Pneumothorax": 0, "Pleural Effusion": 0}),
    ("negation over a list", "No edema, consolidation, or effusion.", {"Edema": 0, "Consolidation": 0, "Pleural Effusion": 0}),
    # pre-negation uncertainty: doubt phrased with a negation word is uncertain, not negative
    ("pre-negation uncertainty", "Pneumonia cannot be excluded.", {"Pneumonia": -1}),
    ("pre-negation uncertainty", "Cannot rule out a small pneumothorax.", {"Pneumothorax": -1}),
    ("pre-negation uncertainty", "A small effusion is not excluded.", {"Pleural Effusion": -1}),
    ("pre-negation uncertainty", "Difficult to exclude a small left effusion.", {"Pleural Effusion": -1}),
    # post-negation uncertainty
    ("post-negation uncertainty", "Possible left lower lobe pneumonia.", {"Pneumonia": -1}),
    ("post-negation uncertainty", "The opacity may represent atelectasis.", {"Atelectasis": -1}),
    ("post-negation uncertainty", "Right basilar opacity concerning for pneumonia.", {"Pneumonia": -1}),
    ("post-negation uncertainty", "Findings are suggestive of mild edema.", {"Edema": -1}),
    ("post-negation uncertainty", "Question of a small right pneumothorax.", {"Pneumothorax": -1}),
    # aggregation over a report: 1 beats -1 beats 0 beats blank
    ("aggregation", "No effusion on the right. Small left effusion.", {"Pleural Effusion": 1}),
    ("aggregation", "Possible atelectasis at the right base. Left basilar atelectasis.", {"Atelectasis": 1}),
    ("aggregation", "No pneumonia on the right. Pneumonia cannot be excluded at the left base.", {"Pneumonia": -1}),
    ("aggregation", "No edema.", {"Edema": 0, "Pneumonia": None, "Pleural Effusion": None}),
    # size observations: "heart size", "cardiac silhouette", "mediastinum"... are mentions, negated by normal
    ("size negated by normal", "Heart size normal.", {"Cardiomegaly": 0}),
    ("size negated by normal", "Heart size is within normal limits.", {"Cardiomegaly": 0}),
    ("size negated by normal", "The cardiac silhouette is unremarkable.", {"Cardiomegaly": 0}),
    ("size negated by normal", "Heart size is at the upper limits of normal.", {"Cardiomegaly": 0}),
    ("size negated by normal", "The heart is not enlarged.", {"Cardiomegaly": 0}),
    ("size negated by normal", "The cardiomediastinal silhouette is within normal limits.", {"Enlarged Cardiomediastinum": 0}),
    ("size negated by normal", "Mediastinal contours are normal.", {"Enlarged Cardiomediastinum": 0}),
    ("size negated by normal", "The mediastinum is unremarkable.", {"Enlarged Cardiomediastinum": 0}),
    ("size negated by normal", "Heart size and mediastinal contours are within normal limits.",
     {"Cardiomegaly": 0, "Enlarged Cardiomediastinum": 0}),
    ("size asserted", "The cardiac silhouette is enlarged.", {"Cardiomegaly": 1}),
    ("size asserted", "The mediastinum is widened.", {"Enlarged Cardiomediastinum": 1}),
    # No Finding: 1 when nothing but Support Devices is positive or uncertain; never 0
    ("no finding", "Lungs are clear. No effusion or pneumothorax.", {"No Finding": 1}),
    ("no finding", "Right IJ central venous catheter tip in the SVC. Lungs are clear.", {"No Finding": 1, "Support Devices": 1}),
    ("no finding", "Possible small left effusion.", {"No Finding": None}),
    ("no finding", "Small right pneumothorax.", {"No Finding": None}),
    # ... nor any of the other abnormalities the labeler tracks
    ("no finding: other abnormality", "Emphysema. No acute disease.", {"No Finding": None}),
    ("no finding: other abnormality", "Mild scoliosis. Lungs are clear.", {"No Finding": None}),
    ("no finding: other abnormality", "Calcified granuloma in the right upper lobe. Lungs otherwise clear.", {"No Finding": None}),
    ("no finding: other abnormality", "Degenerative changes of the thoracic spine. No effusion.", {"No Finding": None}),
    ("no finding: other abnormality", "Hyperinflated lungs. No focal consolidation.", {"No Finding": None}),
    # device vocabulary
    ("devices", "Cholecystectomy clips in the right upper quadrant. Lungs are clear.", {"Support Devices": 1, "No Finding": 1}),
    ("devices", "Splenic artery embolization coils. Lungs are clear.", {"Support Devices": 1}),
    ("devices", "Left chest wall port with catheter tip in the SVC.", {"Support Devices": 1}),
    ("devices", "Cervical fusion plate and screws.", {"Support Devices": 1}),
    ("devices", "ECMO cannula in the right atrium.", {"Support Devices": 1}),
    ("devices", "Surgical markers over the left breast.", {"Support Devices": 1}),
    ("devices", "Monitoring equipment overlies the chest.", {"Support Devices": 1}),
    ("devices", "Mediport catheter seen on the right.", {"Support Devices": 1}),
    ("devices", "Interval removal of the chest tube.", {"Support Devices": 0}),
    # OpenI wordings of CheXpert observations
    ("openi wording", "A large pleural air collection is present on the right.", {"Pneumothorax": 1}),
    ("openi wording", "No pleural air collections.", {"Pneumothorax": 0}),
    ("openi wording", "Minimal fibronodular scarring at the right apex.", {"Lung Lesion": 1}),
    ("openi wording", "Biapical pleural capping.", {"Pleural Other": 1}),
    ("openi wording", "Calcified pleural plaques.", {"Pleural Other": 1}),
]


@pytest.mark.parametrize("rule,text,expected", RULES, ids=[f"{r}: {t}" for r, t, _ in RULES])
def test_labeler_rule(parser, rule, text, expected):
    check(labels_of(parser, text), expected)


# The sample output published in the CheXpert labeler's repository: its four sample reports and the
# labels it gives them (every column; None = blank).
COLUMNS = ["No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
           "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
           "Fracture", "Support Devices"]
SAMPLES = [
    ("1. Left pleural effusion with adjacent atelectasis. 2. Cardiomegaly without overt edema.",
     {"Cardiomegaly": 1, "Edema": 0, "Atelectasis": 1, "Pleural Effusion": 1}),
    ("1. Patchy airspace disease within the right lower lobe may reflect atelectasis or consolidation.",
     {"Lung Opacity": 1, "Consolidation": -1, "Atelectasis": -1}),
    ("Heart size normal and lungs are clear. No edema or pneumonia. No effusion",
     {"No Finding": 1, "Cardiomegaly": 0, "Edema": 0, "Pneumonia": 0, "Pleural Effusion": 0}),
    ("Stable mild cardiomegaly. Hyperexpanded but clear lungs.",
     {"Cardiomegaly": 1}),
]


@pytest.mark.parametrize("text,expected", SAMPLES, ids=[t[:40] for t, _ in SAMPLES])
def test_labeler_published_samples_exactly(parser, text, expected):
    labels = labels_of(parser, text)
    assert set(labels) == set(COLUMNS)
    assert labels == {c: expected.get(c) for c in COLUMNS}


# Where radtool deliberately differs from the labeler: (what, sentence or sections, radtool's labels).
DIFFERENCES = [
    ("versus: every alternative of a differential is uncertain", "Atelectasis versus pneumonia in the right base.",
     {"Atelectasis": -1, "Pneumonia": -1}),
    ("a finding explained as a normal structure does not count", "Nodule in the left lung base consistent with nipple shadow.",
     {"Lung Lesion": None}),
    ("borderline size is a (mild) positive, not doubt", "Borderline cardiomegaly.", {"Cardiomegaly": 1}),
    ("low lung volumes break No Finding", "Low lung volumes. No focal consolidation.", {"No Finding": None}),
]


@pytest.mark.parametrize("what,text,expected", DIFFERENCES, ids=[w for w, _, _ in DIFFERENCES])
def test_deliberate_difference(parser, what, text, expected):
    check(labels_of(parser, text), expected)


def test_findings_section_counts_not_only_impression(parser):
    # the labeler reads the impression only; radtool labels FINDINGS and IMPRESSION
    labels = labels_of(parser, "", [("FINDINGS", "Small left pleural effusion."), ("IMPRESSION", "No acute disease.")])
    assert labels["Pleural Effusion"] == 1


def test_each_difference_is_documented():
    policy = (REPO / "docs" / "label-policy.md").read_text(encoding="utf-8")
    for _what, text, _expected in DIFFERENCES:
        assert text in policy, f"docs/label-policy.md does not show the difference: {text}"
    assert "Small left pleural effusion." in policy and "No acute disease." in policy
