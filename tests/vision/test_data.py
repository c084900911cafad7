import csv

import numpy as np
import pytest

from radtool.errors import UserError
from radtool_vision.data import (
    load_image_table,
    parse_undersample,
    pos_weight,
    sample_weights,
    split_by_group,
    to_targets,
    undersample,
)


def write_csv(path, header, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def chexpert_csv(tmp_path):
    rows = [
        ["train/patient00001/study1/view1_frontal.jpg", "Frontal", "1.0", "", "-1.0"],
        ["train/patient00001/study1/view2_lateral.jpg", "Lateral", "1.0", "", "-1.0"],
        ["train/patient00002/study1/view1_frontal.jpg", "Frontal", "0.0", "1", ""],
        ["train/patient00003/study2/view1_frontal.jpg", "Frontal", "", "-1", "1"],
    ]
    return write_csv(tmp_path / "train.csv", ["Path", "Frontal/Lateral", "Pleural Effusion", "Pneumothorax", "Pneumonia"], rows)


def test_chexpert_table_keeps_frontal_by_default(chexpert_csv, tmp_path):
    table = load_image_table(chexpert_csv, tmp_path)
    assert len(table) == 3
    assert all("frontal" in p for p in table.rel_paths)
    assert len(load_image_table(chexpert_csv, tmp_path, views="all")) == 4
    assert len(load_image_table(chexpert_csv, tmp_path, views="lateral")) == 1


def test_labels_parse_one_zero_uncertain_blank(chexpert_csv, tmp_path):
    labels = load_image_table(chexpert_csv, tmp_path).labels(["Pleural Effusion", "Pneumothorax", "Pneumonia"])
    np.testing.assert_array_equal(labels[0], [1, np.nan, -1])
    np.testing.assert_array_equal(labels[2], [np.nan, -1, 1])


@pytest.mark.parametrize(
    "policy,expected",
    [("ignore", [1, 0, np.nan]), ("zeros", [1, 0, 0]), ("ones", [1, 0, 1])],
)
def test_uncertain_policies_and_blank_is_zero(policy, expected):
    labels = np.array([[1, np.nan, -1]], dtype=np.float32)
    np.testing.assert_array_equal(to_targets(labels, policy)[0], expected)


def test_bad_label_value_names_line_and_column(chexpert_csv, tmp_path):
    text = chexpert_csv.read_text().replace("0.0,1,", "maybe,1,")
    chexpert_csv.write_text(text)
    with pytest.raises(UserError, match=r"line 4, column 'Pleural Effusion': label value 'maybe' is not 1, 0, -1 or blank"):
        load_image_table(chexpert_csv, tmp_path, views="all").labels(["Pleural Effusion"])


@pytest.mark.parametrize("value", ["2", "0.7", "inf", "nan", "yes"])
def test_label_values_follow_the_core_labels_rules(chexpert_csv, tmp_path, value):
    chexpert_csv.write_text(chexpert_csv.read_text().replace("0.0,1,", f"{value},1,"))
    with pytest.raises(UserError, match="is not 1, 0, -1 or blank"):
        load_image_table(chexpert_csv, tmp_path, views="all").labels(["Pleural Effusion"])


def test_missing_class_column_is_a_user_error(chexpert_csv, tmp_path):
    with pytest.raises(UserError, match="column 'Edema' not found"):
        load_image_table(chexpert_csv, tmp_path).require(["Edema"])


def test_missing_path_column_suggests_image_index(tmp_path):
    path = write_csv(tmp_path / "labels.csv", ["report_id", "Pneumonia"], [["r1", "1"]])
    with pytest.raises(UserError, match="--image-index"):
        load_image_table(path, tmp_path)


def test_radtool_labels_join_image_index(tmp_path):
    labels = write_csv(tmp_path / "labels.csv", ["report_id", "Pneumonia", "No Finding"],
                       [["r1", "1", ""], ["r2", "", "1"], ["r3", "0", "1"]])
    index = write_csv(tmp_path / "index.csv", ["Path", "report_id", "ViewPosition"],
                      [["a.png", "r1", "PA"], ["b.png", "r1", "LATERAL"], ["c.png", "r2", "AP"], ["d.png", "rX", "PA"]])
    table = load_image_table(labels, tmp_path, image_index=index)
    assert table.rel_paths == ["a.png", "c.png"]  # lateral dropped, unknown report id dropped
    np.testing.assert_array_equal(table.labels(["Pneumonia", "No Finding"]), [[1, np.nan], [np.nan, 1]])


def test_join_without_matching_ids_is_a_user_error(tmp_path):
    labels = write_csv(tmp_path / "labels.csv", ["report_id", "Pneumonia"], [["r1", "1"]])
    index = write_csv(tmp_path / "index.csv", ["Path", "report_id"], [["a.png", "zz"]])
    with pytest.raises(UserError, match="matches a report id"):
        load_image_table(labels, tmp_path, image_index=index)


def test_patient_groups_from_chexpert_and_mimic_paths(tmp_path):
    rows = [
        ["CheXpert-v1.0/train/patient00001/study1/view1_frontal.jpg", "1"],
        ["CheXpert-v1.0/train/patient00001/study2/view1_frontal.jpg", "1"],
        ["files/p10/p10000032/s50414267/abc.jpg", "1"],
        ["loose.png", "1"],
    ]
    table = load_image_table(write_csv(tmp_path / "t.csv", ["Path", "Pneumonia"], rows), tmp_path)
    assert table.groups() == ["patient00001", "patient00001", "p10000032", "loose.png"]


def test_validation_split_is_patient_safe():
    groups = [f"patient{i // 3}" for i in range(300)]
    train, val = split_by_group(groups, 0.2, seed=1)
    assert len(train) + len(val) == 300
    assert not {groups[i] for i in train} & {groups[i] for i in val}
    assert 45 <= len(val) <= 75


def test_undersample_drops_fraction_of_positives():
    labels = np.zeros((100, 2), dtype=np.float32)
    labels[:50, 0] = 1
    keep = undersample(labels, ["No Finding", "Pneumonia"], {"No Finding": 0.6}, seed=0)
    assert len(keep) == 70
    assert (labels[keep, 0] == 1).sum() == 20


def test_parse_undersample_rejects_bad_fraction():
    assert parse_undersample("No Finding=0.91,Pleural Effusion=0.30") == {"No Finding": 0.91, "Pleural Effusion": 0.3}
    with pytest.raises(UserError, match="--undersample"):
        parse_undersample("No Finding=1.5")


def test_balancing_weights():
    t = np.array([[1, 0], [0, 0], [0, 0], [0, 1]], dtype=np.float32)
    np.testing.assert_allclose(pos_weight(t), [3.0, 3.0])
    w = sample_weights(t)
    assert w.sum() == pytest.approx(1.0)
    assert w[0] > w[1]
