"""Read report corpora: CSV/TSV, JSONL, or a folder of .txt files.

Every input record becomes exactly one :class:`Report`, in input order, even when it cannot be used
(bad JSON, a missing text field, an unreadable file): such records carry ``error`` and come out with
blank labels; the rest go on. What cannot be read at all fails in one line (:class:`UserError`):
an unterminated quote in a CSV (naming the line it opened on, never silently merging the rows after
it into one report), an empty or binary file, no text column.

:func:`iter_reports` reads in chunks (a :class:`ReportStream`: O(one record) of memory, whatever the size
of the corpus); :func:`read_reports` is its list. Both give the same reports, warnings and errors.

Text is made safe here, once (:func:`radtool.io.text.sanitize`): non-UTF-8 bytes and lone surrogates
(``"\\ud800"`` in JSON) become U+FFFD, control characters become spaces, whitespace-free runs of more
than 64 symbols are cut to 64 so that parsing stays linear in the length of the input; each change is
a warning on the record (``problems`` in summary.json).

Ids are stripped of surrounding spaces (with a warning). An id that starts with ``=``, ``+``, ``-``
or ``@`` (and is not a number) is **written as it is**, with a warning: a spreadsheet opening the
CSV may take it for a formula. Ids are keys — ``evaluate`` joins predictions to gold by id, the vision
plugin joins labels to images by id, ``resolve`` aligns labels.csv with graphs.jsonl — so quoting them
(``'=cmd``) would silently break every join; CSV is a data format, and the warning tells the user to
open it as text in a spreadsheet.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..errors import UserError, missing_column, missing_file, shown
from .labels import ID_COLUMNS, find_column
from .text import BINARY_PROBE, csv_records, decode, read_bytes, read_text, sanitize, strict_csv_rows

SINGLE_TEXT_COLUMNS = ("report", "Report", "text", "Text", "Report Impression", "report_text", "Reports", "REPORT", "TEXT")
MAX_CHARS = 200_000  # a report longer than this is cut, and the row says so
FORMULA_START = ("=", "+", "-", "@")
_NUMBER_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass
class Report:
    id: str
    row: int  # 1-based position among the input's records
    sections: list[tuple[str | None, str]] = field(default_factory=list)  # (section or None to detect, text)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    line: int | None = None  # the line of the input file the record starts on (CSV, JSONL)

    @property
    def text(self) -> str:
        if len(self.sections) == 1 and self.sections[0][0] is None:
            return self.sections[0][1]
        return "\n\n".join(f"{name}: {text}" if name else text for name, text in self.sections if text)


def _clean(value: str | None, report: Report, where: str) -> str:
    if value is None:
        return ""
    value, warnings = sanitize(value, where)
    report.warnings.extend(warnings)
    if len(value) > MAX_CHARS:
        report.warnings.append(f"{where} cut to {MAX_CHARS} characters (was {len(value)})")
        value = value[:MAX_CHARS]
    return value


def _clean_id(raw: str, report: Report) -> str:
    value, warnings = sanitize(raw, "id", split_runs=False)
    report.warnings.extend(warnings)
    stripped = value.strip()
    if stripped != value:
        report.warnings.append(f"id {value!r} had spaces around it; stripped to {stripped!r}")
    if stripped.startswith(FORMULA_START) and not _NUMBER_RE.fullmatch(stripped):
        report.warnings.append(
            f"id {stripped!r} starts with {stripped[0]!r}: a spreadsheet may run it as a formula; written as it is "
            "(open the CSV as text)"
        )
    return stripped


def _find(columns: list[str], wanted: str) -> str | None:
    return find_column(columns, wanted)


def resolve_columns(columns: list[str], id_col: str | None, text_cols: list[str] | None, where: object) -> tuple[str | None, list[str]]:
    """The id column (None: ids are row numbers) and the text columns among ``columns``."""
    if text_cols:
        resolved = []
        for col in text_cols:
            found = _find(columns, col)
            if found is None:
                raise missing_column(col, columns, where)
            resolved.append(found)
    else:
        resolved = _default_text_columns(columns, where)
    if id_col is not None:
        found = _find(columns, id_col)
        if found is None:
            raise missing_column(id_col, columns, where)
        return found, resolved
    # "Reports" is an id only in a labels file (the CheXpert labeler's); here it may be the text
    candidates = [c for c in columns if c not in resolved]
    return next((c for name in ID_COLUMNS if (c := _find(candidates, name))), None), resolved


def _default_text_columns(columns: list[str], where: object) -> list[str]:
    findings, impression = _find(columns, "findings"), _find(columns, "impression")
    if findings and impression:
        return [findings, impression]
    for name in SINGLE_TEXT_COLUMNS:
        found = _find(columns, name)
        if found:
            return [found]
    if findings or impression:
        return [findings or impression]
    raise UserError(
        f"no report text column found in {shown(where)}; name one with --text-col (columns are: {', '.join(map(repr, columns)) or '(none)'})"
    )


def _report_from_row(row: dict, index: int, line: int | None, id_col: str | None, text_cols: list[str]) -> Report:
    report = Report(id=str(index), row=index, line=line)
    raw_id = row.get(id_col) if id_col else None
    if raw_id is not None and raw_id.strip():
        report.id = _clean_id(raw_id, report)
    elif id_col:
        report.warnings.append(f"empty id; using row number {index}")
    if len(text_cols) == 1:
        report.sections = [(None, _clean(row.get(text_cols[0]), report, text_cols[0]))]
    else:
        report.sections = [(col.upper(), _clean(row.get(col), report, col)) for col in text_cols]
    if not any(text.strip() for _n, text in report.sections):
        report.warnings.append("empty report text")
    return report


def _check_unique(header: list[str], used: list[str], path: Path) -> None:
    for name in used:
        if header.count(name) > 1:
            raise UserError(f"{shown(path)}: column {name!r} appears {header.count(name)} times in the header; rename the copies")


READ_CHUNK = 1 << 20  # bytes read from an input file at a time


def _open(path: Path, what: str) -> BinaryIO:
    try:
        return path.open("rb", buffering=READ_CHUNK)
    except OSError:
        read_bytes(path, what)  # fails the same way, with the one-line message worded in radtool.io.text
        raise


def _check_head(fh: BinaryIO, path: Path, what: str) -> None:
    """What :func:`radtool.io.text.decode` refuses in a whole file (empty, binary), from its first bytes
    (and, when they are all blank, from the rest); ``fh`` is left at the start."""
    head = fh.read(BINARY_PROBE)
    if head.strip():
        decode(head, path, what)  # binary signatures and NUL-heavy heads (decode looks at the first 8 KB only)
    elif all(not chunk.strip() for chunk in iter(lambda: fh.read(READ_CHUNK), b"")):
        decode(b"", path, what)  # nothing but whitespace: "is empty"
    fh.seek(0)


def _csv_rows(path: Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """``(line where the record starts, fields)`` for each record of a CSV file, read in chunks: the records
    of :func:`radtool.io.text.csv_records` over the whole text, with its checks and its error message."""
    with _open(path, "input") as fh:
        _check_head(fh, path, "input")
        # the same text as decode(): BOM dropped, undecodable bytes kept as surrogate escapes for sanitize()
        text = io.TextIOWrapper(fh, encoding="utf-8-sig", errors="surrogateescape", newline="")
        yield from strict_csv_rows(text, delimiter, lambda _exc, _start, _stopped: _csv_error(path, delimiter))


def _csv_error(path: Path, delimiter: str) -> None:
    """Raise the malformed-CSV error of :func:`radtool.io.text.csv_records`, which names the line a quote
    opened on from the whole text: only on this path is the whole file read at once."""
    for _record in csv_records(read_text(path, "input"), path, "input", delimiter):
        pass
    raise UserError(f"input {shown(path)} changed while it was read; run again")


@dataclass
class _CsvLayout:
    header: list[str]
    id_col: str | None
    text_cols: list[str]
    position: dict[str, int]


def _csv_header(rows: Iterator[tuple[int, list[str]]], path: Path) -> list[str]:
    try:
        _line, header = next(rows)
    except StopIteration:
        raise UserError(f"input {shown(path)} is empty: expected a header row") from None
    return [sanitize(h, "header", split_runs=False)[0].strip() for h in header]


def _csv_layout(header: list[str], path: Path, id_col: str | None, text_cols: list[str] | None) -> _CsvLayout:
    id_col, text_cols = resolve_columns(header, id_col, text_cols, path)
    _check_unique(header, [c for c in (id_col, *text_cols) if c], path)
    return _CsvLayout(header, id_col, text_cols, {name: header.index(name) for name in (id_col, *text_cols) if name})


def _csv_reports(path: Path, delimiter: str, layout: _CsvLayout) -> Iterator[Report]:
    rows = _csv_rows(path, delimiter)
    if _csv_header(rows, path) != layout.header:
        raise UserError(f"input {shown(path)} changed while it was read (its header is not the same); run again")
    width = len(layout.header)
    for i, (line, fields) in enumerate(rows, start=1):
        row = {name: fields[at] if at < len(fields) else None for name, at in layout.position.items()}
        report = _report_from_row(row, i, line, layout.id_col, layout.text_cols)
        if len(fields) > width:
            report.warnings.append(f"row has {len(fields)} fields, the header {width}; the extra ones are ignored")
        elif len(fields) < width:
            report.warnings.append(f"row has {len(fields)} fields, the header {width}; the missing ones are blank")
        yield report


def _count(items: Iterator) -> int:
    return sum(1 for _item in items)


def _stream_csv(path: Path, id_col: str | None, text_cols: list[str] | None) -> ReportStream:
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    layout = _csv_layout(_csv_header(_csv_rows(path, delimiter), path), path, id_col, text_cols)  # column errors now
    return ReportStream(path, layout.id_col, lambda: _csv_reports(path, delimiter, layout),
                        lambda: _count(_csv_rows(path, delimiter)) - 1)


def read_csv(path: Path, id_col: str | None, text_cols: list[str] | None) -> tuple[list[Report], str | None]:
    stream = _stream_csv(path, id_col, text_cols)
    return list(stream), stream.id_column


def _json_cell(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _jsonl_lines(path: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    """``(line, object, error)`` for each non-blank line of a JSONL file, read in chunks; line numbers are the
    file's own (blank lines counted)."""
    with _open(path, "input") as fh:
        # empty and binary files: one line (decided on the first 8 KB, as before the reader streamed)
        decode(fh.read(BINARY_PROBE), path, "input")
        fh.seek(0)
        for number, chunk in enumerate(fh, start=1):
            if number == 1 and chunk.startswith(codecs.BOM_UTF8):
                chunk = chunk[len(codecs.BOM_UTF8):]
            if chunk.endswith(b"\n"):
                chunk = chunk[:-1]
            if not chunk.strip():
                continue
            line = chunk.decode("utf-8", "surrogateescape")
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError) as exc:
                reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
                yield number, None, f"line {number} is not valid JSON: {reason}"
                continue
            if not isinstance(obj, dict):
                yield number, None, f"line {number} is a JSON {type(obj).__name__}, not an object"
                continue
            yield number, obj, None


