"""Bytes to text, once, at the edge: decoding, sanitising and strict CSV records.

Everything that comes from a file passes through here before anything else sees it:

* :func:`read_text` decodes a whole file (BOM tolerated), refusing binary and empty files in one line;
* :func:`sanitize` cleans one value: non-UTF-8 bytes and lone surrogates become U+FFFD, control
  characters become spaces, and whitespace-free runs of more than 64 symbols are cut to 64, so that
  parsing stays linear in the length of the input;
* :func:`csv_records` yields ``(line, fields)`` for each CSV record with its true starting line and
  fails in one line, naming the line where a quote opened, instead of letting an unterminated quote
  swallow the rest of the file into one field.
"""

from __future__ import annotations

import bisect
import csv
import io
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import UserError, shown

# A whitespace-free run of symbols (not letters, digits or spaces) longer than this is cut to its first
# SYMBOL_RUN characters, with a warning. 64 keeps ruler lines ("-----", "=====") of ordinary width
# intact. Such runs carry no findings, and the pipeline's cost grows faster than linearly in the tokens
# of one sentence (every emoji is a token): a 60,000-emoji run took 353 s and 1.7 GB to parse.
SYMBOL_RUN = 64
_SYMBOL_RUN_RE = re.compile(r"(?:[^\w\s]|_){%d,}" % (SYMBOL_RUN + 1))
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_ESCAPED_BYTES_RE = re.compile("[\udc80-\udcff]+")  # non-UTF-8 bytes kept by errors="surrogateescape"
BINARY_PROBE = 8192


def _unescape_bytes(match: re.Match) -> str:
    return match.group().encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def sanitize(value: str, where: str = "text", split_runs: bool = True) -> tuple[str, list[str]]:
    """``value`` made safe to process and write, and a warning for each kind of change made.

    Non-UTF-8 bytes (kept by ``surrogateescape``) and lone surrogates (``"\\ud800"`` in JSON) become
    U+FFFD; control characters other than tab and newlines become spaces; whitespace-free runs of
    more than :data:`SYMBOL_RUN` symbols are cut to their first :data:`SYMBOL_RUN` characters."""
    warnings: list[str] = []
    if _SURROGATE_RE.search(value):
        value = _ESCAPED_BYTES_RE.sub(_unescape_bytes, value)
        n = len(_SURROGATE_RE.findall(value))
        if value.count("\ufffd") or n:
            warnings.append(f"non-UTF-8 bytes or lone surrogates in {where} replaced by U+FFFD")
        if n:
            value = _SURROGATE_RE.sub("\ufffd", value)
    if _CONTROL_RE.search(value):
        n = len(_CONTROL_RE.findall(value))
        value = _CONTROL_RE.sub(" ", value)
        warnings.append(f"{n} control character{'s' if n != 1 else ''} in {where} replaced by spaces")
    if split_runs and _SYMBOL_RUN_RE.search(value):
        runs = [len(m.group()) for m in _SYMBOL_RUN_RE.finditer(value)]
        value = _SYMBOL_RUN_RE.sub(lambda m: m.group()[:SYMBOL_RUN], value)
        what = f"a run of {runs[0]} symbols" if len(runs) == 1 else f"{len(runs)} runs of up to {max(runs)} symbols"
        warnings.append(f"{what} without spaces in {where} cut to {SYMBOL_RUN} characters")
    return value, warnings


def read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except IsADirectoryError as exc:
        raise UserError(f"{what} {shown(path)} is a folder, not a file") from exc
    except PermissionError as exc:
        raise UserError(f"cannot read {what} {shown(path)}: permission denied") from exc
    except OSError as exc:
        raise UserError(f"cannot read {what} {shown(path)}: {exc.strerror or exc}") from exc


