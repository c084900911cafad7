"""Property tests for the report readers: any bytes in → one report per record, or one-line UserError.
No crash, no hang (bounded sizes, a deadline per example)."""

import csv
import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radtool.errors import UserError
from radtool.io.readers import read_reports
from radtool.io.text import sanitize

SETTINGS = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
CELL = st.text(max_size=40)
TEXT_CELL = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)  # NUL-heavy files may be taken for binary
# ids: what a well-formed file holds (no surrounding spaces: stripping them is a documented warning)
ID = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=12).map(str.strip).filter(bool)


def _write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _one_line_error(exc: UserError) -> None:
    assert exc.message and "\n" not in exc.message and "\r" not in exc.message


@SETTINGS
@given(records=st.lists(st.tuples(ID, TEXT_CELL), max_size=20), crlf=st.booleans(), bom=st.booleans())
def test_csv_written_by_a_csv_writer_reads_back_record_for_record(tmp_path, records, crlf, bom):
    buf = io.StringIO(newline="")
    # csv.writer with lineterminator "\n" leaves a lone "\r" unquoted (a writer quirk no reader can undo): quote all then
    w = csv.writer(buf, lineterminator="\r\n" if crlf else "\n", quoting=csv.QUOTE_MINIMAL if crlf else csv.QUOTE_ALL)
    w.writerow(["report_id", "report"])
    w.writerows(records)
    path = _write(tmp_path, "r.csv", (b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode("utf-8"))
    reports, id_name = read_reports(path)
    assert id_name == "report_id"
    assert len(reports) == len(records)
    for i, (report, (rid, text)) in enumerate(zip(reports, records), start=1):
        assert report.row == i and report.error is None
        assert report.id == sanitize(rid, split_runs=False)[0].strip() or report.id == str(i)
        assert report.text == sanitize(text)[0]


@SETTINGS
@given(records=st.lists(st.fixed_dictionaries({"id": ID, "text": TEXT_CELL}), min_size=1, max_size=20),
       blanks=st.lists(st.sampled_from(["", " ", "\t", "\r"]), max_size=5), ascii_only=st.booleans())
def test_jsonl_written_by_json_dumps_reads_back_record_for_record(tmp_path, records, blanks, ascii_only):
    lines = [json.dumps(r, ensure_ascii=ascii_only) for r in records]
    for k, blank in enumerate(blanks):  # blank lines anywhere do not count as records
        lines.insert(k * 3 % (len(lines) + 1), blank)
    path = _write(tmp_path, "r.jsonl", "\n".join(lines).encode("utf-8", "surrogatepass"))
    reports, _ = read_reports(path)
    assert len(reports) == len(records)
    for report, record in zip(reports, records):
        assert report.error is None
        assert report.text == sanitize(record["text"])[0]


def _check_any_bytes(path, expected_records: int | None) -> None:
    try:
        reports, _ = read_reports(path)
    except UserError as exc:
        _one_line_error(exc)
        return
    if expected_records is not None:
        assert len(reports) == expected_records
    assert [r.row for r in reports] == list(range(1, len(reports) + 1))
    for r in reports:  # whatever came in, what goes out can be written as UTF-8 and holds no control characters
        for value in (r.id, r.text, r.error or "", *r.warnings):
            value.encode("utf-8")
        assert not any(ord(ch) < 32 and ch not in "\t\n\r" for ch in r.id + r.text)


@SETTINGS
@given(data=st.binary(max_size=400))
def test_any_bytes_as_csv(tmp_path, data):
    path = _write(tmp_path, "r.csv", b"report_id,report\n" + data)
    # the number of records is what Python's strict csv module finds, when it finds no error
    try:
        text = data.decode("utf-8", "surrogateescape")
        expected = sum(1 for row in csv.reader(io.StringIO(text, newline=""), strict=True) if row)
    except csv.Error:
        expected = None
    _check_any_bytes(path, expected)


@SETTINGS
@given(data=st.binary(max_size=400))
def test_any_bytes_as_jsonl(tmp_path, data):
    path = _write(tmp_path, "r.jsonl", data)
    expected = sum(1 for line in data.removeprefix(b"\xef\xbb\xbf").split(b"\n") if line.strip())
    _check_any_bytes(path, expected)


@SETTINGS
@given(lines=st.lists(st.one_of(
    st.dictionaries(st.sampled_from(["id", "text", "report", "findings", "impression", "x"]),
                    st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.booleans(), CELL, st.lists(st.integers(), max_size=3))),
    st.text(max_size=20)), min_size=1, max_size=12))
def test_arbitrary_json_values_per_line(tmp_path, lines):
    rendered = [json.dumps(x) if isinstance(x, dict) else x for x in lines]
    data = "\n".join(rendered).encode("utf-8", "surrogatepass")
    expected = sum(1 for line in data.split(b"\n") if line.strip())
    _check_any_bytes(_write(tmp_path, "r.jsonl", data), expected)
