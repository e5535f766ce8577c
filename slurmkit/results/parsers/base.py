"""What every log format shares: the Format interface, the standard step columns, and the
small text tools (ANSI and rank-label stripping, timestamps) the formats use.

A format finds its records with ONE compiled bytes regex that starts with a literal (so the
regex engine skips quickly to candidates) run with ``finditer`` over a whole range of the file,
never line by line: records glued onto progress bars, interleaved ranks and ``\\r``-redrawn
bars need no line splitting, and rank labels before a record need no stripping. Every group of
the pattern is named; the raw byte tokens are converted column-wise with Arrow.

Formats with long records (Megatron) go further: ``pattern`` only locates each record (no
groups) and ``fields``, RE2 patterns (one per field), pull the values out of all records of a
range at once with Arrow's ``extract_regex``: no Python work per record and per field.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slurmkit.results.parsers.numbers import fit_float, fit_int, float_array, int_array, text_array

# The step columns every format produces (a subset of store.STEPS_SCHEMA; the driver adds
# run_id, restart, source_file and source_line).
STEP_TYPES: dict[str, pa.DataType] = {
    "step": pa.int64(), "time": pa.timestamp("ms", tz="UTC"), "step_time_s": pa.float64(),
    "loss": pa.float64(), "lr": pa.float64(), "grad_norm": pa.float64(),
    "consumed_samples": pa.int64(), "tokens_per_s_per_gpu": pa.float64(),
    "tflops_per_gpu": pa.float64(), "mem_gib": pa.float64(),
}

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
# ANSI codes whose ESC byte was lost in a copy/paste: "[31m", "[38;2;180;60;0m", "[39m".
BARE_ANSI = re.compile(rb"\[(?:\d{1,3};)*\d{0,3}m")
# srun -l " 0: ", torchrun "[default7]:", torch>=2.2 "[rank0]:", NeMo-Run "<task>/0 [default0]:",
# a markdown quote "> " in pasted logs.
RANK_LABEL = re.compile(r"^(?:> ?)?(?:\s*\d+: |\[default\d+\]:|\[rank\d+\]:|\S+/\d+ \[default\d+\]:)")
# quick_fields' fixed cost (about 15 Arrow and numpy calls, plus a few per field) pays off
# from about 2000 records: on 500 records it is the regexes' speed, give or take noise
QUICK_MIN_RECORDS = 2048
DETECT_BYTES = 256 * 2**10  # detection looks at the start of a range first
_TIMESTAMP = r"(?P<ts>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)(?:[,.](?P<frac>\d{1,6}))?"


def strip_rank_label(line: str) -> str:
    """A log line without its launcher's rank label (``[rank3]: x`` -> ``x``)."""
    return RANK_LABEL.sub("", line, count=1)


