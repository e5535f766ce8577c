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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``nightly`` (the full-size fuzzing runs) run only when asked for:
    ``pytest -m nightly`` or SLURMKIT_NIGHTLY=1 (docs/parsing.md, "Fuzzing")."""
    import os

    if "nightly" in (config.getoption("-m") or "") or os.environ.get("SLURMKIT_NIGHTLY") == "1":
        return
    # deselected, not skipped: the default run's bounded fuzzing is the CI test; these are its long form
    nightly = [item for item in items if "nightly" in item.keywords]
    if nightly:
        config.hook.pytest_deselected(items=nightly)
        items[:] = [item for item in items if "nightly" not in item.keywords]