def _jsonl_reports(path: Path, resolved: tuple[str | None, list[str]] | None) -> Iterator[Report]:
    for index, (number, obj, error) in enumerate(_jsonl_lines(path), start=1):
        if error is not None or resolved is None:
            yield Report(id=str(index), row=index, line=number, error=error)
            continue
        rid, cols = resolved
        row = {k: _json_cell(v) for k, v in obj.items()}
        report = _report_from_row(row, index, number, rid, cols)
        if not any(col in obj for col in cols):
            report.error = f"line {number} has no {' or '.join(repr(c) for c in cols)} field"
            report.warnings = [w for w in report.warnings if w != "empty report text"]
        yield report


def _stream_jsonl(path: Path, id_col: str | None, text_cols: list[str] | None) -> ReportStream:
    """One record per non-blank line. Columns come from the keys of all records, in order of appearance (one
    rule for every record), so a first pass reads them (and counts the records) without building reports."""
    keys: dict[str, None] = {}
    count = 0
    for _number, obj, _error in _jsonl_lines(path):
        count += 1
        if obj is not None:
            keys.update(dict.fromkeys(obj))
    if not count:
        raise UserError(f"input {shown(path)} has no records")
    resolved = resolve_columns(list(keys), id_col, text_cols, path) if keys else None
    return ReportStream(path, resolved[0] if resolved else id_col, lambda: _jsonl_reports(path, resolved), lambda: count)


