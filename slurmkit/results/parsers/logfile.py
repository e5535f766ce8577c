"""Read one log file in ranges of bytes and turn it into step rows and run facts.

Memory is bounded by the range size (16 MiB), however large the file: ranges end at a line
break (a longer line is cut, with a warning), ranges without the format's keyword are skipped
without running any regex, and each range is searched by one compiled regex. Steps go through
restart detection (a step lower than the one before starts restart index + 1) and de-duplication
(the last record of a (restart, step) wins: ranks repeating a step, tqdm refreshes).
"""
from __future__ import annotations

import contextlib
import importlib.abc
import io
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slurmkit.results.parsers import detect_format, new_format
from slurmkit.results.parsers.base import STEP_TYPES, Format, fit_steps
from slurmkit.results.parsers.failures import Failure, find_failure
from slurmkit.rundir import PROVENANCE_TAG, RunDirError, read_provenance

_TAG = PROVENANCE_TAG.encode()
RANGE_BYTES = 16 * 2**20
TAIL_PEEK_BYTES = 64 * 2**10
STEP_COLUMNS = {**STEP_TYPES, "restart": pa.int32(), "source_line": pa.int64()}
STEP_SCHEMA = pa.schema(list(STEP_COLUMNS.items()))


@dataclass
class ParsedLog:
    """What one log says. ``steps`` has STEP_COLUMNS; ``format`` is None when no records."""

    path: Path
    format: str | None
    steps: pa.Table
    steps_target: int | None = None
    done: bool = False
    provenance: dict[str, Any] | None = None
    failure: Failure | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def iter_ranges(fh: io.BufferedIOBase, size: int = RANGE_BYTES,
                end: int | None = None) -> Iterator[tuple[bytes, int, bool]]:
    """(chunk, number of its first line, whether a too-long line was cut) for a binary file,
    from its current position to ``end`` (default: EOF); lines are counted from 1 there.
    Each chunk ends at a line break (\\n or \\r) unless one line fills a whole range.
    Each chunk is a copy the caller may keep (read_log uses the buffers directly)."""
    for chunk, line, is_cut in iter_buffers(fh, size, end, count_lines=True, pool_size=1):
        yield bytes(chunk), line, is_cut


RANGE_POOL = 3  # range buffers reused in turn: a chunk stays valid while the next two are read


def iter_buffers(fh: io.BufferedIOBase, size: int = RANGE_BYTES, end: int | None = None,
                 count_lines: bool = True,
                 pool_size: int = RANGE_POOL) -> Iterator[tuple[bytearray | bytes, int, bool]]:
    """iter_ranges without copies: each chunk is one of ``pool_size`` bytearrays reused in
    turn, valid until ``pool_size - 1`` more chunks were yielded. A fresh 16 MiB buffer per
    range cost an allocation, its page faults and a copy to prepend the previous range's
    partial line: three times the time of the read itself. Without ``count_lines`` every first line is 1
    (read_log counts line breaks itself, once per range)."""
    pool = [bytearray() for _ in range(pool_size)]
    carry, line, turn = b"", 1, 0
    cap = _bytes_left(fh, end, size)
    if cap <= size:  # a small file: one plain read (heap memory, reused file after file)
        data = fh.read(cap)
        cut = max(data.rfind(b"\n"), data.rfind(b"\r"))
        carry = data[cut + 1:]
        if cut >= 0:
            yield data[:cut + 1] if carry else data, line, False
            line += data.count(b"\n", 0, cut + 1) if count_lines else 0
    while True:
        want = min(size, cap) if end is None else max(0, min(size, end - fh.tell()))
        buf = pool[turn % pool_size]
        n = _fill(fh, buf, carry, want)
        if not n:
            break
        cap = size  # a small file that grew since it was measured: read on in whole ranges
        total = len(carry) + n
        cut = max(buf.rfind(b"\n", 0, total), buf.rfind(b"\r", 0, total))
        if cut < 0 and total < size:
            carry = bytes(buf[:total])  # a line still open: read on
            continue
        stop = total if cut < 0 else cut + 1   # cut < 0: one line longer than a range
        carry = bytes(buf[stop:total])
        del buf[stop:]
        yield buf, line, cut < 0
        line += buf.count(b"\n") if count_lines else 0
        turn += 1
    if carry:
        yield carry, line, False


