"""The labels.csv format, read and written in one place.

A labels file is a CSV: one id column, then one column per observation holding 1 (present),
0 (absent), -1 (uncertain) or blank (not mentioned) — the CheXpert layout. ``radtool parse`` and
``radtool resolve`` write it; ``evaluate``, ``resolve``, ``stats`` and the vision plugin read it.

Reading is strict, and every problem is one line naming the file, line and column: duplicate ids,
values other than 1 / 0 / -1 / blank (``1.0``, ``-1.0``, ``0.0`` are accepted), ``inf`` / ``nan``,
files that are empty, binary or not UTF-8, rows with the wrong number of fields, unterminated quotes.
Column names and ids in messages are escaped, never printed raw.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError, missing_file, shown
from .text import csv_records, read_text

# The one list of id-column names, in order of preference (matched exactly, then ignoring case).
# "Reports" is the CheXpert labeler's output, where the report text itself is the key.
ID_COLUMNS = ("report_id", "id", "study_id", "Study", "study", "accession", "Reports", "Path", "path", "filename")
LABEL_VALUES = (1, 0, -1)
_VALUE_RE = re.compile(r"[+-]?[01](?:\.0*)?")


def parse_value(raw: object) -> int | None:
    """1, 0, -1 or None (blank) from a cell; anything else (2, 0.7, ``inf``, ``nan``, ``yes``) raises
    :class:`UserError`. Accepts ``1.0`` / ``-1.0`` / ``0.0`` as written by pandas, and numbers."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise UserError(f"label value {raw!r} is not 1, 0, -1 or blank")
    if isinstance(raw, (int, float)):
        if raw != raw:  # NaN from a numeric source is a blank cell
            return None
        if raw in LABEL_VALUES:
            return int(raw)
        raise UserError(f"label value {raw!r} is not 1, 0, -1 or blank")
    text = str(raw).strip()
    if text == "":
        return None
    if _VALUE_RE.fullmatch(text):
        value = int(float(text))
        return 0 if value == 0 else value
    raise UserError(f"label value {text!r} is not 1, 0, -1 or blank")


def format_value(value: int | float | None) -> str:
    """The cell for a label value: ``1`` / ``0`` / ``-1``, or blank for None and NaN."""
    if value is None or value != value:
        return ""
    if value not in LABEL_VALUES:
        raise ValueError(f"label value {value!r} is not 1, 0, -1 or None")
    return str(int(value))


@dataclass
class LabelTable:
    """A labels file: ``ids`` in file order, ``rows[i]`` the values of ``ids[i]`` by column."""

    path: Path
    id_col: str
    columns: list[str]  # label columns in file order (the id column excluded)
    ids: list[str]
    rows: list[dict[str, int | None]]
    lines: list[int] = field(default_factory=list)  # the line each row starts on

    def __len__(self) -> int:
        return len(self.ids)

    def by_id(self) -> dict[str, dict[str, int | None]]:
        return dict(zip(self.ids, self.rows))

    def matrix(self, columns: Sequence[str] | None = None):
        """Rows × ``columns`` as a float numpy array, NaN for blank."""
        import numpy as np

        columns = list(self.columns if columns is None else columns)
        out = np.full((len(self.rows), len(columns)), np.nan)
        for i, row in enumerate(self.rows):
            for j, col in enumerate(columns):
                value = row[col]
                if value is not None:
                    out[i, j] = value
        return out


def find_column(columns: Sequence[str], wanted: str) -> str | None:
    """``wanted`` among ``columns``: the exact name, else the only match ignoring case."""
    if wanted in columns:
        return wanted
    matches = [c for c in columns if c.lower() == wanted.lower()]
    return matches[0] if len(matches) == 1 else None


def guess_id_column(columns: Sequence[str], exclude: Iterable[str] = ()) -> str | None:
    """The first of :data:`ID_COLUMNS` present in ``columns`` (not in ``exclude``), or None."""
    skip = set(exclude)
    candidates = [c for c in columns if c not in skip]
    return next((c for name in ID_COLUMNS if (c := find_column(candidates, name))), None)


def _columns_text(columns: Sequence[str]) -> str:
    return ", ".join(repr(c) for c in columns) if columns else "(none)"