def read_jsonl(path: Path, id_col: str | None, text_cols: list[str] | None) -> tuple[list[Report], str | None]:
    """One record per non-blank line; line numbers are the file's own (blank lines counted)."""
    stream = _stream_jsonl(path, id_col, text_cols)
    return list(stream), stream.id_column


def _folder_reports(path: Path, files: list[str]) -> Iterator[Report]:
    for i, name in enumerate(files, start=1):
        file = path / name
        report = Report(id=str(i), row=i)
        report.id = _clean_id(file.stem, report) or str(i)
        try:
            raw = file.read_bytes()
        except OSError as exc:  # one unreadable file is one error row; the rest go on
            report.error = f"cannot read {shown(file.relative_to(path))}: {exc.strerror or exc}"
            yield report
            continue
        report.sections = [(None, _clean(raw.decode("utf-8", "surrogateescape"), report, file.name))]
        if not report.sections[0][1].strip():
            report.warnings.append("empty report text")
        yield report


def _stream_folder(path: Path) -> ReportStream:
    # recursive, so MIMIC-CXR's files/p10/p10000032/s50414267.txt layout works as it is (id = s50414267);
    # the names are kept as short strings (a Path costs several times more, at 200,000 files)
    files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".txt")
    if not files:
        raise UserError(f"no .txt files in folder {shown(path)} (or below it)")
    return ReportStream(path, "report_id", lambda: _folder_reports(path, files), lambda: len(files))