class Format:
    """One log format. Subclasses set the class attributes and override ``columns``."""

    name: str = ""
    keyword: bytes = b""          # in every record: ranges without it are skipped
    pattern: re.Pattern[bytes]    # one record; every group named
    lookbehind: int = 0           # bytes before each match handed over as the "pre" column
    done_markers: tuple[bytes, ...] = ()  # text printed only when training finished
    fields: tuple[str, ...] | None = None  # RE2 patterns with named groups, searched in each
    #                                        record's text (one small pattern per field is faster)
    strip_bare_ansi: bool = False
    splittable: bool = True       # no state carried between ranges: halves can be parsed apart
    # quick_fields' arguments after the records (piece separator, space before keys, key-value
    # separator, value pattern, specs), used from quick_min_records records; fields[0], the
    # record's head, is always read by its regex
    quick: tuple[str, str, str, str, tuple[QuickSpec, ...]] | None = None
    quick_min_records: int = QUICK_MIN_RECORDS

    def __init__(self) -> None:
        # run-level facts a format reads off its records (status, time_to_train_s...)
        self.facts: dict[str, Any] = {}

    def detect(self, sample: bytes | bytearray) -> int:
        """How many records of this format the sample holds (0: not this format)."""
        if self.keyword not in sample:
            return 0
        return sum(1 for _ in zip(range(50), self.pattern.finditer(self.clean(sample))))

    def has_record(self, sample: bytes | bytearray) -> bool:
        """Whether the sample holds a record of this format (detect(sample) > 0)."""
        return self.keyword in sample and self.pattern.search(self.clean(sample)) is not None

    def clean(self, chunk: bytes | bytearray) -> bytes | bytearray:
        """Remove colour codes; newlines are kept so line numbers stay right."""
        if b"\x1b" in chunk:
            chunk = ANSI.sub(b"", chunk)
        if self.strip_bare_ansi and b"m" in chunk:
            chunk = BARE_ANSI.sub(b"", chunk)
        return chunk

    def scan(self, chunk: bytes | bytearray) -> dict[str, Any]:
        """Raw tokens of every record in a range: column name -> list or Arrow string array
        (``pos`` = byte offsets, ``pre`` = the bytes just before each record)."""
        if self.fields is not None:
            return self._scan_fields(chunk)
        names = ["pos"] + sorted(self.pattern.groupindex, key=lambda name: self.pattern.groupindex[name])
        if self.lookbehind:
            back = self.lookbehind
            rows = [(m.start(), *m.groups(), bytes(chunk[max(0, m.start() - back):m.start()]))
                    for m in self.pattern.finditer(chunk)]
            names.append("pre")
        else:
            rows = [(m.start(), *m.groups()) for m in self.pattern.finditer(chunk)]
        if not rows:
            return {}
        return dict(zip(names, (list(c) for c in zip(*rows))))

    def _scan_fields(self, chunk: bytes | bytearray) -> dict[str, Any]:
        spans = np.array([m.span() for m in self.pattern.finditer(chunk)], np.int64)
        if not len(spans):
            return {}
        starts, ends = spans[:, 0], spans[:, 1]
        # "pre" spans end where a record starts and never reach into the record before
        pre_starts = np.maximum(starts - self.lookbehind, np.concatenate(([0], ends[:-1])))
        pre, records = _slices(chunk, pre_starts, starts, ends)
        raw: dict[str, Any] = {"pos": starts, "pre": pre}
        raw.update(self.extract_fields(text_array(records)))
        return raw

    def extract_fields(self, records: pa.Array) -> dict[str, pa.Array]:
        """Every group of every ``fields`` pattern as a column over ``records`` (null where
        the pattern does not match): by quick_fields when the format has ``quick`` and there
        are enough records, else by the regexes (same result)."""
        if self.quick is None or self.fields is None or len(records) < self.quick_min_records:
            return self.fields_by_regex(records)
        raw = regex_fields(records, self.fields[0])
        raw.update(quick_fields(records, *self.quick))
        return raw

    def fields_by_regex(self, records: pa.Array) -> dict[str, pa.Array]:
        """extract_fields by one regex search per ``fields`` pattern (the reference)."""
        raw: dict[str, pa.Array] = {}
        for fields in self.fields or ():
            raw.update(regex_fields(records, fields))
        return raw

    def columns(self, raw: dict[str, list[Any]]) -> dict[str, pa.Array]:
        """Standard step columns (STEP_TYPES names, all optional) from raw tokens."""
        raise NotImplementedError

    def total_steps(self, raw: dict[str, list[Any]]) -> int | None:
        """The run's target step count as the log states it (``n/N``), when it does."""
        totals = raw.get("total")
        if totals is None or len(totals) == 0:
            return None
        value = int_array(totals[-1:])[0].as_py()
        return value if value and value > 0 else None


def regex_fields(records: pa.Array, pattern: str) -> dict[str, pa.Array]:
    """The named groups of an RE2 ``pattern``'s first match in each record (Arrow)."""
    parts = pc.extract_regex(records, pattern)
    return {f.name: pc.struct_field(parts, [i]) for i, f in enumerate(parts.type)}


REGEX_SPACE = " \t\n\f\r"  # what RE2's \s matches


# (field regex, value group, canonical keys, unit group and the unit each key implies)
QuickSpec = tuple[str, str, tuple[str, ...], "tuple[str, tuple[str, ...]] | None"]


def quick_fields(records: pa.Array, sep: str, space: str, kv: str, value: str,
                 specs: tuple[QuickSpec, ...]) -> dict[str, pa.Array]:
    """Fields of every record found without a regex search per field: records are cut into
    ``sep``-separated pieces (leading ``space`` removed) and each piece at its first ``kv``;
    one hash lookup finds which canonical key (``keys`` of a spec, each ending in ``kv``)
    every piece starts with, and one RE2 ``value`` pattern (group ``v``) reads the values
    after the keys. A field's value is that of its record's first piece with one of its keys
    (``unit``: a group named unit[0] holding unit[1][i] for keys[i]). Records where that
    finds no value get the field's regex, whose groups the result has: the result equals the
    regexes' (tests/parse check it on generated records)."""
    lists = pc.split_pattern(records, sep)
    pieces = pc.utf8_ltrim(pc.list_flatten(lists), characters=space)
    parents = pc.list_parent_indices(lists).to_numpy()
    halves = pc.split_pattern(pieces, kv, max_splits=1)
    offsets = halves.offsets.to_numpy()
    first, has_value = offsets[:-1] - offsets[0], np.diff(offsets) == 2
    parts = pc.list_flatten(halves)
    names = [key[:-len(kv)] for _, _, keys, _ in specs for key in keys]
    which = pc.fill_null(pc.index_in(parts.take(pa.array(first)), value_set=pa.array(names)), -1)
    which = np.where(has_value, which.to_numpy(), -1)  # a piece without kv has no value
    hit = np.flatnonzero(which >= 0)
    values = pc.struct_field(pc.extract_regex(parts.take(pa.array(first[hit] + 1)), value), [0])
    found: dict[str, pa.Array] = {}
    base = 0
    for pattern, group, keys, unit in specs:
        key_index = which[hit] - base
        mine = np.flatnonzero((key_index >= 0) & (key_index < len(keys)))
        base += len(keys)
        rows, first_of_row = np.unique(parents[hit[mine]], return_index=True)
        mine = mine[first_of_row]  # the first piece with one of the keys in each record
        field = {group: values.take(pa.array(mine))}
        if unit is not None:
            field[unit[0]] = pa.array(np.array(unit[1], dtype=object)[key_index[mine]], pa.string())
        found.update(_with_regex_fallback(records, rows, field, pattern))
    return found