def read_labels(path: str | Path, id_col: str | int | None = None, what: str = "labels file",
                columns: Sequence[str] | None = None, allow_duplicates: bool = False) -> LabelTable:
    """Read a labels CSV strictly (see the module docstring).

    ``id_col``: a name (exact, else ignoring case), a position (0 for radtool's own outputs, which
    write the id first), or None for the first of :data:`ID_COLUMNS` in the header, else the first
    column. ``columns``: read only these label columns (a missing one is an error) and ignore the
    others (a CheXpert CSV's Sex, Age, ...); by default every column but the id is a label column.
    ``allow_duplicates``: keep repeated ids (for readers that align rows by position, like
    ``resolve`` over a parse folder, where ``parse`` keeps every input row); otherwise a repeated id
    is an error naming both lines."""
    path = Path(path)
    if not path.exists():
        raise missing_file(path, what)
    text = read_text(path, what, strict=True)
    records = csv_records(text, path, what)
    try:
        header_line, header = next(records)
    except StopIteration:
        raise UserError(f"{what} {shown(path)} is empty: expected a header row") from None
    header = [h.strip() for h in header]
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in seen:
            raise UserError(f"{what} {shown(path)}: column {name!r} appears twice in the header (columns {seen[name] + 1} and {i + 1})")
        seen[name] = i
    if id_col is None:
        id_col = guess_id_column(header) or header[0]
    elif isinstance(id_col, int):
        id_col = header[id_col]
    else:
        found = find_column(header, id_col)
        if found is None:
            raise UserError(f"id column {id_col!r} not found in {what} {shown(path)}; columns are: {_columns_text(header)}")
        id_col = found
    id_at = header.index(id_col)
    if columns is None:
        columns = [c for c in header if c != id_col]
    else:
        wanted = []
        for name in columns:
            found = find_column(header, name)
            if found is None:
                raise UserError(f"column {name!r} not found in {what} {shown(path)}; columns are: {_columns_text(header)}")
            wanted.append(found)
        columns = wanted
    use = set(columns)
    ids: list[str] = []
    rows: list[dict[str, int | None]] = []
    lines: list[int] = []
    first_line: dict[str, int] = {}
    for line, fields in records:
        if len(fields) == 1 and not fields[0].strip() and len(header) > 1:
            continue  # a line of spaces holds no id
        if len(fields) != len(header):
            raise UserError(f"{what} {shown(path)}: line {line} has {len(fields)} fields, the header has {len(header)}")
        rid = fields[id_at].strip()
        if rid == "":
            raise UserError(f"{what} {shown(path)}: line {line} has an empty id ({id_col!r})")
        if rid in first_line and not allow_duplicates:
            raise UserError(f"{what} {shown(path)}: duplicate id {rid!r} on lines {first_line[rid]} and {line}")
        first_line.setdefault(rid, line)
        row: dict[str, int | None] = {}
        for name, raw in zip(header, fields):
            if name not in use:
                continue
            try:
                row[name] = parse_value(raw)
            except UserError:
                raise UserError(
                    f"{what} {shown(path)}: line {line}, column {name!r}: value {raw.strip()!r} is not 1, 0, -1 or blank"
                ) from None
        ids.append(rid)
        rows.append(row)
        lines.append(line)
    return LabelTable(path, id_col, columns, ids, rows, lines)


def read_header(path: str | Path) -> tuple[str | None, list[str]]:
    """The id column and label columns of a radtool labels.csv (id first), from its header line only;
    ``(None, [])`` when the file is missing or empty. For readers that need the layout, not the rows."""
    import csv

    path = Path(path)
    if not path.is_file():
        return None, []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh), [])
    return (header[0], header[1:]) if header else (None, [])


def write_labels(path: str | Path, id_name: str, columns: Sequence[str],
                 rows: Iterable[tuple[str, Sequence[int | float | None]]]) -> int:
    """Write a labels CSV atomically: ``rows`` are ``(id, values aligned with columns)``, values
    1 / 0 / -1 / None (NaN is blank too). Ids are written as they are (see radtool.io.readers on
    formula-like ids). Returns the number of rows."""
    from .writers import write_csv

    count = 0

    def cells():
        nonlocal count
        for rid, values in rows:
            values = list(values)
            if len(values) != len(columns):
                raise ValueError(f"row {rid!r} has {len(values)} values for {len(columns)} columns")
            count += 1
            yield [rid, *(format_value(v) for v in values)]

    write_csv(path, [id_name, *columns], cells())
    return count


__all__ = ["ID_COLUMNS", "LabelTable", "find_column", "format_value", "guess_id_column", "parse_value", "read_labels", "write_labels"]
