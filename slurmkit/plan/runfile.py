"""Files a run directory carries besides its scripts (the example trainer), named in a job's
command line by their path in the run directory and resolved when the job runs.

A ``RunFile`` is a ``str`` (its path relative to the run directory, so code that reads command
lines as text keeps working) that also holds the bytes ``render.write_plan`` writes there. The
scripts' ``qcommand`` filter renders it as ``"$SLURM_SUBMIT_DIR"/<path>``: sbatch runs from the
run directory (docs/contracts.md), so the path is absolute on every node, with no path of the
machine that generated the script baked in.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable


class RunFile(str):
    data: bytes
    mode: int

    def __new__(cls, path: str, data: bytes, mode: int = 0o644) -> RunFile:  # noqa: PYI034 (final)
        self = super().__new__(cls, path)
        self.data, self.mode = data, mode
        return self

    @classmethod
    def content_addressed(cls, folder: str, stem: str, suffix: str, data: bytes, mode: int = 0o644) -> RunFile:
        """``folder/stem-<12 hex of sha256>suffix``: new bytes get a new name, so a job still in
        the queue keeps the file its script names when the run directory is regenerated."""
        return cls(f"{folder}/{stem}-{hashlib.sha256(data).hexdigest()[:12]}{suffix}", data, mode)

    # Never equal to a plain string with the same text: the renderer caches quoted argument
    # groups by value, and a RunFile renders differently from that string.
    def __eq__(self, other: object) -> bool:
        return type(other) is RunFile and str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(("RunFile", str(self)))

    def __reduce__(self) -> tuple[type[RunFile], tuple[str, bytes, int]]:
        return RunFile, (str(self), self.data, self.mode)


def run_files(commands: Iterable[Iterable[Iterable[object]]]) -> dict[str, RunFile]:
    """Every RunFile in the given command lines (lists of argument groups), by path."""
    return {str(arg): arg for groups in commands for group in groups for arg in group
            if type(arg) is RunFile}