def _with_regex_fallback(records: pa.Array, rows: np.ndarray, found: dict[str, pa.Array],
                         pattern: str) -> dict[str, pa.Array]:
    """Columns over all records from ``found`` (values of records ``rows``, the field's main
    group first), the field's regex deciding for every other record and where the value is
    null."""
    values = next(iter(found.values()))
    where = np.full(len(records), -1, np.int64)
    where[rows] = np.arange(len(rows))
    where[rows[~pc.is_valid(values).to_numpy(zero_copy_only=False)]] = -1
    missing = np.flatnonzero(where < 0)
    if len(missing):
        regex = regex_fields(records.take(pa.array(missing)), pattern)
        where[missing] = len(rows) + np.arange(len(missing))
        found = {name: pa.concat_arrays([found[name].cast(pa.string()), regex[name].cast(pa.string())])
                 for name in regex}
    index = pa.array(where)
    return {name: column.take(index) for name, column in found.items()}


def _slices(chunk: bytes | bytearray, pre_starts: np.ndarray, starts: np.ndarray,
            ends: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """chunk[pre_starts[i]:starts[i]] and chunk[starts[i]:ends[i]] as two binary arrays,
    copied out of the range by one Arrow ``take`` each (no Python bytes per record). The
    spans are in order and do not overlap: they are the elements of one binary array laid
    over the range (pre, record, gap to the next pre, ...)."""
    offsets = np.empty(3 * len(starts), np.int32)
    offsets[0::3], offsets[1::3], offsets[2::3] = pre_starts, starts, ends
    laid = pa.Array.from_buffers(pa.binary(), len(offsets) - 1,
                                 [None, pa.py_buffer(offsets), pa.py_buffer(chunk)])
    every = np.arange(0, len(offsets) - 1, 3)
    return laid.take(pa.array(every)), laid.take(pa.array(every + 1))


def timestamps(pre: list[bytes | None] | pa.Array, bracketed: bool = False) -> pa.Array:
    """UTC timestamps found in text before each record (naive log times are taken as UTC).

    ``bracketed``: most records follow ``[YYYY-MM-DD HH:MM:SS] `` (Megatron); those are read
    by a fixed-position slice (a third of the time of the regex), the others by the regex."""
    binary = pre if isinstance(pre, pa.Array) else pa.array(pre, pa.binary())
    if bracketed and len(binary):
        fixed = pc.if_else(pc.equal(pc.binary_slice(binary, -2), b"] "),
                           pc.binary_slice(binary, -21, -2), pa.scalar(None, binary.type))
        parsed = pc.strptime(fixed.cast(pa.string(), safe=False), format="%Y-%m-%d %H:%M:%S",
                             unit="ms", error_is_null=True)
        if parsed.null_count == 0:
            return parsed.cast(pa.timestamp("ms", tz="UTC"))
        missing = pc.is_null(parsed)
        regex = timestamps(binary.filter(missing))
        return pc.replace_with_mask(parsed.cast(pa.timestamp("ms", tz="UTC")), missing, regex)
    text = binary.cast(pa.string(), safe=False)
    try:
        parts = pc.extract_regex(text, _TIMESTAMP)
    except pa.ArrowInvalid:  # invalid UTF-8 in the slice
        text = pa.array([p.decode("utf-8", "replace") if p else None for p in binary.to_pylist()],
                        pa.string())
        parts = pc.extract_regex(text, _TIMESTAMP)
    seconds = pc.strptime(parts.field("ts"), format="%Y-%m-%d %H:%M:%S", unit="ms",
                          error_is_null=True)
    frac = pc.utf8_slice_codeunits(pc.binary_join_element_wise(parts.field("frac"), "000", ""),
                                   0, 3)
    millis = pc.cast(pc.cast(pc.if_else(pc.equal(frac, "000"), "0", frac), pa.int64()),
                     pa.duration("ms"))
    stamped = pc.add(seconds, pc.if_else(pc.is_null(millis), pa.scalar(0, pa.duration("ms")),
                                         millis))
    return stamped.cast(pa.timestamp("ms", tz="UTC"))


def unix_times(values: list[bytes | None], unit_s: float = 1.0) -> pa.Array:
    """UTC timestamps from epoch numbers (``unit_s`` = seconds per unit: 0.001 for ms); null
    outside TIME_RANGE_MS."""
    ms = pc.multiply(float_array(values), unit_s * 1000.0)
    ok = pc.and_(pc.greater_equal(ms, float(TIME_RANGE_MS[0])), pc.less_equal(ms, float(TIME_RANGE_MS[1])))
    ms = pc.if_else(ok, ms, pa.scalar(None, pa.float64()))
    return pc.cast(pc.round(ms), pa.int64()).cast(pa.timestamp("ms", tz="UTC"))


# --- the boundary to the results store -----------------------------------------------------
# Whatever a log says, what goes to the store fits its types: integers well inside int64
# (numbers.INT_LIMIT), finite floats, valid UTF-8, times a datetime can hold; anything else is
# null. NaN and inf stay only where they are the measurement: a diverged run's loss.

SIGNAL_COLUMNS = frozenset({"loss", "grad_norm", "final_loss"})
TIME_RANGE_MS = (-62135596800000, 253402300799999)  # 0001-01-01 to 9999-12-31 UTC


def fit_steps(columns: dict[str, pa.Array]) -> dict[str, pa.Array]:
    """Step columns (STEP_TYPES names) as the store holds them: floats other than
    SIGNAL_COLUMNS finite or null, times in TIME_RANGE_MS or null (integers are bounded
    where they are read: numbers.int_array)."""
    fitted = dict(columns)
    for name, column in columns.items():
        if pa.types.is_floating(column.type) and name not in SIGNAL_COLUMNS:
            fitted[name] = pc.if_else(pc.is_finite(column), column, pa.scalar(None, column.type))
        elif pa.types.is_timestamp(column.type):
            ms = column.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())
            ok = pc.and_(pc.greater_equal(ms, TIME_RANGE_MS[0]), pc.less_equal(ms, TIME_RANGE_MS[1]))
            fitted[name] = pc.if_else(ok, column, pa.scalar(None, column.type))
    return fitted