def _bytes_left(fh: io.BufferedIOBase, end: int | None, size: int) -> int:
    """Bytes from the position to ``end`` or EOF, plus one (so EOF shows at once): buffers of
    a small file stay small. More than ``size`` when unknown (a pipe, BytesIO)."""
    if end is not None:
        return max(0, end - fh.tell())
    try:
        st = os.fstat(fh.fileno())
    except (OSError, AttributeError, ValueError):  # not a real file (BytesIO)
        return size + 1
    if not stat.S_ISREG(st.st_mode):  # a pipe or device: its size says nothing
        return size + 1
    return max(1, st.st_size - fh.tell() + 1)


def _fill(fh: io.BufferedIOBase, buf: bytearray, carry: bytes, want: int) -> int:
    """Put ``carry`` then up to ``want`` bytes of ``fh`` in ``buf`` (resized in place);
    the number of bytes read."""
    need = len(carry) + want
    if len(buf) < need:
        buf.extend(bytes(need - len(buf)))
    else:
        del buf[need:]   # a small shrink keeps the allocation
    buf[:len(carry)] = carry
    with memoryview(buf) as view, view[len(carry):] as target:
        n = fh.readinto(target) or 0
    del buf[len(carry) + n:]
    return n


def limit_heap_growth() -> None:
    """Have glibc return freed range buffers to the OS.

    glibc serves big allocations with mmap, but raises that threshold after the first such
    block is freed, so later 16 MiB range buffers land in the heap and fragment it: peak
    memory then grows with the file size. Fixing the threshold keeps memory flat. No-op
    elsewhere.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD = 1 MiB
    except (OSError, AttributeError):
        pass


class _NoPandas(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("parse workers do not import pandas")
        return None


def worker_init() -> None:
    """Start of a parse worker process, which only parses logs and writes Parquet.

    pyarrow imports pandas on the first ``pa.array()`` only to recognise pandas objects,
    which parsing never passes: 0.35 s of CPU per process, a tenth of parsing 200 MB of small
    logs on two workers. A worker refuses that import (pyarrow then simply goes without its
    pandas integration). Only in workers: the calling process may go on to use pandas.
    """
    if not any(isinstance(f, _NoPandas) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoPandas())


@contextlib.contextmanager
def no_pandas() -> Iterator[None]:
    """worker_init for a while in the calling process (``slurmkit parse``, which only writes
    Parquet: 0.35 s of CPU saved when it parses a log itself). Nothing is refused when pandas
    is already loaded, and the refusal ends with the block; pyarrow's pandas conversions
    (``to_pandas``) try the import again when first used afterwards."""
    if "pandas" in sys.modules or any(isinstance(f, _NoPandas) for f in sys.meta_path):
        yield
        return
    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


# Logs this big are read by two processes, one half each: a forked worker starts in milliseconds
# (measured on 80 MB: 0.82 s for two processes, 1.15 s for one, the same CPU time).
SPLIT_MIN_BYTES = 64 * 2**20


@dataclass
class _Segment:
    """What one stretch of a log gave; line numbers count from the segment's first line."""

    parts: list[pa.Table] = field(default_factory=list)
    lines: int = 0                      # line breaks in the segment
    provenance: dict[str, Any] | None = None
    steps_target: int | None = None
    warnings: list[tuple[int, str]] = field(default_factory=list)
    tail: list[tuple[bytes | bytearray, int]] = field(default_factory=list)
    format: Format | None = None
    parts_file: str | None = None       # where a worker left ``parts`` (see _segment_job)


