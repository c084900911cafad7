"""User errors: the core's :class:`radtool.errors.UserError`, re-exported for this plugin.

The core CLI turns a UserError into one line on stderr and exit status 2. When the core is not
importable (a bare checkout of this plugin), an equivalent class keeps the plugin usable.
"""

from __future__ import annotations

try:
    from radtool.errors import UserError, missing_column, missing_file
except ImportError:  # pragma: no cover - only without the core installed

    class UserError(Exception):  # type: ignore[no-redef]
        exit_code = 2

        def __init__(self, message: str) -> None:
            super().__init__(message)
            self.message = message

        def __str__(self) -> str:
            return self.message

    def missing_file(path: object, what: str = "file") -> UserError:  # type: ignore[misc]
        return UserError(f"{what} not found: {path}")

    def missing_column(column: str, available: list[str], where: object = "input") -> UserError:  # type: ignore[misc]
        cols = ", ".join(available) if available else "(none)"
        return UserError(f"column {column!r} not found in {where}; columns are: {cols}")


__all__ = ["UserError", "missing_column", "missing_file"]