_MAGIC = (b"\x89PNG", b"%PDF", b"PK\x03\x04", b"\x1f\x8b", b"\xff\xd8\xff", b"BZh", b"\xfd7zXZ", b"GIF8", b"II*\x00", b"MM\x00*")
_TEXT_CONTROLS = b"\t\n\r\x0c\x1b"


def looks_binary(raw: bytes) -> bool:
    """A known binary signature (PNG, PDF, ZIP/xlsx, gzip, JPEG, DICOM, ...), or NUL bytes and more than
    10% control bytes in the first 8 KB. A stray NUL or escape in a text file is not enough: it is sanitised."""
    head = raw[:BINARY_PROBE]
    if head.startswith(_MAGIC) or raw[128:132] == b"DICM":
        return True
    if b"\x00" not in head:
        return False
    controls = sum(1 for b in head if b < 32 and b not in _TEXT_CONTROLS)
    return controls > len(head) // 10


def decode(raw: bytes, path: Path, what: str, strict: bool = False) -> str:
    """Text of a whole file. Empty and binary files (a NUL byte near the start) are one-line errors.
    ``strict``: non-UTF-8 bytes are an error naming the line; otherwise they are kept as surrogate
    escapes for :func:`sanitize` to replace, value by value, with a warning."""
    if not raw.strip():
        raise UserError(f"{what} {shown(path)} is empty")
    if looks_binary(raw):
        raise UserError(f"{what} {shown(path)} looks like a binary file, not text")
    if strict:
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise UserError(
                f"{what} {shown(path)} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); save it as UTF-8"
            ) from exc
    return raw.decode("utf-8-sig", "surrogateescape")


def read_text(path: Path, what: str, strict: bool = False) -> str:
    return decode(read_bytes(path, what), path, what, strict)


def _quote_trouble(text: str, start: int, delimiter: str) -> int:
    """Offset of the opening quote of the field that breaks the CSV record beginning at ``start``."""
    i, n, field_start, opened = start, len(text), True, start
    in_quote = False
    while i < n:
        ch = text[i]
        if in_quote:
            if ch == '"':
                if i + 1 < n and text[i + 1] == '"':
                    i += 2
                    continue
                in_quote = False
                if i + 1 < n and text[i + 1] not in (delimiter, "\n", "\r"):
                    return opened  # text after a closing quote: this quote pairs with the wrong one
        elif field_start and ch == '"':
            in_quote, opened = True, i
        elif ch in "\n\r" and not in_quote:
            return opened
        field_start = ch == delimiter and not in_quote
        i += 1
    return opened


def strict_csv_rows(lines, delimiter: str, on_error: Callable[[csv.Error, int, int], None]) -> Iterator[tuple[int, list[str]]]:
    """``(line where the record starts, fields)`` for each CSV record of ``lines`` (a text stream or any
    iterable of lines; empty lines skipped), with strict quoting. A malformed record calls
    ``on_error(exc, line the record started on, line the reader stopped at)``, which raises."""
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    previous = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            on_error(exc, previous + 1, reader.line_num)
            raise
        start, previous = previous + 1, reader.line_num
        if fields:  # an empty line is no record; a line of spaces is one (with an empty field)
            yield start, fields


def csv_records(text: str, path: Path, what: str, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """``(line where the record starts, fields)`` for each CSV record (empty lines skipped), strictly: a quote that
    is never closed (or closed in the wrong place) is a one-line error naming the line it opened on."""

    def malformed(exc: csv.Error, start_line: int, stopped_at: int) -> None:
        line_starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
        offset = line_starts[min(start_line, len(line_starts)) - 1]
        quote_line = bisect.bisect_right(line_starts, _quote_trouble(text, offset, delimiter))
        raise UserError(
            f"{what} {shown(path)}: malformed CSV: the quote opened on line {quote_line} is not closed properly "
            f"({exc} at line {stopped_at}); every row after it would be lost"
        ) from exc

    return strict_csv_rows(io.StringIO(text, newline=""), delimiter, malformed)
