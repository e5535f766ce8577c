"""slurmkit.slurm.client: output parsing, environment cleaning, and the real client against stand-in
commands on PATH (retry with back-off, batching, purged jobs)."""
from __future__ import annotations

import os
import stat

import pytest

from slurmkit.slurm.client import (
    SlurmCli,
    SlurmCommandError,
    clean_env,
    exit_code_of,
    jobs_from_sacct,
    parse_scontrol_line,
)


def test_jobs_from_sacct_skips_steps_and_placeholders():
    text = ("JobID|JobName|State|ExitCode|NodeList\n"
            "7|alpha|FAILED|3:0|node1\n7.batch|batch|FAILED|3:0|node1\n"
            "8|allocation|COMPLETED|0:0|node2\n"
            "9|gamma|CANCELLED by 0|0:0|None assigned\n")
    jobs = jobs_from_sacct(text)
    assert sorted(jobs) == ["7", "9"]
    assert jobs["7"].state == "FAILED" and jobs["7"].exit_code == "3:0" and jobs["7"].nodelist == "node1"
    assert jobs["9"].state == "CANCELLED" and jobs["9"].nodelist is None


def test_parse_scontrol_line():
    line = ("JobId=2 JobName=wrap UserId=root(0) JobState=FAILED Reason=NonZeroExitCode "
            "ExitCode=3:0 NodeList=node1 BatchHost=node1")
    info = parse_scontrol_line(line)
    assert (info.job_id, info.name, info.state, info.exit_code, info.nodelist, info.reason) == \
        ("2", "wrap", "FAILED", "3:0", "node1", "NonZeroExitCode")
    assert parse_scontrol_line("garbage") is None


def test_clean_env_drops_variables_that_change_slurm_commands():
    env = clean_env({"SBATCH_PARTITION": "x", "SQUEUE_FORMAT": "%i", "SLURM_TIME_FORMAT": "relative",
                     "SACCT_FORMAT": "a", "PATH": "/bin", "SLURM_JOB_ID": "3"})
    assert env == {"PATH": "/bin", "SLURM_JOB_ID": "3"}


def fake_command(bin_dir, name, body):
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def bin_dir(tmp_path, monkeypatch):
    d = tmp_path / "bin"
    d.mkdir()
    monkeypatch.setenv("PATH", f"{d}{os.pathsep}{os.environ['PATH']}")
    return d


def test_submit_retries_transient_errors_with_backoff(bin_dir, tmp_path):
    counter = tmp_path / "count"
    fake_command(bin_dir, "sbatch", f"""
n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}
if [ "$n" -lt 2 ]; then echo "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation" >&2; exit 1; fi
echo "$SBATCH_PARTITION" > {tmp_path}/env_seen
echo "42;cluster"
""")
    sleeps = []
    os.environ["SBATCH_PARTITION"] = "should-not-leak"
    try:
        outcome = SlurmCli(sleep=sleeps.append, backoff_s=0.5).submit("s.sbatch", tmp_path)
    finally:
        del os.environ["SBATCH_PARTITION"]
    assert outcome.job_id == "42"
    assert sleeps == [0.5, 1.0]
    assert (tmp_path / "env_seen").read_text().strip() == ""


def test_submit_does_not_retry_a_rejected_script(bin_dir, tmp_path):
    fake_command(bin_dir, "sbatch", 'echo "sbatch: error: invalid partition specified: nope" >&2; exit 1')
    sleeps = []
    with pytest.raises(SlurmCommandError) as info:
        SlurmCli(sleep=sleeps.append).submit("s.sbatch", tmp_path)
    assert not info.value.transient and sleeps == []
    assert str(info.value) == "sbatch failed: sbatch: error: invalid partition specified: nope"


def test_queue_batches_ids_and_treats_all_purged_as_empty(bin_dir, tmp_path):
    fake_command(bin_dir, "squeue", f'echo "$@" >> {tmp_path}/args; echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1')
    assert SlurmCli().queue(["10", "9", "10"]) == {}
    args = (tmp_path / "args").read_text()
    assert "--jobs=9,10" in args and "--states=all" in args


def test_queue_parses_rows(bin_dir):
    fake_command(bin_dir, "squeue", 'printf "9|alpha|RUNNING|None|node[1-2]|0\\n10|beta|PENDING|Dependency||0\\n11|g|FAILED|NonZeroExitCode|node1|768\\n"')
    jobs = SlurmCli().queue(["9", "10", "11"])
    assert jobs["9"].state == "RUNNING" and jobs["9"].nodelist == "node[1-2]" and jobs["9"].reason is None
    assert jobs["10"].reason == "Dependency" and jobs["10"].nodelist is None
    assert jobs["11"].exit_code == "3:0"


def test_exit_code_of():
    assert exit_code_of("768") == "3:0"
    assert exit_code_of("15") == "0:15"
    assert exit_code_of("") is None


def test_has_accounting_reads_the_config(bin_dir):
    fake_command(bin_dir, "scontrol", 'echo "AccountingStorageType   = accounting_storage/none"')
    assert SlurmCli().has_accounting() is False


def test_missing_command_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    from slurmkit.errors import SlurmError
    with pytest.raises(SlurmError, match="sbatch not found"):
        SlurmCli().submit("x", tmp_path)
