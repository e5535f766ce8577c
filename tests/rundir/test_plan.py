"""slurmkit.rundir.plan: plan.json written and read through one module; what is not a plan is an
error naming the file and, where it can, the job's line."""
from __future__ import annotations

import json

import pytest

from slurmkit.errors import RunDirError
from slurmkit.rundir import PlannedJob, plan_text, read_plan, write_plan_file

JOBS = [("a-1", "scripts/a-1.sbatch", '{"nodes":1}'), ("a-2", "scripts/a-2.sbatch", '{"nodes":2}')]
HINT = " (hint: regenerate it with `slurmkit generate`)"


def test_round_trip(tmp_path):
    text = plan_text("exp", "experiments/exp.yaml", {"lab": {"name": "lab"}}, JOBS)
    assert write_plan_file(tmp_path, text) and not write_plan_file(tmp_path, text)  # identical: untouched
    assert text.splitlines()[2] == '{"params":{"nodes":1},"run_id":"a-1","script":"scripts/a-1.sbatch"},'
    assert json.loads(text)["schema_version"] == 1
    plan = read_plan(tmp_path)
    assert (plan.experiment, plan.experiment_file, plan.sites) == ("exp", "experiments/exp.yaml", {"lab": {"name": "lab"}})
    assert plan.jobs == [PlannedJob("a-1", "scripts/a-1.sbatch", {"nodes": 1}),
                         PlannedJob("a-2", "scripts/a-2.sbatch", {"nodes": 2})]
    assert plan.path == tmp_path / "plan.json"


def test_a_hand_written_plan_needs_only_run_ids(tmp_path):
    (tmp_path / "plan.json").write_text(json.dumps({"jobs": [{"run_id": "r1"}]}))
    assert read_plan(tmp_path).jobs == [PlannedJob("r1", "scripts/r1.sbatch", {})]


def test_missing_plan(tmp_path):
    with pytest.raises(RunDirError) as info:
        read_plan(tmp_path / "nowhere")
    assert info.value.lines() == [f"error: {tmp_path}/nowhere/plan.json: no plan.json here "
                                  "(hint: point at a folder written by `slurmkit generate --out DIR`)"]


@pytest.mark.parametrize("edit, where, problem", [
    (lambda t: t.replace('"run_id":"a-2",', ""), ":4", "job 2: no run_id"),
    (lambda t: t.replace('"a-2"', '"a-1"'), ":4", "job 2: run_id 'a-1' appears twice"),
    (lambda t: t.replace('{"nodes":1}', "[1]"), ":3", "job 1: params is not an object"),
    (lambda t: t.replace('{"nodes":2}', "{nodes}"), ":4:12", "Expecting property name enclosed in double quotes"),
    (lambda t: json.dumps({"jobs": ["x"]}), "", "job 1: not an object"),
    (lambda t: json.dumps({"jobs": {}}), "", "no list of jobs"),
])
def test_not_a_plan_names_file_and_line(tmp_path, edit, where, problem):
    (tmp_path / "plan.json").write_text(edit(plan_text("exp", "e.yaml", {}, JOBS)))
    with pytest.raises(RunDirError) as info:
        read_plan(tmp_path)
    assert info.value.lines() == [f"error: {tmp_path}/plan.json{where}: not a slurmkit plan: {problem}{HINT}"]


def test_other_schema_version_is_refused(tmp_path):
    (tmp_path / "plan.json").write_text(json.dumps({"schema_version": 2, "jobs": []}))
    with pytest.raises(RunDirError, match="plan.json schema version: found 2, required 1"):
        read_plan(tmp_path)
