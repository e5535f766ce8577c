"""Hostile input never crashes the parser (issue 11): for every log format, logs of records
shaped like the real ones whose values are drawn from what breaks parsers (NaN, inf, numbers
beyond int64 or float64, wrong JSON types, deep nesting, very long lines, surrogates and invalid
UTF-8), with provenance, failure and noise lines between them. Parsing them raises nothing but
slurmkit's own error, and what would reach the store fits its types.

Counts: the default run tries SLURMKIT_FUZZ_EXAMPLES logs per format (CI_EXAMPLES, bounded
time); ``pytest -m nightly`` runs NIGHTLY_EXAMPLES per format (docs/parsing.md, "Fuzzing").
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slurmkit.errors import ResultsError, SlurmkitError
from slurmkit.results import store
from slurmkit.results.parse import RunContext, parse_file
from slurmkit.results.parsers.logfile import STEP_SCHEMA, read_log
from slurmkit.results.parsers.numbers import parse_duration_s, parse_number
from slurmkit.rundir import PARAMS

# numbers as logs print them, and as they should never be printed
_NUMBER_WORDS = [
    "nan", "NaN", "nan.0", "-nan", "inf", "-inf", "Infinity", "-Infinity", "1e400", "-1e400",
    "1e308", "1.7976931348623157e308", "5e-324", "1e-400", "9223372036854775807",
    "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
    "18446744073709551616", "1" * 400, "9" * 5000, "0x10", "1_000", "\u0661\u0662", "\uff11\uff12",
    "", " ", "1e", "e5", ".", "-", "+", "1.2.3", "10,050", "14.2K", "75.2M", "1.2G", "9e99T",
    "13.99%", "0", "-0", "-1", "00000", "1e+3", "1.000000E-04", "+.5e-3",
]
SURROGATE_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)


def numbers() -> st.SearchStrategy[str]:
    """A numeric token: ordinary, extreme, non-finite, malformed or plain text."""
    return st.one_of(
        st.sampled_from(_NUMBER_WORDS),
        st.integers(-(10**30), 10**30).map(str),
        st.integers(0, 400).map(lambda k: str(10**k)),
        st.floats().map(repr),
        st.floats().map(lambda f: f"{f:e}"),
        st.floats(0, 1e6).map(lambda f: f"{f:.4f}"),
        SURROGATE_TEXT,
    )


def digits() -> st.SearchStrategy[str]:
    """An unsigned integer token as a counter prints it, up to far beyond int64."""
    return st.one_of(st.integers(0, 10**6).map(str), st.integers(0, 10**40).map(str),
                     st.sampled_from(["0", "9223372036854775807", "9223372036854775808", "9" * 300]))


def _fields(pairs: list[tuple[str, st.SearchStrategy[str]]], sep: str) -> st.SearchStrategy[str]:
    """``key<sep>value`` pieces, each present or not, in the given order or shuffled."""
    chosen = st.tuples(*[st.tuples(st.booleans(), st.just(k), v) for k, v in pairs])
    kept = chosen.map(lambda items: [f"{k}{sep}{v}" for keep, k, v in items if keep])
    return st.one_of(kept, kept.flatmap(st.permutations))


TIMESTAMPS = st.one_of(
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
    st.sampled_from(["9999-99-99 99:99:99", "0000-00-00 00:00:00", "2026-02-30 25:61:61",
                     "1970-01-01 00:00:00"]),
    st.integers(0, 10**6).map(lambda n: f"2026-01-01 00:00:00,{n}"))


def megatron_record() -> st.SearchStrategy[bytes]:
    keys = [("consumed samples", numbers()), ("elapsed time per iteration (ms)", numbers()),
            ("elapsed time per iteration (s)", numbers()),
            ("throughput per GPU (TFLOP/s/GPU)", numbers()), ("learning rate", numbers()),
            ("global batch size", numbers()), ("lm loss", numbers()), ("loss", numbers()),
            ("loss scale", numbers()), ("grad norm", numbers()), ("TFLOPs", numbers())]
    return st.builds(
        lambda ts, step, total, fields, wrap: (
            f" [{ts}] iteration {step:>8}/ {total} | " + " | ".join(fields) + " |"
        ).replace(" | ", " |\n  " if wrap else " | ").encode("utf-8", "surrogatepass"),
        TIMESTAMPS, digits(), digits(), _fields(keys, ": "), st.booleans())


def nemo1_record() -> st.SearchStrategy[bytes]:
    keys = [("v_num", numbers()), ("reduced_train_loss", numbers()), ("global_step", numbers()),
            ("consumed_samples", numbers()), ("train_step_timing in s", numbers()),
            ("val_loss", numbers())]
    return st.builds(
        lambda n, total, fields, end: (
            f"Epoch 0:   6%|██ | {n}/{total} [6:28:43<94:39:17, 1.37it/s, " + ", ".join(fields)
            + end).encode("utf-8", "surrogatepass"),
        digits(), digits(), _fields(keys, "="), st.sampled_from(["]\r", "]\n", "\r", ""]))


def nemo2_record() -> st.SearchStrategy[bytes]:
    keys = [(k, numbers()) for k in ("lr", "global_batch_size", "global_step", "consumed_samples",
                                     "reduced_train_loss", "train_step_timing in s",
                                     "TFLOPS_per_GPU", "max_memory_reserved", "val_loss")]
    return st.builds(
        lambda e, i, total, fields: (f"Training epoch {e}, iteration {i}/{total} | "
                                     + " | ".join(fields)).encode("utf-8", "surrogatepass"),
        digits(), digits(), digits(), _fields(keys, ": "))


_ANSI = st.sampled_from(["", "\x1b[31m", "\x1b[39m", "[38;2;180;60;0m", "\x1b[", "[3"])


def torchtitan_record() -> st.SearchStrategy[bytes]:
    value = st.tuples(_ANSI, numbers(), _ANSI).map("".join)
    return st.builds(
        lambda ts, step, loss, grad, mem, pct, tps, tflops, mfu: (
            f"[titan] {ts} - root - INFO - step: {step}  loss: {loss}  grad_norm: {grad}  "
            f"memory: {mem}GiB({pct}%)  tps: {tps}  tflops: {tflops}  mfu: {mfu}%"
        ).encode("utf-8", "surrogatepass"),
        TIMESTAMPS, digits(), value, value, numbers(), numbers(), numbers(), value, value)


def hf_record() -> st.SearchStrategy[bytes]:
    keys = [("'grad_norm'", numbers()), ("'learning_rate'", numbers()), ("'epoch'", numbers()),
            ("'global_step/max_steps'", st.tuples(digits(), digits()).map(lambda t: f"'{t[0]}/{t[1]}'")),
            ("'train_tokens_per_second'", numbers()), ("'train_loss'", numbers())]
    return st.builds(
        lambda loss, fields: ("{'loss': " + loss + "".join(", " + f for f in fields) + "}")
        .encode("utf-8", "surrogatepass"),
        numbers(), _fields(keys, ": "))


def trainer_record() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.builds(
            lambda step, total, v: (
                f"SKTRAIN step={step}/{total} loss={v[0]} lr={v[1]} grad_norm={v[2]} "
                f"step_time_s={v[3]} tokens_per_s_per_gpu={v[4]} time_unix={v[5]}"
            ).encode("utf-8", "surrogatepass"),
            digits(), digits(), st.tuples(*[numbers()] * 5, st.one_of(numbers(), digits()))),
        st.builds(lambda n, loss: f"SKTRAIN done steps={n} final_loss={loss}".encode("utf-8", "surrogatepass"),
                  numbers(), numbers()))


# JSON of every type, with the values that break readers: NaN, inf, ints beyond int64,
# surrogate escapes, nesting
_JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                         st.integers(0, 300).map(lambda k: 10**k), st.floats(), SURROGATE_TEXT)
JSON_VALUES = st.recursive(_JSON_SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(SURROGATE_TEXT, inner, max_size=4)), max_leaves=12)


def _dumps(value: object) -> str:
    return json.dumps(value)  # NaN/Infinity literals and \\ud800 escapes included


def _deep(depth: int, opener: str) -> str:
    """``depth`` nested lists or objects around a 1 (readers recurse: Python's json stops at ~1000)."""
    if opener == "[":
        return "[" * depth + "1" + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


DEEP = st.tuples(st.one_of(st.integers(1, 3000), st.sampled_from([10**5])),
                 st.sampled_from(["[", "{"])).map(lambda t: _deep(*t))
# a JSON value as text: from the value strategy, or raw text no encoder writes
JSON_TEXT = st.one_of(JSON_VALUES.map(_dumps), DEEP, st.sampled_from(["9" * 5000, "-" + "9" * 4400, "1e999",
                                                                      "NaN", "-Infinity", '"\\ud800"', "[", "{"]))


def _json_object(pairs: list[tuple[str, st.SearchStrategy[str]]]) -> st.SearchStrategy[str]:
    """A JSON object as text whose listed keys are each present or not, with values given as
    JSON text (so text no encoder writes, like deep nesting, goes in too)."""
    return _fields([(json.dumps(k), v) for k, v in pairs], ": ").map(lambda f: "{" + ", ".join(f) + "}")


_MLLOG_KEYS = st.one_of(st.sampled_from(["tracked_stats", "global_batch_size", "run_start", "run_stop",
                                         "eval_accuracy", "train_samples"]), JSON_VALUES)
_MLLOG_METADATA = st.one_of(
    _json_object([("step", JSON_TEXT), ("status", st.one_of(st.sampled_from(['"success"', '"aborted"']), JSON_TEXT)),
                  ("file", JSON_TEXT)]),
    JSON_TEXT)
_MLLOG_VALUE = st.one_of(_json_object([("train_step_timing", JSON_TEXT), ("loss", JSON_TEXT)]), JSON_TEXT)


def mllog_record() -> st.SearchStrategy[bytes]:
    event = _json_object([("namespace", JSON_TEXT), ("time_ms", JSON_TEXT),
                          ("event_type", JSON_TEXT), ("key", _MLLOG_KEYS.map(_dumps)),
                          ("value", _MLLOG_VALUE), ("metadata", _MLLOG_METADATA)])
    return st.one_of(event, JSON_TEXT).map(lambda text: (":::MLLOG " + text).encode("utf-8", "surrogatepass"))


def _param_values() -> st.SearchStrategy[str]:
    return st.one_of(JSON_TEXT, st.sampled_from(['"abc"', "99999999999999999999999", "-1", "1e400",
                                                 "true", "null", "1.5", '"8"']))


def provenance_record() -> st.SearchStrategy[bytes]:
    params = st.one_of(
        _json_object([(key, _param_values()) for key in list(PARAMS)[:20]]),
        _json_object([(key, _param_values()) for key in list(PARAMS)[20:]]),
        JSON_TEXT)
    text = st.one_of(st.sampled_from(['"run-1"', '"slurm-7"', '""']), JSON_TEXT)
    record = _json_object([("schema_version", JSON_TEXT), ("run_id", text), ("params", params),
                           ("job_id", st.one_of(st.sampled_from(['"123"', "123", "99999999999999999999999"]), JSON_TEXT)),
                           ("nodelist", text), ("driver_version", text), ("nccl_version", text),
                           ("cuda_version", text)])
    return st.tuples(st.sampled_from(["", "0: ", "[rank0]: "]), st.one_of(record, JSON_TEXT)).map(
        lambda t: (t[0] + "SLURMKIT_PROVENANCE " + t[1]).encode("utf-8", "surrogatepass"))


_FAILURE_LINES = [
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    "slurmstepd: error: Detected 1 oom-kill event(s) in StepId=1.0",
    "srun: error: node1: task 3: Out Of Memory",
    "[rank0]:[E ProcessGroupNCCL.cpp:1] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1)",
    "torch.distributed.DistBackendError: NCCL error in: ../nccl.cpp:1, unhandled system error",
    "slurmstepd: error: *** JOB 1 ON n CANCELLED AT 2020-01-01T00:00:00 DUE TO TIME LIMIT ***",
    "srun: error: node1: task 0: Exited with exit code 1",
    "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:",
    "*** JOB 12 ON node CANCELLED AT 2026 ***",
    "pyxis: importing docker image: failed",
    "[after training is done]", "Trainer.fit` stopped: `max_steps=10` reached.",
]


def failure_line() -> st.SearchStrategy[bytes]:
    return st.builds(lambda prefix, line, junk: (prefix + line + junk).encode("utf-8", "surrogatepass"),
                     st.sampled_from(["", " 0: ", "[rank3]: ", "\x1b[31m"]), st.sampled_from(_FAILURE_LINES),
                     SURROGATE_TEXT)


NOISE = st.one_of(st.binary(max_size=200), SURROGATE_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
                  st.integers(1, 20_000).map(lambda n: b"x" * n))  # long lines, cut by small ranges
SEPARATORS = st.sampled_from([b"\n", b"\n", b"\r", b"\r\n", b"", b"\n 0: ", b"\n[default3]:", b"\x00"])


def log_of(record: st.SearchStrategy[bytes], max_records: int = 12) -> st.SearchStrategy[bytes]:
    """One log's bytes: mostly ``record``s, with noise, provenance and failure lines between them."""
    piece = st.one_of(record, record, record, NOISE, provenance_record(), failure_line())
    return st.lists(st.tuples(piece, SEPARATORS), min_size=1, max_size=max_records).map(
        lambda parts: b"".join(p + s for p, s in parts))


# every format's records, and the lines every log may hold (with trainer records, so the run
# has steps to go with them)
RECORDS = {
    "megatron": megatron_record, "nemo": nemo1_record, "nemo2": nemo2_record,
    "torchtitan": torchtitan_record, "hf": hf_record, "trainer": trainer_record,
    "mllog": mllog_record,
    "provenance": lambda: st.one_of(provenance_record(), trainer_record()),
    "failures": lambda: st.one_of(failure_line(), trainer_record()),
}
FORMAT_OF = {"provenance": "trainer", "failures": "trainer"}


# --- whole logs: bytes, samples, huge lines ------------------------------------------------

SAMPLES = [
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

pieces = st.one_of(st.binary(max_size=300), st.sampled_from(SAMPLES),
                   st.sampled_from(SAMPLES).map(lambda r: r[: len(r) // 2]))


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
@given(st.sampled_from(SAMPLES), st.integers(100_000, 2_000_000))
def test_huge_lines(record, size):
    log = _parse(b"x" * size + record + b"y" * size, range_bytes=2**16)
    assert log.warnings  # the long line is reported, not fatal


@given(st.text(max_size=40))
def test_lexers_never_raise(text):
    parse_number(text)
    parse_duration_s(text)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(SAMPLES), min_size=1, max_size=12))
def test_records_to_store_end_to_end(parts):
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


# --- the checks ---------------------------------------------------------------------------

CI_EXAMPLES = int(os.environ.get("SLURMKIT_FUZZ_EXAMPLES", 300))
NIGHTLY_EXAMPLES = 10_000
_INT64 = 2**63
_SIGNAL_COLUMNS = {"loss", "grad_norm", "final_loss"}  # NaN/inf there is a diverged run: kept


def _parse_hostile(data: bytes, fmt: str, range_bytes: int) -> None:
    """Parse one hostile log as `slurmkit parse` does (read, identify, derive the runs row)
    and check what would be written."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "job-12.out"
        path.write_bytes(data)
        try:
            summary, item = parse_file(path, fmt, None, RunContext(), range_bytes=range_bytes)
        except SlurmkitError:
            return  # the project's own error: one line, exit 2
    if item is not None:
        _assert_fits_store(*item)


def _assert_fits_store(run: dict[str, Any], steps: pa.Table) -> None:
    """Every value is of a type the store holds: int64, finite floats (NaN/inf only as the loss
    signal), valid UTF-8 text, timestamps a datetime can hold."""
    for key, value in run.items():
        if isinstance(value, int) and not isinstance(value, bool):
            assert -_INT64 <= value < _INT64, (key, value)
        elif isinstance(value, float):
            assert math.isfinite(value) or key in _SIGNAL_COLUMNS, (key, value)
        elif isinstance(value, str):
            value.encode("utf-8")  # no lone surrogates
        else:
            assert value is None or isinstance(value, bool), (key, value)
    assert steps.schema.types == STEP_SCHEMA.types
    for name in steps.column_names:
        if pa.types.is_floating(steps.schema.field(name).type) and name not in _SIGNAL_COLUMNS:
            values = steps.column(name).drop_null().to_pylist()
            assert all(math.isfinite(v) for v in values), name
    steps.column("time").to_pylist()  # every timestamp converts to a datetime


def _fuzz(name: str, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(log=log_of(RECORDS[name]()), forced=st.booleans(),
           range_bytes=st.sampled_from([64, 1000, 4096, 2**20]))
    def hostile_logs(log: bytes, forced: bool, range_bytes: int) -> None:
        _parse_hostile(log, FORMAT_OF.get(name, name) if forced else "auto", range_bytes)

    hostile_logs()


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_hostile_records_never_crash(name: str) -> None:
    _fuzz(name, CI_EXAMPLES)


@pytest.mark.nightly
@pytest.mark.parametrize("name", sorted(RECORDS))
def test_hostile_records_never_crash_nightly(name: str) -> None:
    _fuzz(name, NIGHTLY_EXAMPLES)


@settings(max_examples=int(os.environ.get("SLURMKIT_FUZZ_STORE_EXAMPLES", 40)), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.one_of(*(log_of(record()) for record in RECORDS.values())), min_size=1, max_size=3))
def test_hostile_logs_reach_the_store(logs: list[bytes]) -> None:
    """Hostile logs of every format through parse_paths into the store: it never raises on
    their values, and every log understood is one run there."""
    from slurmkit.results.parse import parse_paths

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, data in enumerate(logs):
            paths.append(Path(tmp) / f"job-{i}.out")
            paths[-1].write_bytes(data)
        done: list[dict[str, Any]] = []
        try:
            parse_paths(paths, Path(tmp) / "results", on_done=done.append)
        except ResultsError:
            pass  # files with nothing recognisable: listed, the others stored
        stored = [s["run_id"] for s in done if s["understood"]]
        if stored:
            runs = store.read_runs(Path(tmp) / "results")
            assert sorted(runs["run_id"]) == sorted(set(stored))
