"""The number lexer: every spelling real logs use."""
from __future__ import annotations

import math

import pytest

from slurmkit.results.parsers.numbers import float_array, int_array, parse_duration_s, parse_number


@pytest.mark.parametrize("text, value", [
    ("9e+3", 9000.0), ("1.000000E-04", 1e-4), ("10,050", 10050.0), ("14.2K", 14200.0),
    ("75.2M", 75.2e6), ("1.2G", 1.2e9), ("13.99%", 13.99), ("-3", -3.0), (".5", 0.5),
    ("794.0", 794.0), ("inf", math.inf), ("-inf", -math.inf), (b"2.5", 2.5),
])
def test_numbers(text, value):
    assert parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["nan", "nan.0", "NaN", "-nan"])
def test_nan_is_a_value(text):
    assert math.isnan(parse_number(text))


@pytest.mark.parametrize("text", ["abc", "", "1.2.3", "e5", ".", None, "1,0", b"\xff\xfe"])
def test_not_numbers_are_none(text):
    assert parse_number(text) is None


@pytest.mark.parametrize("text, seconds", [
    ("9:07:58", 32878), ("878:01:48", 878 * 3600 + 108), ("1-07:27:33", 86400 + 26853),
    ("3h 7m 39s", 11259), ("00:00.004", 0.004), ("43:24:54", 43 * 3600 + 1494),
])
def test_durations(text, seconds):
    assert parse_duration_s(text) == pytest.approx(seconds)


def test_bulk_conversion_falls_back_per_value():
    assert float_array([b"1", None, b"10,050", b"nan.0"]).to_pylist()[:3] == [1.0, None, 10050.0]
    assert int_array([b"9e+3", b"794.0", b"nan", b"inf", b"x"]).to_pylist() == [9000, 794, None, None, None]


def test_values_beyond_the_store_become_null():
    """Issue 11: what a log prints beyond int64 or float64 is null, never an Arrow error."""
    from slurmkit.results.parsers.base import fit_row, unix_times

    assert int_array([b"9223372036854775807", b"4611686018427387904", b"4000000000000000000", b"-9"]).to_pylist() == [
        None, None, 4000000000000000000, -9]
    assert unix_times([b"1e300", b"99999999999999999999", b"1700000000"]).cast("int64").to_pylist() == [
        None, None, 1700000000000]
    row, problems = fit_row({"nodes": 10**23, "lr": math.inf, "final_loss": math.nan, "run_id": "a\ud800",
                             "gbs": 8, "sequence_parallel": True})
    assert row["nodes"] is None and row["lr"] is None and math.isnan(row["final_loss"])
    assert row["run_id"] == "a\ufffd" and row["gbs"] == 8 and row["sequence_parallel"] is True
    assert [p.split(":")[0] for p in problems] == ["nodes", "lr", "run_id"]
