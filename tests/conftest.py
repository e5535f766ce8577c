"""Fixtures shared by every test area."""
from __future__ import annotations

import pytest

from slurmkit.cli import main


@pytest.fixture
def cli(capsys):
    """Run the real CLI entry point; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()  # drop anything printed before the command
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
