"""Get report records for analysis: from a ``radtool parse`` folder (reused as is) or by parsing reports.

:func:`open_corpus` streams them (``CorpusStream.records()`` reads graphs.jsonl line by line, or parses
reports a partition at a time), so ``stats`` and ``similarity`` hold one record at a time, not the
corpus; :func:`load_corpus` gives them as a list, for commands that need random access.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError, missing_file
from ..io.labels import read_header


@dataclass
class Corpus:
    records: list[dict]
    id_col: str  # name of the id column for outputs
    columns: list[str]  # label columns, in labels.csv order
    source: str  # "parse-dir" or "parsed"
    parse_dir: Path | None = None


def is_parse_dir(path: Path) -> bool:
    return path.is_dir() and (path / "graphs.jsonl").is_file()


def _record(graphs: Path, line: str | bytes, number: Callable[[], int]) -> dict:
    """The report record of a graphs.jsonl line, or the error that names its line (``number()``)."""
    try:
        record = json.loads(line)
    except ValueError as exc:  # UnicodeDecodeError too
        raise UserError(f"{graphs}: line {number()} is not JSON ({exc}); re-run radtool parse") from exc
    if not isinstance(record, dict) or "entities" not in record or "id" not in record:
        raise UserError(f"{graphs}: line {number()} is not a radtool report record; re-run radtool parse")
    return record


def iter_records(graphs: Path) -> Iterator[dict]:
    """The report records of a graphs.jsonl, one at a time."""
    with graphs.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if line.strip():
                yield _record(graphs, line, lambda: n)  # noqa: B023  (called before the next line)


def iter_records_part(graphs: Path, part: int, parts: int) -> Iterator[dict]:
    """The records of part ``part`` of ``parts`` of a graphs.jsonl: those of the lines that start in that
    share of the file's bytes (cut in equal ranges), in order; the parts in turn are :func:`iter_records`.
    For reading one file in several processes at once. A line that is not a record is the same error, with
    its line number in the whole file."""
    size = graphs.stat().st_size
    start, stop = size * part // parts, size * (part + 1) // parts
    with graphs.open("rb") as fh:
        at = start
        if start:  # the rest of a line that began before this part is the previous part's
            fh.seek(start - 1)
            at = start - 1 + len(fh.readline())
        while at < stop:
            line = fh.readline()
            if not line:
                break
            begins, at = at, at + len(line)
            if line.strip():
                yield _record(graphs, line, lambda: _line_number(graphs, begins))  # noqa: B023


def _line_number(path: Path, offset: int) -> int:
    """The number (from 1) of the line that starts at byte ``offset``."""
    count = 0
    with path.open("rb") as fh:
        while offset > 0:
            chunk = fh.read(min(offset, 1 << 20))
            if not chunk:
                break
            count += chunk.count(b"\n")
            offset -= len(chunk)
    return count + 1


def read_records(graphs: Path) -> list[dict]:
    return list(iter_records(graphs))


def parse_dir_warning(parse_dir: Path) -> str | None:
    """None for a parse folder written whole; a warning for one from an older radtool (no completion
    marker). A folder whose files differ from what was written (half updated, half copied) is refused."""
    from ..io.writers import MARKER, check_output_dir

    note = check_output_dir(parse_dir)
    if note is None:
        return None
    if (parse_dir / MARKER).is_file():
        raise UserError(f"{note}; re-run radtool parse")
    return f"{parse_dir} was not written by this radtool version (no completion marker): it may be incomplete"


def _label_header(parse_dir: Path) -> tuple[str | None, list[str]]:
    return read_header(parse_dir / "labels.csv")


def load_parse_dir(parse_dir: Path) -> Corpus:
    parse_dir = Path(parse_dir)
    if not parse_dir.exists():
        raise missing_file(parse_dir, "parse folder")
    if not is_parse_dir(parse_dir):
        raise UserError(f"{parse_dir} is not a radtool parse folder (no graphs.jsonl); run radtool parse first")
    records = read_records(parse_dir / "graphs.jsonl")
    id_col, columns = _label_header(parse_dir)
    if not columns and records:
        columns = list(records[0].get("labels", {}))
    return Corpus(records, id_col or "report_id", columns, "parse-dir", parse_dir)


@dataclass
class CorpusStream:
    """Where records come from; ``records()`` starts a new pass over them."""

    factory: Callable[[], Iterator[dict]]
    id_col: str
    columns: list[str]
    source: str  # "parse-dir" or "parsed"
    parse_dir: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def records(self) -> Iterator[dict]:
        return self.factory()


def open_corpus(input_path: str | Path, id_col: str | None = None, text_cols: list[str] | None = None,
                schema: str = "chexpert", progress=None) -> CorpusStream:
    """Like :func:`load_corpus`, streaming: nothing is read or parsed until ``records()`` is iterated."""
    path = Path(input_path)
    if not path.exists():
        raise missing_file(path, "input")
    if path.is_file() and path.name == "graphs.jsonl":
        path = path.parent
    if path.is_dir() and (path / "graphs.jsonl").is_file():
        warning = parse_dir_warning(path)
        id_name, columns = _label_header(path)
        if not columns:
            first = next(iter_records(path / "graphs.jsonl"), None)
            columns = list(first.get("labels", {})) if first else []
        return CorpusStream(lambda: iter_records(path / "graphs.jsonl"), id_name or "report_id", columns, "parse-dir", path,
                            [warning] if warning else [])
    from ..io import iter_reports
    from ..parse import ReportParser
    from ..schemas import load_schema

    schema_obj = load_schema(schema)
    reports = iter_reports(path, id_col, text_cols)  # each pass reads the file again: memory holds a partition
    len(reports)  # counted (and a CSV checked whole) now, so that a broken file fails before any work
    parser = ReportParser(schema=schema)
    return CorpusStream(lambda: parser.iter_records(reports, progress=progress), reports.id_column, list(schema_obj.columns),
                        "parsed")


def load_corpus(input_path: str | Path, id_col: str | None = None, text_cols: list[str] | None = None,
                schema: str = "chexpert", progress=None) -> Corpus:
    """Records of a parse folder (``graphs.jsonl`` inside; nothing is parsed again) or of a reports
    file/folder, parsed in process with ``schema``."""
    path = Path(input_path)
    if not path.exists():
        raise missing_file(path, "input")
    if is_parse_dir(path):
        return load_parse_dir(path)
    if path.is_file() and path.name == "graphs.jsonl":
        return load_parse_dir(path.parent)
    from ..io import read_reports
    from ..parse import ReportParser
    from ..schemas import load_schema

    schema_obj = load_schema(schema)
    reports, id_name = read_reports(path, id_col, text_cols)
    records = ReportParser(schema=schema).parse(reports, progress=progress)
    return Corpus(records, id_name, list(schema_obj.columns), "parsed")
