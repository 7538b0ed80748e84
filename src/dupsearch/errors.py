"""Exceptions raised by dupsearch; each message says what to fix and where."""

from __future__ import annotations


class DupsearchError(Exception):
    """Base class of every error dupsearch raises on purpose."""


class DataError(DupsearchError, ValueError):
    """Bad input data. Names the file, the row (1-based, as a person counts lines) and the column."""

    def __init__(self, message: str, *, path: str | None = None, row: int | None = None,
                 column: str | None = None):
        self.path, self.row, self.column = path, row, column
        where = []
        if path is not None:
            where.append(f"file {path}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)


class ModelVersionError(DupsearchError):
    """A model directory written by an incompatible dupsearch version."""


class ModelFileError(DupsearchError):
    """A model directory whose files match their digests but do not parse as what they should be."""


class ModelNotFoundError(DupsearchError, FileNotFoundError):
    """A model (directory or pretrained weights) the user named is missing."""


class NotFittedError(DupsearchError, ValueError):
    """An estimator or feature family used before ``fit`` (or ``load``)."""


class UntrustedModelError(DupsearchError):
    """A model component that only loads by running code from its files (a pickle), asked for
    without ``trust=True`` / ``--trust-model``."""
