"""Read report corpora: CSV/TSV, JSONL, or a folder of .txt files.

Every input record becomes exactly one :class:`Report`, in input order, even when it cannot be used
(bad JSON, a missing text field, an unreadable file): such records carry ``error`` and come out with
blank labels; the rest go on. What cannot be read at all fails in one line (:class:`UserError`):
an unterminated quote in a CSV (naming the line it opened on, never silently merging the rows after
it into one report), an empty or binary file, no text column.

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
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError, missing_column, missing_file, shown
from .labels import ID_COLUMNS, find_column
from .text import csv_records, decode, read_bytes, sanitize

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


def read_csv(path: Path, id_col: str | None, text_cols: list[str] | None) -> tuple[list[Report], str | None]:
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    text = decode(read_bytes(path, "input"), path, "input")
    records = csv_records(text, path, "input", delimiter)
    try:
        _line, header = next(records)
    except StopIteration:
        raise UserError(f"input {shown(path)} is empty: expected a header row") from None
    header = [sanitize(h, "header", split_runs=False)[0].strip() for h in header]
    id_col, text_cols = resolve_columns(header, id_col, text_cols, path)
    _check_unique(header, [c for c in (id_col, *text_cols) if c], path)
    position = {name: header.index(name) for name in (id_col, *text_cols) if name}
    reports = []
    for i, (line, fields) in enumerate(records, start=1):
        row = {name: fields[at] if at < len(fields) else None for name, at in position.items()}
        report = _report_from_row(row, i, line, id_col, text_cols)
        if len(fields) > len(header):
            report.warnings.append(f"row has {len(fields)} fields, the header {len(header)}; the extra ones are ignored")
        elif len(fields) < len(header):
            report.warnings.append(f"row has {len(fields)} fields, the header {len(header)}; the missing ones are blank")
        reports.append(report)
    return reports, id_col


def _json_cell(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def read_jsonl(path: Path, id_col: str | None, text_cols: list[str] | None) -> tuple[list[Report], str | None]:
    """One record per non-blank line; line numbers are the file's own (blank lines counted)."""
    raw = read_bytes(path, "input")
    decode(raw[:8192] if raw.strip() else raw, path, "input")  # empty and binary files: one line
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    parsed: list[tuple[int, dict | None, str | None]] = []  # (line, object, error)
    keys: dict[str, None] = {}
    for number, chunk in enumerate(raw.split(b"\n"), start=1):
        if not chunk.strip():
            continue
        line = chunk.decode("utf-8", "surrogateescape")
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as exc:
            reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
            parsed.append((number, None, f"line {number} is not valid JSON: {reason}"))
            continue
        if not isinstance(obj, dict):
            parsed.append((number, None, f"line {number} is a JSON {type(obj).__name__}, not an object"))
            continue
        keys.update(dict.fromkeys(obj))
        parsed.append((number, obj, None))
    if not parsed:
        raise UserError(f"input {shown(path)} has no records")
    resolved: tuple[str | None, list[str]] | None = None
    if keys:  # one rule for every record: columns come from the keys of all records, in order of appearance
        resolved = resolve_columns(list(keys), id_col, text_cols, path)
    reports: list[Report] = []
    for index, (number, obj, error) in enumerate(parsed, start=1):
        if error is not None or resolved is None:
            reports.append(Report(id=str(index), row=index, line=number, error=error))
            continue
        rid, cols = resolved
        row = {k: _json_cell(v) for k, v in obj.items()}
        report = _report_from_row(row, index, number, rid, cols)
        if not any(col in obj for col in cols):
            report.error = f"line {number} has no {' or '.join(repr(c) for c in cols)} field"
            report.warnings = [w for w in report.warnings if w != "empty report text"]
        reports.append(report)
    return reports, (resolved[0] if resolved else id_col)


def read_folder(path: Path) -> tuple[list[Report], str]:
    # recursive, so MIMIC-CXR's files/p10/p10000032/s50414267.txt layout works as it is (id = s50414267)
    files = sorted((p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".txt"), key=lambda p: p.relative_to(path).as_posix())
    if not files:
        raise UserError(f"no .txt files in folder {shown(path)} (or below it)")
    reports = []
    for i, file in enumerate(files, start=1):
        report = Report(id=str(i), row=i)
        report.id = _clean_id(file.stem, report) or str(i)
        try:
            raw = file.read_bytes()
        except OSError as exc:  # one unreadable file is one error row; the rest go on
            report.error = f"cannot read {shown(file.relative_to(path))}: {exc.strerror or exc}"
            reports.append(report)
            continue
        report.sections = [(None, _clean(raw.decode("utf-8", "surrogateescape"), report, file.name))]
        if not report.sections[0][1].strip():
            report.warnings.append("empty report text")
        reports.append(report)
    return reports, "report_id"


def read_reports(path: str | Path, id_col: str | None = None, text_cols: list[str] | None = None) -> tuple[list[Report], str]:
    """All reports of ``path`` in order, and the name of the id column for outputs."""
    path = Path(path)
    if not path.exists():
        raise missing_file(path, "input")
    if path.is_dir():
        reports, rid = read_folder(path)
    elif path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        reports, rid = read_jsonl(path, id_col, text_cols)
    else:
        reports, rid = read_csv(path, id_col, text_cols)
    return reports, (rid or "report_id")


__all__ = ["MAX_CHARS", "Report", "read_csv", "read_folder", "read_jsonl", "read_reports", "resolve_columns"]
