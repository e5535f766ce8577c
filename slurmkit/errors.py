"""One exception root for every error a user can cause.

The CLI is the only place that catches these, prints one line per problem and exits 2.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A place in a user's file; line and column are 1-based, None when unknown."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


@dataclass(frozen=True)
class Problem:
    """One finding about user input: an error blocks, a warning does not (unless --strict)."""

    message: str
    location: Location | None = None
    hint: str | None = None
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        text = f"{where}{self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class SlurmkitError(Exception):
    """Root of all user-facing errors. ``problems`` lists every finding, reported together."""

    exit_code = 2

    def __init__(self, message: str, *, location: Location | None = None, hint: str | None = None,
                 problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.location = location
        self.hint = hint
        self.problems = problems or [Problem(message, location, hint)]

    def lines(self) -> list[str]:
        """The text the CLI prints, one line per problem."""
        return [f"{p.severity}: {p}" for p in self.problems]


class ConfigError(SlurmkitError):
    """A site config, model file or experiment is invalid."""


class SlurmError(SlurmkitError):
    """A Slurm command failed in a way the user must act on."""


class ResultsError(SlurmkitError):
    """A results folder or log cannot be read (wrong schema version, unknown format...)."""


class RunDirError(SlurmkitError):
    """A run directory's file (plan.json, manifest.jsonl, a provenance line, sacct output) is
    not what the contract says (docs/contracts.md); the location names the file and line."""
