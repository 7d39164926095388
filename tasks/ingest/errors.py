"""The two ways a landing file or run is refused; both print as one line (file, row, problem)."""

from __future__ import annotations

from tasks.common.config import DataRefusedError, UserInputError


class IngestError(UserInputError):
    """A file or run that cannot be ingested; one line naming file, row and problem."""


class ValidationRefusedError(IngestError, DataRefusedError):
    """A table-level expectation (or a guard rail under ``--strict``) refused a file: exit code 3."""
