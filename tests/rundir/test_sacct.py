"""slurmkit.rundir.sacct: parsable2 with header (collect's sacct.txt, status's live query), and
the real --json samples of the corpus (tests/parse/data/SOURCES.md)."""
from __future__ import annotations

from pathlib import Path

import pytest

from slurmkit.errors import RunDirError
from slurmkit.rundir import elapsed_s, read_sacct, sacct_jobs, sacct_rows

DATA = Path(__file__).parents[1] / "parse" / "data"


def test_parsable2_with_header_skips_steps():
    text = ("JobID|JobName|State|ExitCode|Elapsed|NodeList\n"
            "123|run-a|CANCELLED by 5|0:15|1-02:03:04|n[1-2]\n"
            "123.batch|batch|CANCELLED|0:15|00:01:00|n1\n"
            "124|run-b|TIMEOUT|0:0|00:30:00|n3\n")
    jobs = sacct_jobs(text)
    assert set(jobs) == {"123", "124"}
    assert jobs["123"].state == "CANCELLED" and jobs["123"].exit_code == "0:15"
    assert jobs["123"].elapsed_s == 86400 + 2 * 3600 + 3 * 60 + 4
    assert jobs["124"].nodelist == "n3" and jobs["124"].name == "run-b"


def test_placeholder_rows_and_unassigned_nodes():
    text = ("JobID|JobName|State|ExitCode|NodeList\n"
            "7|alpha|FAILED|3:0|node1\n7.batch|batch|FAILED|3:0|node1\n"
            "8|allocation|COMPLETED|0:0|node2\n"
            "9|gamma|CANCELLED by 0|0:0|None assigned\n")
    jobs = sacct_jobs(text)
    assert sorted(jobs) == ["7", "9"]  # 8 has only the placeholder row sacct shows as a job ends
    assert jobs["9"].state == "CANCELLED" and jobs["9"].nodelist is None


def test_parsable_trailing_bar_and_rows():
    assert sacct_jobs("JobID|State|\n9|COMPLETED|\n")["9"].state == "COMPLETED"
    assert sacct_rows("") == [] and sacct_rows("A|B\n") == []
    assert sacct_rows("A|B\n1|2\n3\n") == [{"A": "1", "B": "2"}, {"A": "3"}]


def test_bad_sacct_text_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "sacct.txt"
    path.write_text("JobID|State\n9|COMPLETED\n10|FAILED|extra\n")
    with pytest.raises(RunDirError) as info:
        read_sacct(path)
    assert info.value.lines() == [f"error: {path}:3: sacct row has 3 fields, its header 2 (hint: collect it again)"]
    with pytest.raises(RunDirError, match="without its header line"):
        sacct_jobs("9|COMPLETED|\n10|FAILED|\n")
    path.write_text('{"jobs": [')
    with pytest.raises(RunDirError, match="unreadable sacct JSON"):
        read_sacct(path)


def test_elapsed():
    assert elapsed_s("00:10:00") == 600 and elapsed_s("1-00:00:01") == 86401
    assert elapsed_s("05:30.5") == 330.5
    assert elapsed_s("") is None and elapsed_s("INVALID") is None and elapsed_s(None) is None


def test_sacct_json_both_schemas():
    old = read_sacct(DATA / "sacct-json-slurm-21.08.8.json")
    assert old["55978384"].state == "REQUEUED" and old["55978384"].elapsed_s == 86301
    assert old["55978384"].nodelist == "cdr896"
    new = read_sacct(DATA / "sacct-json-slurm-23.11.5.json")
    assert new["4"].state == "RUNNING" and new["4"].exit_code == "0:0"


def test_empty_last_fields_of_parsable2():
    rows = sacct_rows("JobID|State|ConsumedEnergy\n9|COMPLETED|\n")
    assert rows == [{"JobID": "9", "State": "COMPLETED", "ConsumedEnergy": ""}]
