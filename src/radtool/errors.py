"""One place for user-facing errors.

A :class:`UserError` is something the user can fix (missing file, unknown column, bad option).
The CLI turns it into one line on stderr and exit status 2, without a traceback (unless --debug).
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


def missing_file(path: object, what: str = "file") -> UserError:
    return UserError(f"{what} not found: {path}")


def missing_column(column: str, available: list[str], where: object = "input") -> UserError:
    cols = ", ".join(available) if available else "(none)"
    return UserError(f"column {column!r} not found in {where}; columns are: {cols}")