def read_log(path: Path | str, fmt_name: str | None = None,
             range_bytes: int = RANGE_BYTES, workers: int = 1) -> ParsedLog:
    """Parse one log. ``fmt_name`` forces a format; otherwise it is detected from the file.
    With ``workers`` > 1, a log of SPLIT_MIN_BYTES or more whose format carries no state
    from one range to the next is read by two processes, one half each."""
    path = Path(path)
    fmt: Format | None = new_format(fmt_name) if fmt_name else None
    size = path.stat().st_size
    if workers > 1 and size >= SPLIT_MIN_BYTES:
        fmt = fmt or _detect_head(path, range_bytes)
        if fmt is not None and fmt.splittable:
            # two processes at once: half-size ranges keep their memory together flat
            return _read_split(path, fmt, size, max(range_bytes // 2, 1024))
    seg = _read_segment(path, fmt, 0, size, range_bytes, keep_tail=True)
    return _finish(path, seg.format, [seg], seg.tail)


def _read_segment(path: Path, fmt: Format | None, start: int, end: int, range_bytes: int,
                  keep_tail: bool) -> _Segment:
    seg = _Segment(format=fmt)
    with open(path, "rb") as fh:
        fh.seek(start)
        line = 1
        # one buffer unless the last ranges are kept: memory of a split log stays low
        ranges = iter_buffers(fh, range_bytes, end, count_lines=False,
                              pool_size=RANGE_POOL if keep_tail else 1)
        for chunk, _, is_cut in ranges:
            first_line, breaks = line, _breaks(chunk)
            line += len(breaks)
            if is_cut:
                seg.warnings.append((first_line, f"line longer than {range_bytes} bytes, cut"))
            if seg.provenance is None and _TAG in chunk:
                seg.provenance = _provenance(chunk, first_line, seg.warnings)
            seg.format = seg.format or detect_format(chunk)
            if seg.format is not None:
                _scan_range(seg.format, chunk, first_line, seg, breaks)
            if keep_tail:  # (RANGE_POOL > 2: the two last buffers are not reused meanwhile)
                seg.tail = (seg.tail + [(chunk, first_line)])[-2:]
    seg.lines = line - 1
    return seg


def _segment_job(path: Path, fmt_name: str, start: int, end: int, range_bytes: int) -> _Segment:
    """The second half of a split log, in a worker process (returns no tail: the parent
    reads the end of the file itself). Its step rows go back in a temporary Arrow file, not
    through the result pipe: pickling them would add a copy in each process just when memory
    peaks."""
    seg = _read_segment(path, new_format(fmt_name), start, end, range_bytes, keep_tail=False)
    fd, seg.parts_file = tempfile.mkstemp(prefix=".slurmkit-steps-", suffix=".arrow")
    try:
        with open(fd, "wb") as fh, pa.ipc.new_file(fh, STEP_SCHEMA) as writer:
            for table in seg.parts:
                writer.write_table(table)
    except BaseException:
        os.unlink(seg.parts_file)
        raise
    seg.parts = []
    return seg


def _load_parts(seg: _Segment) -> _Segment:
    """A worker's segment with its step rows mapped from its temporary file (then removed)."""
    if seg.parts_file:
        try:
            table = pa.ipc.open_file(pa.memory_map(seg.parts_file)).read_all()
        finally:
            os.unlink(seg.parts_file)
        seg.parts, seg.parts_file = ([table] if table.num_rows else []), None
    return seg


def _read_split(path: Path, fmt: Format, size: int, range_bytes: int) -> ParsedLog:
    with open(path, "rb") as fh:
        fh.seek(size // 2)
        fh.readline()
        mid = fh.tell()  # the first line start after the middle
    with ProcessPoolExecutor(max_workers=1, initializer=worker_init) as pool:
        second = pool.submit(_segment_job, path, fmt.name, mid, size, range_bytes)
        try:
            first = _read_segment(path, fmt, 0, mid, range_bytes, keep_tail=False)
        finally:  # (also when the first half failed: the worker's file is removed)
            rest = _load_parts(second.result())
        segments = [first, rest]
    tail = _read_tail(path, size, int(range_bytes * 1.5), first.lines + segments[1].lines)
    return _finish(path, fmt, segments, tail)


def _read_tail(path: Path, size: int, nbytes: int, total_breaks: int) -> list[tuple[bytes | bytearray, int]]:
    """The end of a file from a line start, with the number of its first line."""
    with open(path, "rb") as fh:
        fh.seek(max(0, size - nbytes))
        if size > nbytes:
            fh.readline()
        chunk = fh.read()
    return [(chunk, total_breaks - chunk.count(b"\n") + 1)] if chunk else []


def _finish(path: Path, fmt: Format | None, segments: list[_Segment],
            tail: list[tuple[bytes | bytearray, int]]) -> ParsedLog:
    """Join segments (shifting their line numbers), then tail facts, restarts, dedupe."""
    log = ParsedLog(path, None, empty_steps())
    parts, offset = [], 0
    for seg in segments:
        for table in seg.parts:
            if offset:  # a later segment: its line numbers count from its own start
                table = table.set_column(table.schema.get_field_index("source_line"), "source_line",
                                         pc.add(table.column("source_line"), offset))
            parts.append(table)
        log.warnings += [f"{path}:{line + offset}: {msg}" for line, msg in seg.warnings]
        log.provenance = log.provenance or seg.provenance
        log.steps_target = seg.steps_target or log.steps_target
        offset += seg.lines
    if tail and not tail[-1][0].endswith((b"\n", b"\r")):
        last = tail[-1][1] + tail[-1][0].count(b"\n")
        log.warnings.append(f"{path}:{last}: last line has no line break (log cut mid-line)")
    log.failure = _tail_failure(tail)
    if fmt is not None:
        log.format, log.facts = fmt.name, fmt.facts
        log.done = _finished(fmt, tail)
    if parts:
        log.steps = _restarts_and_dedupe(pa.concat_tables(parts))
    return log


def _finished(fmt: Format, tail: list[tuple[bytes | bytearray, int]]) -> bool:
    """Whether the format's "finished" line is in the final ranges. Training prints it last,
    so the last TAIL_PEEK_BYTES are searched first: a finished log costs one short search
    instead of a search of the whole tail per marker."""
    if not tail or not fmt.done_markers:
        return False
    end = tail[-1][0][-TAIL_PEEK_BYTES:]
    return (any(m in end for m in fmt.done_markers)
            or any(m in chunk for chunk, _ in tail for m in fmt.done_markers))


def _detect_head(path: Path, range_bytes: int) -> Format | None:
    with open(path, "rb") as fh:
        return detect_format(fh.read(range_bytes))


def _scan_range(fmt: Format, chunk: bytes | bytearray, first_line: int, seg: _Segment,
                breaks: np.ndarray) -> None:
    if fmt.keyword not in chunk:
        return
    clean = fmt.clean(chunk)
    raw = fmt.scan(clean)
    if not raw:
        return
    seg.steps_target = fmt.total_steps(raw) or seg.steps_target
    columns = fmt.columns(raw)
    n = len(next(iter(columns.values())))
    if n == len(raw["pos"]):
        if clean is not chunk:  # colour codes removed: offsets moved
            breaks = _breaks(clean)
        lines = np.searchsorted(breaks, np.asarray(raw["pos"], np.int64)) + first_line
        columns["source_line"] = pa.array(lines, pa.int64())
    seg.parts.append(_conform(fit_steps(columns), n))


def _breaks(chunk: bytes | bytearray) -> np.ndarray:
    """Offsets of the ``\\n`` in a range (numpy): they count its lines and, by binary search,
    give each record its line number without Python work per record."""
    return np.flatnonzero(np.frombuffer(chunk, np.uint8) == 10)


def empty_steps() -> pa.Table:
    return STEP_SCHEMA.empty_table()


def _conform(columns: dict[str, pa.Array], n: int) -> pa.Table:
    arrays = [(columns[name] if columns[name].type == t else columns[name].cast(t))
              if name in columns else pa.nulls(n, t) for name, t in STEP_COLUMNS.items()]
    return pa.table(arrays, schema=STEP_SCHEMA)


def _restarts_and_dedupe(table: pa.Table) -> pa.Table:
    """Number restarts (a step going backwards) and keep the last row per (restart, step)."""
    if table.column("step").null_count:
        table = table.filter(table.column("step").is_valid())
    if table.num_rows == 0:
        return table
    step = table.column("step").to_numpy()
    restart = np.concatenate([[0], np.cumsum(step[1:] < step[:-1])]).astype(np.int32)
    keep = np.ones(len(step), dtype=bool)
    keep[:-1] = (step[1:] != step[:-1]) | (restart[1:] != restart[:-1])
    table = table.set_column(table.schema.get_field_index("restart"), "restart",
                             pa.array(restart, pa.int32()))
    return table if keep.all() else table.filter(pa.array(keep))


def _tail_failure(tail: list[tuple[bytes | bytearray, int]]) -> Failure | None:
    """Failures end a job: a quick look at the end of the log, then, when something is there,
    the last range (and the one before when the last is short) for the root cause."""
    if not tail:
        return None
    chunk, first_line = tail[-1]
    if len(chunk) > TAIL_PEEK_BYTES and find_failure(chunk[-TAIL_PEEK_BYTES:], 1) is None:
        return None
    if len(tail) == 2 and len(chunk) < RANGE_BYTES // 2:
        prev, prev_line = tail[0]
        chunk, first_line = prev[-RANGE_BYTES // 2:] + chunk, prev_line + prev[:-RANGE_BYTES // 2].count(b"\n")
    return find_failure(chunk, first_line)


def _provenance(chunk: bytes | bytearray, first_line: int,
                warnings: list[tuple[int, str]]) -> dict[str, Any] | None:
    """The record of the first provenance line in ``chunk``; an unreadable one is a warning
    (counted in the run's parse_warnings) and the log is parsed without it."""
    pos = chunk.find(_TAG)
    end = chunk.find(b"\n", pos)
    try:
        return read_provenance(bytes(chunk[pos:end if end >= 0 else len(chunk)]))
    except RunDirError as exc:
        warnings.append((first_line + chunk.count(b"\n", 0, pos), str(exc)))
        return None
