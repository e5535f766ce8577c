"""Shared checks for the parser tests."""
from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pytest

from slurmkit.results.parsers.base import Format


def _quick_equals_regexes(fmt: Format, texts: list[str]) -> None:
    """A format's quick field extraction (forced on however few records) gives exactly what
    its per-field regexes give."""
    records = pa.array(texts, pa.string())
    fmt.quick_min_records = 0
    reference = fmt.fields_by_regex(records)
    quick = fmt.extract_fields(records)
    assert set(quick) == set(reference)
    for name in reference:
        assert quick[name].to_pylist() == reference[name].to_pylist(), name


@pytest.fixture(scope="session")
def quick_equals_regexes() -> Callable[[Format, list[str]], None]:
    return _quick_equals_regexes
