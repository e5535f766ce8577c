"""sacct output: parsable2 with header, and the real --json samples of the corpus."""
from __future__ import annotations

from pathlib import Path

from slurmkit.accounting import parse_parsable, read_accounting

DATA = Path(__file__).parent / "data"


def test_parsable2_with_header_skips_steps():
    text = ("JobID|JobName|State|ExitCode|Elapsed|NodeList\n"
            "123|run-a|CANCELLED by 5|0:15|1-02:03:04|n[1-2]\n"
            "123.batch|batch|CANCELLED|0:15|00:01:00|n1\n"
            "124|run-b|TIMEOUT|0:0|00:30:00|n3\n")
    jobs = parse_parsable(text)
    assert set(jobs) == {"123", "124"}
    assert jobs["123"].state == "CANCELLED" and jobs["123"].exit_code == "0:15"
    assert jobs["123"].elapsed_s == 86400 + 2 * 3600 + 3 * 60 + 4
    assert jobs["124"].nodelist == "n3"


def test_parsable_trailing_bar_and_no_header():
    assert parse_parsable("JobID|State|\n9|COMPLETED|\n")["9"].state == "COMPLETED"
    assert parse_parsable("9|COMPLETED|\n") == {}


def test_sacct_json_both_schemas():
    old = read_accounting(DATA / "sacct-json-slurm-21.08.8.json")
    assert old["55978384"].state == "REQUEUED" and old["55978384"].elapsed_s == 86301
    assert old["55978384"].nodelist == "cdr896"
    new = read_accounting(DATA / "sacct-json-slurm-23.11.5.json")
    assert new["4"].state == "RUNNING" and new["4"].exit_code == "0:0"
