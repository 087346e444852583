"""Errors a user can cause. The CLI turns them into a one-line message and exit code 2."""

from __future__ import annotations


class InputError(Exception):
    """Bad input from a user: a file, a row, a column or a usage mistake.

    ``str(err)`` is the one-line message shown to the user, e.g.
    ``data.csv: row 17, column 'lat': latitude 123.4 is out of range [-90, 90]``.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.row = row
        self.column = column
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        prefix = f"{self.file}: " if self.file else ""
        loc = (", ".join(where) + ": ") if where else ""
        return (prefix + loc + self.message).replace("\n", " ")


class ModelBundleError(InputError):
    """A model bundle is missing, incomplete, or does not match its manifest."""
