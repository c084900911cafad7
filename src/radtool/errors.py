"""One place for user-facing errors.

A :class:`UserError` is something the user can fix (missing file, unknown column, bad option).
The CLI turns it into one line on stderr and exit status 2, without a traceback (unless --debug).

Strings that come from the user's files (column names, ids, file names) go into messages through
:func:`shown`, which escapes control characters, terminal escapes, bidi overrides and lone
surrogates; :func:`one_line` is the last guard the CLI applies to every message it prints.
"""

from __future__ import annotations


class UserError(Exception):
    """An error caused by the user's input, reported as one line with exit status 2."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


def _escape_char(ch: str) -> str:
    return ch if ch.isprintable() else repr(ch)[1:-1]


def shown(value: object) -> str:
    """``value`` as it may appear in a terminal line: unchanged when every character is printable,
    else quoted with the unprintable ones escaped (``'a\\x1b[31m'``), never raw."""
    text = str(value)
    return text if text.isprintable() else repr(text)


def one_line(message: str) -> str:
    """``message`` with every unprintable character (newlines, ESC, bidi overrides, ...) escaped."""
    return message if message.isprintable() else "".join(_escape_char(ch) for ch in message)


def missing_file(path: object, what: str = "file") -> UserError:
    return UserError(f"{what} not found: {shown(path)}")


def missing_column(column: str, available: list[str], where: object = "input") -> UserError:
    cols = ", ".join(repr(c) for c in available) if available else "(none)"
    return UserError(f"column {column!r} not found in {shown(where)}; columns are: {cols}")