def read_folder(path: Path) -> tuple[list[Report], str]:
    stream = _stream_folder(path)
    return list(stream), stream.id_column


class ReportStream:
    """The reports of an input, in order, read from the file in chunks each time the stream is iterated:
    the same :class:`Report` objects, checks, warnings and errors as :func:`read_reports`, in O(one record)
    of memory. ``len()`` counts the records without building them (for a CSV, a first pass over the whole
    file that also checks every quote, so a malformed row late in the file fails before any work is done)."""

    def __init__(self, path: Path, id_column: str | None, reports: Callable[[], Iterator[Report]], count: Callable[[], int]) -> None:
        self.path = path
        self.id_column = id_column or "report_id"
        self._reports = reports
        self._counter = count
        self._count: int | None = None

    def __len__(self) -> int:
        if self._count is None:
            self._count = self._counter()
        return self._count

    def __iter__(self) -> Iterator[Report]:
        n = 0
        for report in self._reports():
            n += 1
            yield report
        if self._count is not None and n != self._count:  # every row accounted for, or a one-line error
            raise UserError(f"input {shown(self.path)} changed while it was read ({self._count} records, then {n}); run again")


def iter_reports(path: str | Path, id_col: str | None = None, text_cols: list[str] | None = None) -> ReportStream:
    """The reports of ``path`` as a :class:`ReportStream` (``.id_column``: the id column's name for outputs).
    What makes the whole input unreadable (no such file, empty or binary, no text column) fails here."""
    path = Path(path)
    if not path.exists():
        raise missing_file(path, "input")
    if path.is_dir():
        return _stream_folder(path)
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return _stream_jsonl(path, id_col, text_cols)
    return _stream_csv(path, id_col, text_cols)


def read_reports(path: str | Path, id_col: str | None = None, text_cols: list[str] | None = None) -> tuple[list[Report], str]:
    """All reports of ``path`` in order, and the name of the id column for outputs (a list: for small corpora;
    :func:`iter_reports` streams)."""
    stream = iter_reports(path, id_col, text_cols)
    return list(stream), stream.id_column


__all__ = ["MAX_CHARS", "Report", "ReportStream", "iter_reports", "read_csv", "read_folder", "read_jsonl", "read_reports", "resolve_columns"]
