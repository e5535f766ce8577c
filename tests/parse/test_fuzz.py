"""Hostile input never crashes the parser: arbitrary bytes, invalid UTF-8, huge and truncated
lines, NaN/inf, mangled records. It parses what is valid and keeps going."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slurmkit.results.parsers.logfile import read_log
from slurmkit.results.parsers.numbers import parse_duration_s, parse_number

RECORDS = [
    b" iteration       10/     100 | consumed samples: 40 | elapsed time per iteration (ms): 356.2 | lm loss: nan | grad norm: inf |\n",
    b"Epoch 0: 6%|##| 32/500 [6:28<94:39, v_num=1, reduced_train_loss=nan.0, global_step=3.2e+4, train_step_timing in s=0.6]",
    b"Training epoch 0, iteration 3/9 | lr: 0.0006 | reduced_train_loss: inf | train_step_timing in s: 1e400\n",
    b"[titan] 2026-02-24 19:46:17,508 - root - INFO - step:  4  loss:  nan  tps: 10,050  tflops: 1e999\n",
    b"{'loss': nan, 'grad_norm': inf, 'learning_rate': 1e-4, 'epoch': 0.6}\n",
    b':::MLLOG {"time_ms": 1, "key": "tracked_stats", "value": {"train_step_timing": NaN}, "metadata": {"step": 99999999999999999999}}\n',
    b"SKTRAIN step=1/2 loss=nan lr=1 grad_norm=inf step_time_s=-1 tokens_per_s_per_gpu=1e308 time_unix=1e300\n",
    b"SLURMKIT_PROVENANCE {not json\n",
    b"slurmstepd: error: *** JOB 1 ON n CANCELLED AT 2020 DUE TO TIME LIMIT ***\r",
    b"\xff\xfe\x00\x1b[31m\r\r\n",
]

pieces = st.one_of(st.binary(max_size=300), st.sampled_from(RECORDS),
                   st.sampled_from(RECORDS).map(lambda r: r[: len(r) // 2]))


def _parse(data: bytes, range_bytes: int = 64):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.out"
        path.write_bytes(data)
        return read_log(path, range_bytes=range_bytes)


@settings(max_examples=int(os.environ.get("SLURMKIT_FUZZ_EXAMPLES", 150)), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(pieces, max_size=30), st.integers(16, 4096))
def test_any_bytes_parse_without_crashing(parts, range_bytes):
    log = _parse(b"".join(parts), range_bytes)
    steps = log.steps.column("step").to_pylist()
    assert all(isinstance(s, int) for s in steps)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(RECORDS), st.integers(100_000, 2_000_000))
def test_huge_lines(record, size):
    log = _parse(b"x" * size + record + b"y" * size, range_bytes=2**16)
    assert log.warnings  # the long line is reported, not fatal


@given(st.text(max_size=40))
def test_lexers_never_raise(text):
    parse_number(text)
    parse_duration_s(text)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(RECORDS), min_size=1, max_size=12))
def test_records_to_store_end_to_end(parts):
    from slurmkit.errors import ResultsError
    from slurmkit.results import store
    from slurmkit.results.parse import parse_paths

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "job-12.out"
        log.write_bytes(b"".join(parts))
        try:
            summaries = parse_paths([log], Path(tmp) / "results")
        except ResultsError:  # nothing recognisable: reported, not crashed
            return
        runs = store.read_runs(Path(tmp) / "results")
        assert list(runs["run_id"]) == ["job-12"] and summaries[0]["status"] in store.RUN_STATUSES
