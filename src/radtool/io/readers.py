"""Read report corpora: CSV/TSV, JSONL, or a folder of .txt files.

Every input row becomes exactly one :class:`Report`, in input order, even when it cannot be used
(bad JSON, empty text): such rows carry ``error`` and come out with blank labels.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError, missing_column, missing_file

ID_COLUMNS = ("report_id", "id", "study_id", "Study", "study", "accession", "Path", "path", "filename")
SINGLE_TEXT_COLUMNS = ("report", "Report", "text", "Text", "Report Impression", "report_text", "Reports", "REPORT", "TEXT")
MAX_CHARS = 200_000  # a report longer than this is cut, and the row says so


@dataclass
class Report:
    id: str
    row: int  # 1-based position in the input
    sections: list[tuple[str | None, str]] = field(default_factory=list)  # (section or None to detect, text)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        if len(self.sections) == 1 and self.sections[0][0] is None:
            return self.sections[0][1]
        return "\n\n".join(f"{name}: {text}" if name else text for name, text in self.sections if text)


def _clean(value: str | None, report: Report, where: str) -> str:
    if value is None:
        return ""
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        report.warnings.append(f"non-UTF-8 bytes in {where} replaced")
    if "\x00" in value:
        value = value.replace("\x00", " ")
        report.warnings.append(f"NUL characters in {where} replaced")
    if len(value) > MAX_CHARS:
        report.warnings.append(f"{where} cut to {MAX_CHARS} characters (was {len(value)})")
        value = value[:MAX_CHARS]
    return value


def _find(columns: list[str], wanted: str) -> str | None:
    if wanted in columns:
        return wanted
    lowered = {c.lower(): c for c in columns}
    return lowered.get(wanted.lower())


def resolve_columns(columns: list[str], id_col: str | None, text_cols: list[str] | None, where: object) -> tuple[str | None, list[str]]:
    if id_col is not None:
        found = _find(columns, id_col)
        if found is None:
            raise missing_column(id_col, columns, where)
        id_col = found
    else:
        id_col = next((c for name in ID_COLUMNS if (c := _find(columns, name))), None)
    if text_cols:
        resolved = []
        for col in text_cols:
            found = _find(columns, col)
            if found is None:
                raise missing_column(col, columns, where)
            resolved.append(found)
        return id_col, resolved
    findings, impression = _find(columns, "findings"), _find(columns, "impression")
    if findings and impression:
        return id_col, [findings, impression]
    for name in SINGLE_TEXT_COLUMNS:
        found = _find(columns, name)
        if found:
            return id_col, [found]
    if findings or impression:
        return id_col, [findings or impression]
    raise UserError(
        f"no report text column found in {where}; name one with --text-col (columns are: {', '.join(columns)})"
    )


def _report_from_row(row: dict, index: int, id_col: str | None, text_cols: list[str]) -> Report:
    raw_id = row.get(id_col) if id_col else None
    report = Report(id=str(raw_id).strip() if raw_id not in (None, "") else str(index), row=index)
    if id_col and raw_id in (None, ""):
        report.warnings.append(f"empty id; using row number {index}")
    if len(text_cols) == 1:
        report.sections = [(None, _clean(row.get(text_cols[0]), report, text_cols[0]))]
    else:
        report.sections = [(col.upper(), _clean(row.get(col), report, col)) for col in text_cols]
    report.id = _clean(report.id, report, "id")
    if not any(text.strip() for _n, text in report.sections):
        report.warnings.append("empty report text")
    return report


def read_csv(path: Path, id_col: str | None, text_cols: list[str] | None) -> tuple[list[Report], str | None]:
    csv.field_size_limit(sys.maxsize)
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        columns = reader.fieldnames or []
        if not columns:
            raise UserError(f"{path} is empty: expected a header row")
        id_col, text_cols = resolve_columns(list(columns), id_col, text_cols, path)
        reports = []
        try:
            for i, row in enumerate(reader, start=1):
                report = _report_from_row(row, i, id_col, text_cols)
                if None in row:
                    report.warnings.append("row has more fields than the header")
                reports.append(report)
        except csv.Error as exc:
            raise UserError(f"{path}: malformed CSV near row {len(reports) + 1}: {exc}") from exc
    return reports, id_col


def read_jsonl(path: Path, id_col: str | None, text_cols: list[str] | None) -> tuple[list[Report], str | None]:
    reports: list[Report] = []
    resolved: tuple[str | None, list[str]] | None = None
    with path.open(encoding="utf-8", errors="surrogateescape") as fh:
        lines = [line for line in fh if line.strip()]
    if not lines:
        raise UserError(f"{path} has no records")
    for i, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            reports.append(Report(id=str(i), row=i, error=f"line {i} is not a JSON object: {exc}"))
            continue
        if resolved is None:
            resolved = resolve_columns(list(row), id_col, text_cols, path)
        rid, cols = resolved
        row = {k: (v if isinstance(v, str) or v is None else json.dumps(v) if not isinstance(v, (int, float)) else str(v)) for k, v in row.items()}
        reports.append(_report_from_row(row, i, rid, cols))
    return reports, (resolved[0] if resolved else id_col)


def read_folder(path: Path) -> tuple[list[Report], str]:
    # recursive, so MIMIC-CXR's files/p10/p10000032/s50414267.txt layout works as it is (id = s50414267)
    files = sorted((p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".txt"), key=lambda p: p.relative_to(path).as_posix())
    if not files:
        raise UserError(f"no .txt files in folder {path} (or below it)")
    reports = []
    for i, file in enumerate(files, start=1):
        report = Report(id=file.stem, row=i)
        raw = file.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
            report.warnings.append("non-UTF-8 bytes replaced")
        report.sections = [(None, _clean(text, report, file.name))]
        if not text.strip():
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
