from radtool.pipeline.labels import aggregate, better
from radtool.schemas import load_schema


def test_positive_beats_uncertain_beats_negative():
    assert better(0, -1) == -1
    assert better(-1, 1) == 1
    assert better(None, 0) == 0
    assert better(1, 0) == 1


def test_no_finding_ignores_support_devices(nlp):
    labels = nlp("Right IJ central venous catheter. Lungs are clear.")._.labels
    assert labels["Support Devices"] == 1
    assert labels["No Finding"] == 1


def test_no_finding_blank_when_any_finding(nlp):
    labels = nlp("Possible small pneumothorax. Lungs otherwise clear.")._.labels
    assert labels["No Finding"] is None


def test_chexpert_aggregation_across_sentences(nlp):
    labels = nlp("No effusion on the right. Small left effusion. Effusion cannot be excluded.")._.labels
    assert labels["Pleural Effusion"] == 1


def test_aggregate_only_counts_label_sections():
    schema = load_schema("chexpert")
    rows = [("INDICATION", {"Pneumonia": 1}, True), ("FINDINGS", {"Pneumonia": 0}, False)]
    labels = aggregate(rows, schema)
    assert labels["Pneumonia"] == 0 and labels["No Finding"] == 1


def test_empty_report_is_all_blank(nlp):
    labels = nlp("")._.labels
    assert set(labels.values()) == {None}


def test_chestxray14_columns(nlp14):
    labels = nlp14("Small right pleural effusion. Emphysema.")._.labels
    assert labels["Effusion"] == 1 and labels["Emphysema"] == 1
    assert list(labels)[-1] == "No Finding"


def test_nodule_explained_by_nipple_shadow_does_not_count(nlp14):
    labels = nlp14("Nodules in both lung bases consistent with nipple shadows.")._.labels
    assert labels["Nodule"] is None
