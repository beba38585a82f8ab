"""Errors that tell the user exactly where their input is wrong."""

from __future__ import annotations


class RewardlabError(Exception):
    """Base class for errors shown to users without a traceback by the CLI."""


class DataError(RewardlabError):
    """A bad record: names the file, the line (1-based, JSONL/CSV) or row (0-based, Parquet/datasets) and field."""

    def __init__(
        self,
        message: str,
        *,
        path: str = "?",
        line: int | None = None,
        row: int | None = None,
        field: str | None = None,
    ):
        self.path, self.line, self.row, self.field, self.reason = path, line, row, field, message
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")


class ModelContractError(RewardlabError):
    """A saved model's rewardlab.json disagrees with how it is being loaded or used."""
