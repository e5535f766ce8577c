"""Why a job failed, whatever the log format: one reason from the taxonomy
(slurmkit.rundir.FAILURE_REASONS) plus the line that shows it.

Failures end a job, so their evidence is at the end of a log: the driver first looks at the
last 64 KiB (a failed job's launcher and Slurm always print there; nothing there means no
failure, which keeps healthy logs cheap), and when it finds something there it scans the whole
last range (16 MiB) for the root cause. Among several signals the earliest STRONG one wins
(an OOM on one rank is followed by NCCL errors on the others); weak signals (a generic
``srun: error ... Exited with exit code``, torchrun's ``ChildFailedError``, a cancel) count only
when nothing stronger is there. A keyword check per signal keeps this cheap on big ranges.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from slurmkit.results.parsers.base import strip_rank_label


@dataclass(frozen=True)
class Failure:
    reason: str
    evidence: str        # the line, without its rank label, at most 300 characters
    line: int | None     # 1-based line number in the file


# (reason, strong, literal, check): the literal is found with bytes.find (fast on big ranges);
# ``check``, when given, must also match the line that holds it.
_Signal = tuple[str, bool, bytes, "re.Pattern[bytes] | None"]
SIGNALS: list[_Signal] = [
    ("oom", True, b"CUDA out of memory", None),
    ("oom", True, b"OutOfMemoryError", None),
    ("oom", True, b"oom-kill event", None),
    ("oom", True, b": Out Of Memory", re.compile(rb"task \d+: Out Of Memory")),
    ("nccl_timeout", True, b"Watchdog caught collective operation timeout", None),
    ("nccl_timeout", True, b"NCCL communicator was aborted", None),
    ("nccl_error", True, b"NCCL error", None),
    ("nccl_error", True, b"NCCL Error", None),
    ("nccl_error", True, b"DistBackendError", None),
    ("nccl_error", True, b"ncclSystemError", None),
    ("nccl_error", True, b"ncclInternalError", None),
    ("nccl_error", True, b"ncclUnhandledCudaError", None),
    ("nccl_error", True, b"ncclRemoteError", None),
    ("time_limit", True, b"DUE TO TIME LIMIT", None),
    ("node_failure", True, b"DUE TO NODE FAILURE", None),
    ("node_failure", True, b"NODE_FAIL", None),
    ("container_error", True, b"pyxis: ", re.compile(rb"(?i)pyxis: .*(?:error|fail|couldn't)")),
    ("container_error", True, b"enroot", re.compile(rb"(?i)enroot.*(?:error|failed)")),
    ("cancelled", False, b" CANCELLED AT ", re.compile(rb"\*\*\* (?:JOB|STEP) \S+ ON \S+ CANCELLED AT")),
    ("launch_error", False, b"srun: error: ", re.compile(rb"Exited with exit code [1-9]")),
    ("launch_error", False, b"failed (exitcode: ", re.compile(rb"exitcode: -?[1-9]")),
    ("launch_error", False, b"ChildFailedError", None),
    ("unknown", False, b"CUDA error: ", None),
    ("unknown", False, b"terminate called after throwing", None),
    ("unknown", False, b"srun: error: ", re.compile(rb"Terminated|Bus error|Segmentation")),
]


def _line_bounds(chunk: bytes | bytearray, pos: int) -> tuple[int, int]:
    start = max(chunk.rfind(b"\n", 0, pos), chunk.rfind(b"\r", 0, pos)) + 1
    ends = [e for e in (chunk.find(b"\n", pos), chunk.find(b"\r", pos)) if e >= 0]
    return start, min(ends) if ends else len(chunk)


def _first(chunk: bytes | bytearray, literal: bytes, check: re.Pattern[bytes] | None) -> int:
    """Position of the first ``literal`` whose line passes ``check``; -1 if none. (One
    bytes.find per literal beats one regex alternation of all of them several times over.)"""
    pos = chunk.find(literal)
    while pos >= 0 and check is not None:
        start, end = _line_bounds(chunk, pos)
        if check.search(chunk, start, end):
            return pos
        pos = chunk.find(literal, end)
    return pos


def find_failure(chunk: bytes | bytearray, first_line: int) -> Failure | None:
    """The failure shown in ``chunk`` (whose first line is number ``first_line``), or None."""
    best: tuple[bool, int, str] | None = None  # (strong, position, reason)
    for reason, strong, literal, check in SIGNALS:
        pos = _first(chunk, literal, check)
        if pos < 0:
            continue
        if best is None or (strong and not best[0]) or (strong == best[0] and pos < best[1]):
            best = (strong, pos, reason)
    if best is None:
        return None
    _, pos, reason = best
    start, end = _line_bounds(chunk, pos)
    if end - start > 300:  # a message glued onto a progress bar: keep the message
        start = max(start, chunk.rfind(b"[", max(start, pos - 80), pos), pos - 80)
    text = strip_rank_label(chunk[start:end].decode("utf-8", "replace")).strip()
    return Failure(reason, text[:300], first_line + chunk.count(b"\n", 0, pos))
