"""Report readers under hostile input: every record accounted for, one-line errors, true line numbers."""

import json

import pytest

from radtool.errors import UserError
from radtool.io.readers import iter_reports, read_reports
from tests import hostile


def test_unterminated_quote_fails_naming_the_line_it_opened_on(tmp_path):
    # issue 9 item 1: row 10 of 1,000 opens a quote; main read 10 rows and exited 0
    with pytest.raises(UserError) as exc:
        read_reports(hostile.csv_unterminated_quote(tmp_path, n=1000, bad_row=10))
    assert "quote opened on line 11" in str(exc.value)  # row 10 is line 11 (the header is line 1)
    assert "\n" not in str(exc.value)


def test_quote_closed_in_the_wrong_place_also_fails(tmp_path):
    with pytest.raises(UserError, match="quote opened on line 11"):
        read_reports(hostile.csv_stray_quote_pairs_later(tmp_path, bad_row=10, n=50))


def test_multiline_quoted_reports_are_kept_whole_with_their_line_numbers(tmp_path):
    path = hostile.write_bytes(tmp_path, "r.csv", b'report_id,report\nr1,"Line one.\nLine two."\n\nr2,"He said ""no"" effusion."\n')
    reports, _ = read_reports(path)
    assert [(r.id, r.line, r.text) for r in reports] == [("r1", 2, "Line one.\nLine two."), ("r2", 5, 'He said "no" effusion.')]


def test_rows_with_too_many_or_too_few_fields_are_kept_with_a_warning(tmp_path):
    path = hostile.write_bytes(tmp_path, "r.csv", b"report_id,report,extra\nr1,Clear.,x,y\nr2,Clear.\nr3\n")
    reports, _ = read_reports(path)
    assert [r.id for r in reports] == ["r1", "r2", "r3"]
    assert "extra ones are ignored" in reports[0].warnings[0]
    assert "missing ones are blank" in reports[1].warnings[0] and "empty report text" in reports[2].warnings


def test_long_symbol_runs_are_cut_at_the_reader(tmp_path):
    # issue 9 item 5: 60,000 emoji in one report took 353 s and 1.7 GB to parse
    from radtool.io.text import SYMBOL_RUN

    for fmt in ("csv", "jsonl"):
        reports, _ = read_reports(hostile.long_symbol_run(tmp_path, n=60_000, fmt=fmt))
        text = reports[0].text
        assert len(text) < 200 and text.startswith("Heart size is normal. ") and text.endswith(" No pleural effusion.")
        assert text.count("\U0001f600") == SYMBOL_RUN
        assert any("a run of 60000 symbols" in w for w in reports[0].warnings)


def test_ordinary_ruler_lines_are_untouched(tmp_path):
    path = hostile.write_bytes(tmp_path, "r.csv", ("report_id,report\nr1,FINDINGS: " + "-" * 60 + " Clear. ____ ***\n").encode())
    reports, _ = read_reports(path)
    assert "-" * 60 in reports[0].text and not reports[0].warnings


def test_lone_surrogates_in_jsonl_are_replaced_and_the_record_kept(tmp_path):
    # issue 9 item 6: a "\ud800" escape in one record's text or id aborted the run (exit 1, no output)
    reports, _ = read_reports(hostile.jsonl_lone_surrogates(tmp_path))
    assert [r.id for r in reports] == ["a", "b", "c\ufffd"]
    assert reports[1].text == "Mild cardiomegaly \ufffd here." and reports[1].error is None
    assert any("lone surrogates" in w for w in reports[1].warnings) and any("in id" in w for w in reports[2].warnings)
    for r in reports:  # everything can be written as UTF-8 now
        (r.id + r.text).encode("utf-8")


def test_non_utf8_bytes_are_replaced_per_record(tmp_path):
    path = hostile.write_bytes(tmp_path, "r.jsonl", b'{"id": "a", "text": "caf\xe9 au lait"}\n{"id": "b", "text": "Clear."}\n')
    reports, _ = read_reports(path)
    assert reports[0].text == "caf\ufffd au lait" and reports[0].warnings and not reports[1].warnings


def test_jsonl_with_a_bom(tmp_path):
    # issue 9 item 9: the first record became an error row with blank labels
    reports, _ = read_reports(hostile.jsonl_with_bom(tmp_path))
    assert [(r.id, r.error) for r in reports] == [("a", None), ("b", None)]
    assert reports[0].text == "Small right pneumothorax."


