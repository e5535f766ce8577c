"""Shared fixtures for the config-side tests, and the --update-golden option."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite tests/config/golden/ from the current templates")


@pytest.fixture
def update_golden(request) -> bool:
    try:
        flag = request.config.getoption("--update-golden")
    except ValueError:  # option not registered when this conftest is not an initial one
        flag = False
    return bool(flag) or os.environ.get("SLURMKIT_UPDATE_GOLDEN") == "1"


@pytest.fixture
def write_yaml(tmp_path):
    """Write a dedented YAML file under tmp_path and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write
