"""``slurmkit estimate`` on a shipped experiment: every point, labelled ESTIMATED, in each format."""
from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from slurmkit.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, ["estimate", *args])


def test_the_table_says_estimated_and_shows_every_point():
    result = run("llama2-70b-pretrain", "--target-hours", "2")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("ESTIMATED, not measured")
    assert "adapters per node" in result.output and "sizing:" in result.output


def test_json_and_csv_carry_the_derived_label_and_the_adapter_comparison():
    data = json.loads(run("llama2-70b-pretrain", "--format", "json").output)
    assert data["kind"] == "derived" and data["points"]
    assert all(p["kind"] == "derived" and p["step_time_s"] > 0 for p in data["points"])
    multi = [a for a in data["adapters"] if a["nodes"] > 1]
    assert multi and all(a["step_4_s"] >= a["step_8_s"] for a in multi)
    rows = list(csv.DictReader(io.StringIO(run("llama2-70b-pretrain", "--format", "csv").output)))
    assert len(rows) == len(data["points"]) and {r["kind"] for r in rows} == {"derived"}


def test_a_bad_target_is_a_usage_error():
    result = run("llama2-70b-pretrain", "--target-hours", "0")
    assert result.exit_code == 2 and "--target-hours" in result.output


def test_a_token_budget_alone_gives_its_hours_on_each_point():
    data = json.loads(run("llama2-70b-pretrain", "--tokens", "1e9", "--format", "json").output)
    for point in data["points"]:
        assert point["nodes_needed"] == point["nodes"]
        assert point["hours_needed"] * 3600 * point["tokens_per_s_per_gpu"] * point["gpus"] == pytest.approx(1e9)
    assert "sizing: hours for 1e+09 tokens" in run("llama2-70b-pretrain", "--tokens", "1e9").output


def test_an_unknown_experiment_is_one_line_and_exit_2():
    from slurmkit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["estimate", "no-such-experiment"])
    assert exit_info.value.code == 2
