"""slurmkit.rundir.states: the one Slurm state normalisation, each state it covers, and what
status/submit (active, failed) and parse (failure reason) make of it."""
from __future__ import annotations

from pathlib import Path

import pytest

from slurmkit.rundir import (
    ACTIVE_STATES,
    FAILED_STATES,
    FAILURE_REASONS,
    JobRecord,
    is_active,
    normalize_state,
    state_failure,
)
from slurmkit.slurm.client import jobs_from_sacct, parse_scontrol_line

# (what Slurm prints, normalised, still active, a failure to resubmit, failure_reason in the runs table)
STATES = [
    ("COMPLETED", "COMPLETED", False, False, None),
    ("FAILED", "FAILED", False, True, "unknown"),
    ("CANCELLED by 1000", "CANCELLED", False, True, "cancelled"),
    ("TIMEOUT", "TIMEOUT", False, True, "time_limit"),
    ("NODE_FAIL", "NODE_FAIL", False, True, "node_failure"),
    ("OUT_OF_MEMORY", "OUT_OF_MEMORY", False, True, "oom"),
    ("PREEMPTED", "PREEMPTED", False, True, "cancelled"),
    ("BOOT_FAIL", "BOOT_FAIL", False, True, "node_failure"),
    ("DEADLINE", "DEADLINE", False, True, "time_limit"),
    ("REQUEUED", "REQUEUED", True, False, None),
    ("PENDING", "PENDING", True, False, None),
    ("RUNNING", "RUNNING", True, False, None),
    ("", "UNKNOWN", False, False, None),       # purged, and accounting does not know the job
]


@pytest.mark.parametrize("raw, state, active, failed, reason", STATES, ids=[s[1] for s in STATES])
def test_each_state(raw, state, active, failed, reason):
    assert normalize_state(raw) == state
    assert is_active(raw) is active and (state in ACTIVE_STATES) is active
    assert (state in FAILED_STATES) is failed
    assert state_failure(raw) == reason and (reason is None or reason in FAILURE_REASONS)
    # the manifest's view: a job is finished when it can no longer run
    assert JobRecord("r", "1", "t", state).finished is not active
    # every reader of Slurm output normalises the same way: sacct, scontrol
    sacct = jobs_from_sacct(f"JobID|JobName|State\n5|r|{raw}\n")
    assert sacct["5"].state == state
    assert parse_scontrol_line(f"JobId=5 JobName=r JobState={raw} ExitCode=0:0").state == state


@pytest.mark.parametrize("raw", ["COMPLETED+", "completed", ["COMPLETED"], ("COMPLETED", "REQUEUED"), " COMPLETED "])
def test_decorations(raw):
    assert normalize_state(raw) == "COMPLETED"


@pytest.mark.parametrize("raw", [None, "", "   ", "(null)", [], 7])
def test_no_state_is_unknown(raw):
    assert normalize_state(raw) == "UNKNOWN" and state_failure(raw) is None


def test_a_state_slurmkit_does_not_know_is_kept():
    assert normalize_state("NEW_STATE+") == "NEW_STATE" and not is_active("NEW_STATE")


def test_the_contract_lists_the_failure_taxonomy():
    text = (Path(__file__).parents[2] / "docs" / "contracts.md").read_text()
    listed = text.split("failure_reason\n(", 1)[1].split(";", 1)[0].split("|")
    assert tuple(listed) == (*FAILURE_REASONS, "null")


def test_log_signals_and_slurm_states_name_reasons_of_the_taxonomy():
    from slurmkit.results.parsers.failures import SIGNALS, find_failure

    assert {reason for reason, *_ in SIGNALS} <= set(FAILURE_REASONS)
    failure = find_failure(b"step 3\nslurmstepd: error: *** JOB 12 ON n1 CANCELLED AT 2024-01-01 DUE TO TIME LIMIT ***\n", 1)
    assert (failure.reason, failure.line) == ("time_limit", 2)
    assert state_failure("TIMEOUT") == failure.reason  # the log and sacct give the same reason
