"""radtool.io.labels: the one labels.csv reader/writer, strict, one-line errors."""

import pytest

from radtool.errors import UserError
from tests import hostile


@pytest.mark.parametrize("raw,value", [("1", 1), ("0", 0), ("-1", -1), ("", None), ("  ", None), ("1.0", 1), ("-1.0", -1),
                                       ("0.0", 0), ("-0", 0), (" 1 ", 1), (None, None), (1, 1), (-1.0, -1), (float("nan"), None)])
def test_parse_value_accepts_the_four_values(raw, value):
    from radtool.io.labels import parse_value

    assert parse_value(raw) == value


@pytest.mark.parametrize("raw", ["2", "0.7", "1.9", "-3", "inf", "-inf", "nan", "NaN", "yes", "1e0", "0x1", "１", 2, 0.5, True])
def test_parse_value_rejects_everything_else(raw):
    from radtool.io.labels import parse_value

    with pytest.raises(UserError):
        parse_value(raw)


def test_round_trip(tmp_path):
    from radtool.io.labels import read_labels, write_labels

    path = tmp_path / "labels.csv"
    n = write_labels(path, "report_id", ["A", "B"], [("r1", [1, None]), ("r2", [0, -1]), ("r3", [float("nan"), 1.0])])
    assert n == 3
    assert path.read_bytes() == b"report_id,A,B\r\nr1,1,\r\nr2,0,-1\r\nr3,,1\r\n"
    table = read_labels(path)
    assert (table.id_col, table.columns, table.ids) == ("report_id", ["A", "B"], ["r1", "r2", "r3"])
    assert table.rows == [{"A": 1, "B": None}, {"A": 0, "B": -1}, {"A": None, "B": 1}]
    assert table.lines == [2, 3, 4]
    assert table.matrix().tolist()[1] == [0.0, -1.0]


def test_write_rejects_values_outside_the_layout(tmp_path):
    from radtool.io.labels import write_labels

    with pytest.raises(ValueError):
        write_labels(tmp_path / "l.csv", "id", ["A"], [("r1", [2])])
    assert not (tmp_path / "l.csv").exists()


def test_one_id_column_list_shared_by_readers_and_evaluate():
    from radtool.io import labels, readers

    assert readers.ID_COLUMNS is labels.ID_COLUMNS
    assert "Reports" in labels.ID_COLUMNS and "report_id" in labels.ID_COLUMNS
    assert not hasattr(__import__("radtool.evaluate", fromlist=["x"]), "ID_NAMES")


def test_id_column_guess_position_and_name(tmp_path):
    from radtool.io.labels import read_labels

    path = hostile.labels_csv(tmp_path, [["1", "r1", "0"]], header=["A", "Study", "B"])
    assert read_labels(path).id_col == "Study"
    assert read_labels(path, id_col=0, columns=["B"]).ids == ["1"]
    assert read_labels(path, id_col="study").id_col == "Study"
    with pytest.raises(UserError, match="'nope' not found"):
        read_labels(path, id_col="nope")


def test_columns_selects_label_columns_and_ignores_the_rest(tmp_path):
    from radtool.io.labels import read_labels

    path = hostile.labels_csv(tmp_path, [["p1.png", "Female", "1"]], header=["Path", "Sex", "Pneumonia"])
    table = read_labels(path, columns=["Pneumonia"])
    assert table.columns == ["Pneumonia"] and table.rows == [{"Pneumonia": 1}]
    with pytest.raises(UserError, match="'Sex'.*'Female'"):
        read_labels(path)


def test_duplicate_ids_name_the_id_and_both_lines(tmp_path):
    from radtool.io.labels import read_labels

    path = hostile.labels_csv(tmp_path, [["r1", "1", ""], ["r2", "0", ""], ["r1", "1", "1"]])
    with pytest.raises(UserError) as exc:
        read_labels(path)
    assert "duplicate id 'r1' on lines 2 and 4" in str(exc.value)
    assert read_labels(path, allow_duplicates=True).ids == ["r1", "r2", "r1"]


@pytest.mark.parametrize("value", ["2", "0.7", "1.9", "-3", "inf", "nan"])
def test_values_outside_the_layout_name_file_line_column_value(tmp_path, value):
    from radtool.io.labels import read_labels

    path = hostile.labels_csv(tmp_path, [["r1", "1", ""], ["r2", "0", value]])
    with pytest.raises(UserError) as exc:
        read_labels(path)
    assert f"line 3, column 'Pneumothorax': value {value!r} is not 1, 0, -1 or blank" in str(exc.value)
    assert str(path) in str(exc.value)


@pytest.mark.parametrize("data,message", [
    (b"", "is empty"),
    (b"\n\n", "is empty"),
    (b"report_id,A\nr\xe9,1\n", "not UTF-8 text (byte 0xe9 on line 2)"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    (bytes(range(256)) * 4, "binary"),
    (b'report_id,A\nr1,"1\nr2,0\n', "quote opened on line 2"),
    (b"report_id,A\nr1,1,0\n", "line 2 has 3 fields, the header has 2"),
    (b"report_id,A,A\nr1,1,0\n", "'A' appears twice"),
    (b"report_id,A\n,1\n", "line 2 has an empty id"),
])
def test_unreadable_files_are_one_line_errors(tmp_path, data, message):
    from radtool.io.labels import read_labels

    path = hostile.write_bytes(tmp_path, "labels.csv", data)
    with pytest.raises(UserError) as exc:
        read_labels(path)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_column_names_in_errors_are_escaped(tmp_path):
    from radtool.io.labels import read_labels

    path = hostile.labels_csv(tmp_path, [["r1", "7"]], header=["report_id", "[/]\x1b[31mred"])
    with pytest.raises(UserError) as exc:
        read_labels(path)
    assert "\x1b" not in str(exc.value) and "\\x1b" in str(exc.value)


def test_bom_and_crlf_are_fine(tmp_path):
    from radtool.io.labels import read_labels

    path = hostile.write_bytes(tmp_path, "labels.csv", b"\xef\xbb\xbfreport_id,A\r\nr1,1\r\n\r\nr2,\r\n")
    table = read_labels(path)
    assert table.ids == ["r1", "r2"] and table.lines == [2, 4]