def fit_row(row: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A runs-table row (or its parameters) as the store holds it, and one message per value
    made null or changed: integers of INT_LIMIT or more, floats that are not finite (except
    SIGNAL_COLUMNS), text with lone surrogates (replaced by U+FFFD), other types."""
    fitted: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in row.items():
        fitted[key], problem = _fit_value(key, value)
        if problem:
            problems.append(f"{key}: {problem}")
    return fitted, problems


def _fit_value(key: str, value: Any) -> tuple[Any, str | None]:
    if value is None or isinstance(value, bool):
        return value, None
    if isinstance(value, int):
        fitted = fit_int(value)
        return fitted, None if fitted is not None else "an integer beyond 2**62; stored as null"
    if isinstance(value, float):
        if key in SIGNAL_COLUMNS:
            return value, None
        number = fit_float(value)
        return number, None if number is not None else f"{value} is not finite; stored as null"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value, None
        except UnicodeEncodeError:  # lone surrogates, from a JSON "\ud800" escape
            return (_SURROGATES.sub("\ufffd", value),
                    "text with invalid characters (lone surrogates); stored with U+FFFD")
    return None, f"a {type(value).__name__}, not a value the results store holds; stored as null"


_SURROGATES = re.compile("[\ud800-\udfff]")


def diff_step_time(steps: pa.Array, times: pa.Array) -> pa.Array:
    """Seconds per step from successive record times when a format prints none (torchtitan):
    (t_i - t_{i-1}) / (step_i - step_{i-1}); null for the first record and for non-increasing
    steps."""
    s = steps.to_pylist()
    t = pc.cast(times.cast(pa.timestamp("ms")), pa.int64()).to_pylist()
    out: list[float | None] = [None]
    for i in range(1, len(s)):
        ds = (s[i] - s[i - 1]) if s[i] is not None and s[i - 1] is not None else 0
        ok = ds > 0 and t[i] is not None and t[i - 1] is not None
        out.append((t[i] - t[i - 1]) / 1000.0 / ds if ok else None)
    return pa.array(out[:len(s)], pa.float64())
