"""slurmkit.rundir.manifest: last line wins, atomic rewrite, bad lines reported with their location."""
from __future__ import annotations

import json

import pytest

from slurmkit.errors import SlurmkitError
from slurmkit.rundir import JobRecord, read_manifest, write_manifest


def test_round_trip_and_last_line_wins(tmp_path):
    a = JobRecord("alpha", "1", "2026-01-01T00:00:00Z", "PENDING", log_path="logs/alpha_1.out")
    write_manifest(tmp_path, {"alpha": a})
    with open(tmp_path / "manifest.jsonl", "a") as fh:
        fh.write(json.dumps({**a.__dict__, "state": "RUNNING", "future_field": 1}) + "\n")
    records = read_manifest(tmp_path)
    assert records["alpha"].state == "RUNNING"
    write_manifest(tmp_path, records)
    lines = (tmp_path / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 1
    assert set(json.loads(lines[0])) >= {"run_id", "job_id", "submit_time", "state", "attempt", "error", "log_path"}


def test_missing_manifest_is_empty(tmp_path):
    assert read_manifest(tmp_path) == {}


def test_bad_line_names_file_and_line(tmp_path):
    (tmp_path / "manifest.jsonl").write_text('{"run_id": "a", "job_id": null, "submit_time": "t", "state": "X"}\n{oops\n')
    with pytest.raises(SlurmkitError) as info:
        read_manifest(tmp_path)
    assert info.value.lines()[0].startswith(f"error: {tmp_path}/manifest.jsonl:2: not a manifest record")


def test_finished():
    assert not JobRecord("a", "1", "t", "RUNNING").finished
    assert JobRecord("a", "1", "t", "TIMEOUT").finished
    assert JobRecord("a", None, "t", "SUBMIT_FAILED").finished


@pytest.mark.parametrize("line, problem", [
    ('["a"]', "not a JSON object"),
    ('{"job_id": "1", "submit_time": "t", "state": "RUNNING"}', "run_id is missing or not a string"),
    ('{"run_id": "a", "job_id": "1", "state": "RUNNING"}', "submit_time is missing or not a string"),
    ('{"run_id": "a", "job_id": ["1"], "submit_time": "t", "state": "RUNNING"}', "job_id is not a string or null"),
    ('{"run_id": "a", "job_id": "1", "submit_time": "t", "state": "RUNNING", "attempt": "2"}',
     "attempt is not an integer"),
])
def test_a_line_that_is_not_a_record_is_an_error(tmp_path, line, problem):
    good = '{"run_id": "b", "job_id": 12, "submit_time": "t", "state": "PENDING"}'
    (tmp_path / "manifest.jsonl").write_text(good + "\n\n" + line + "\n")
    with pytest.raises(SlurmkitError) as info:
        read_manifest(tmp_path)
    assert info.value.lines() == [f"error: {tmp_path}/manifest.jsonl:3: not a manifest record: {problem}"
                                  " (hint: fix or delete the line; slurmkit rewrites the file)"]


def test_numeric_job_id_is_read_as_text(tmp_path):
    (tmp_path / "manifest.jsonl").write_text('{"run_id": "b", "job_id": 12, "submit_time": "t", "state": "PENDING"}\n')
    assert read_manifest(tmp_path)["b"].job_id == "12"