def test_jsonl_line_numbers_count_blank_lines(tmp_path):
    # issue 9 item 15: errors named the record's position among non-blank lines, not its line
    reports, _ = read_reports(hostile.jsonl_blank_lines_and_bad_record(tmp_path))
    assert [(r.row, r.line, r.id) for r in reports] == [(1, 1, "a"), (2, 4, "2"), (3, 7, "c")]
    assert reports[1].error.startswith("line 4 is not valid JSON")


def test_jsonl_first_record_without_text_is_handled_like_later_ones(tmp_path):
    # issue 9 item 16: a first record lacking the text field rejected the whole file; later ones passed
    reports, _ = read_reports(hostile.jsonl_first_record_without_text(tmp_path))
    assert [r.id for r in reports] == ["a", "b", "c"]
    assert reports[0].error == reports[2].error.replace("line 3", "line 1") == "line 1 has no 'text' field"
    assert reports[1].error is None and reports[1].text == "Mild cardiomegaly."


def test_jsonl_odd_records_become_error_rows(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    path = hostile.write_bytes(tmp_path, "r.jsonl", f'[1, 2]\n"text"\n{deep}\n{{"id": 5, "text": 7}}\n{{"id": true, "text": {{"a": 1}}}}\n'.encode())
    reports, _ = read_reports(path)
    assert [r.row for r in reports] == [1, 2, 3, 4, 5]
    assert "JSON list" in reports[0].error and "JSON str" in reports[1].error and "nested too deeply" in reports[2].error
    assert (reports[3].id, reports[3].text) == ("5", "7")
    assert (reports[4].id, json.loads(reports[4].text)) == ("true", {"a": 1})


def test_control_characters_become_spaces_with_a_warning(tmp_path):
    reports, _ = read_reports(hostile.csv_control_characters(tmp_path), text_cols=["report"])
    assert reports[0].text == "Mild [2J cardio megaly." and reports[1].text == "No  effusion."
    assert all(any("control character" in w for w in r.warnings) for r in reports)


def test_escape_bytes_in_headers_are_never_echoed_raw(tmp_path):
    # issue 9 item 13
    with pytest.raises(UserError) as exc:
        read_reports(hostile.csv_control_characters(tmp_path), text_cols=["nosuch"])
    assert "\x1b" not in str(exc.value) and "nosuch" in str(exc.value)


def test_ids_spaces_and_formula_like_ids(tmp_path):
    # issue 9 item 16: stripped without a word; =, +, -, @ written raw without a word
    reports, _ = read_reports(hostile.csv_odd_ids(tmp_path))
    ids = [r.id for r in reports]
    assert ids == ["r1", '=HYPERLINK("http://x")', "+1+1", "@SUM(A1)", "-5", "-cmd|' /C calc'!A0"]  # kept as they are
    assert "stripped to 'r1'" in reports[0].warnings[0]
    for r in reports[1:4] + reports[5:]:
        assert any("spreadsheet may run it as a formula" in w for w in r.warnings), r.id
    assert not reports[4].warnings  # a negative number is not a formula


def test_one_unreadable_file_in_a_folder_is_one_error_row(tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "a.txt").write_text("No effusion.")
    (folder / "b.txt").symlink_to(folder / "missing.txt")  # is_file() is False: not a report
    (folder / "c.txt").mkdir()  # a folder named like a report: not a file either
    (folder / "d.txt").write_bytes(b"Caf\xe9.\x00")
    reports, _ = read_reports(folder)
    assert [r.id for r in reports] == ["a", "d"]
    assert reports[1].text == "Caf\ufffd. " and len(reports[1].warnings) == 2


@pytest.mark.parametrize("name,data,message", [
    ("e.csv", b"", "is empty"),
    ("e.jsonl", b"\n \n", "is empty"),
    ("b.csv", b"\x89PNG\r\n\x1a\n" + bytes(64), "binary"),
    ("b.jsonl", bytes(range(32)) * 50, "binary"),
    ("d.csv", b"report_id,report,report\nr1,a,b\n", "appears 2 times"),
    ("n.csv", b"report_id,notes\nr1,a\n", "no report text column"),
])
def test_files_that_cannot_be_read_at_all_are_one_line_errors(tmp_path, name, data, message):
    with pytest.raises(UserError) as exc:
        read_reports(hostile.write_bytes(tmp_path, name, data))
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_reports_column_is_text_not_id(tmp_path):
    # "Reports" is in the one ID_COLUMNS list (the CheXpert labeler's labels files), but in a reports file it is the text
    path = hostile.write_bytes(tmp_path, "r.csv", b"Reports\nNo effusion.\n")
    reports, id_name = read_reports(path)
    assert (reports[0].id, reports[0].text, id_name) == ("1", "No effusion.", "report_id")


# ---------------------------------------------------------------- the streaming reader (issue 12)


def _records_of_whole_text(path, delimiter=","):
    from radtool.io.text import csv_records, read_text

    return list(csv_records(read_text(path, "input"), path, "input", delimiter))


def test_streamed_csv_records_are_those_of_the_whole_text_across_chunk_boundaries(tmp_path):
    # CRs, CRLFs, multi-line quoted fields and multi-byte characters cut by the 8 KB decoding chunks
    from radtool.io.readers import _csv_rows

    rows = [f'r{i},"Line {"é" * (i % 5)} one.\r\nLine ""two"".\rEnd."' if i % 3 == 0 else f"r{i},No pneumothorax.\r" for i in range(3000)]
    path = hostile.write_bytes(tmp_path, "r.csv", ("\ufeffreport_id,report\r\n" + "\r\n".join(rows) + "\n\n").encode())
    streamed = list(_csv_rows(path, ","))
    assert streamed == _records_of_whole_text(path) and len(streamed) == 3001
    assert len(iter_reports(path)) == 3000 and [r.row for r in iter_reports(path)] == list(range(1, 3001))


@pytest.mark.parametrize("maker,line", [
    (lambda d: hostile.csv_unterminated_quote(d, n=30_000, bad_row=29_990), 29_991),
    (lambda d: hostile.csv_stray_quote_pairs_later(d, bad_row=25_000, n=30_000), 25_001),
])
def test_a_broken_quote_late_in_a_big_csv_fails_when_counting_before_any_report_is_built(tmp_path, maker, line):
    path = maker(tmp_path)
    with pytest.raises(UserError) as whole:
        _records_of_whole_text(path)  # the one home of the message: what the reader said before it streamed
    stream = iter_reports(path)  # the header is fine: nothing to say yet
    with pytest.raises(UserError) as counted:
        len(stream)
    assert str(counted.value) == str(whole.value) and f"quote opened on line {line}" in str(counted.value)
    with pytest.raises(UserError) as read:
        read_reports(path)
    assert str(read.value) == str(whole.value)


def test_iter_reports_gives_the_reports_of_read_reports_for_every_format(tmp_path):
    folder = tmp_path / "folder" / "p10"
    folder.mkdir(parents=True)
    (folder / "s2.txt").write_text("No effusion.")
    (folder.parent / "s1.txt").write_bytes(b"Caf\xe9.")
    for path in (hostile.csv_odd_ids(tmp_path), hostile.jsonl_blank_lines_and_bad_record(tmp_path), hostile.jsonl_with_bom(tmp_path),
                 hostile.csv_control_characters(tmp_path), folder.parent):
        stream = iter_reports(path)
        reports, id_name = read_reports(path)
        assert list(stream) == reports == list(stream)  # read again from the file on each iteration
        assert len(stream) == len(reports) and stream.id_column == id_name


def test_column_errors_come_from_iter_reports_itself(tmp_path):
    with pytest.raises(UserError, match="no report text column"):
        iter_reports(hostile.write_bytes(tmp_path, "n.csv", b"report_id,notes\nr1,a\n"))
    with pytest.raises(UserError, match="has no records"):
        iter_reports(hostile.write_bytes(tmp_path, "n.jsonl", b"\xef\xbb\xbf\n"))


def test_a_file_that_changes_between_count_and_read_is_an_error_not_lost_rows(tmp_path):
    path = hostile.reports_csv(tmp_path, n=50)
    stream = iter_reports(path)
    assert len(stream) == 50
    path.write_text("\n".join(path.read_text().splitlines()[:30]) + "\n")
    with pytest.raises(UserError, match=r"changed while it was read \(50 records, then 29\)"):
        list(stream)


def test_iterating_holds_one_report_not_the_corpus(tmp_path):
    import tracemalloc

    path = tmp_path / "big.csv"
    path.write_text("report_id,report\n" + "".join(f"r{i},Heart size is normal. No effusion {i} mm. Lungs are clear.\n" for i in range(20_000)))
    tracemalloc.start()
    try:
        n = sum(1 for _ in iter_reports(path))
        streamed = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        reports, _ = read_reports(path)
        listed = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == len(reports) == 20_000
    assert streamed * 10 < listed  # the list: ~1 KB a report; the stream: a few chunks
