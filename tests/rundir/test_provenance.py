"""slurmkit.rundir.provenance: the line a job prints, written and read by one module (the
template's printf is checked against it in tests/config/test_render.py)."""
from __future__ import annotations

import json

import pytest

from slurmkit.errors import Location, RunDirError
from slurmkit.rundir import PROVENANCE_TAG, provenance_line, read_provenance
from slurmkit.rundir.provenance import FIELDS


def test_round_trip_with_a_rank_prefix():
    line = provenance_line("r-1", {"nodes": 2}, "42", nodelist="n[1-2]", cuda_version="12.4")
    assert line.startswith(PROVENANCE_TAG) and "\n" not in line
    record = read_provenance(" 0: " + line)
    assert set(record) == set(FIELDS)
    assert record == {"schema_version": 1, "run_id": "r-1", "params": {"nodes": 2}, "job_id": "42",
                      "nodelist": "n[1-2]", "driver_version": None, "nccl_version": None,
                      "cuda_version": "12.4"}
    assert read_provenance(line.encode()) == record


def test_numeric_job_id_and_unknown_keys():
    record = read_provenance(PROVENANCE_TAG + json.dumps({"run_id": "r", "job_id": 7, "future": 1}))
    assert record["job_id"] == "7" and record["future"] == 1


@pytest.mark.parametrize("body, problem", [
    ("{oops", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ("[1, 2]", "not a JSON object"),
    ('{"run_id": 5}', "run_id is not a string"),
    ('{"run_id": "r", "params": [1]}', "params is not an object"),
    ('{"run_id": "r", "nodelist": 3}', "nodelist is not a string or null"),
])
def test_unreadable_line_is_an_error_at_its_location(body, problem):
    with pytest.raises(RunDirError) as info:
        read_provenance(PROVENANCE_TAG + body, Location("job.log", 12))
    assert info.value.lines() == [f"error: job.log:12: unreadable provenance line ({problem})"]
