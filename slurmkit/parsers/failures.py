"""Why a job failed, whatever the log format: one reason from a fixed taxonomy plus the line
that shows it.

Failures end a job, so their evidence is at the end of a log: the driver scans the last range
of a file (the whole file when it is small). Among several signals the earliest STRONG one wins
(an OOM on one rank is followed by NCCL errors on the others); weak signals (a generic
``srun: error ... Exited with exit code``, torchrun's ``ChildFailedError``, a cancel) count only
when nothing stronger is there. A keyword check per signal keeps this cheap on big ranges.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from slurmkit.parsers.base import strip_rank_label

REASONS = ("oom", "nccl_timeout", "nccl_error", "time_limit", "node_failure", "nan_loss",
           "container_error", "launch_error", "cancelled", "unknown")


@dataclass(frozen=True)
class Failure:
    reason: str
    evidence: str        # the line, without its rank label, at most 300 characters
    line: int | None     # 1-based line number in the file


# (reason, strong, keyword that must be in the range, regex)
SIGNALS: list[tuple[str, bool, bytes, re.Pattern[bytes]]] = [
    ("oom", True, b"out of memory", re.compile(rb"CUDA out of memory|OutOfMemoryError")),
    ("oom", True, b"oom-kill", re.compile(rb"oom-kill event")),
    ("oom", True, b"Out Of Memory", re.compile(rb"task \d+: Out Of Memory")),
    ("nccl_timeout", True, b"Watchdog caught", re.compile(rb"Watchdog caught collective operation timeout")),
    ("nccl_timeout", True, b"NCCL", re.compile(rb"NCCL (?:communicator|watchdog)[^\n]*time(?:d )?out", re.I)),
    ("nccl_error", True, b"NCCL", re.compile(rb"NCCL [Ee]rror|DistBackendError|ncclSystemError|"
                                             rb"ncclInternalError|ncclUnhandledCudaError|ncclRemoteError")),
    ("time_limit", True, b"TIME LIMIT", re.compile(rb"CANCELLED AT \S+ DUE TO TIME LIMIT")),
    ("node_failure", True, b"NODE FAIL", re.compile(rb"DUE TO NODE FAILURE|NODE_FAIL")),
    ("container_error", True, b"pyxis", re.compile(rb"pyxis: [^\n]*(?:error|fail|couldn't)", re.I)),
    ("container_error", True, b"enroot", re.compile(rb"enroot[^\n]*(?:error|failed)", re.I)),
    ("cancelled", False, b"CANCELLED", re.compile(rb"\*\*\* (?:JOB|STEP) \S+ ON \S+ CANCELLED AT \S+(?: DUE TO PREEMPTION)? \*\*\*|CANCELLED AT \S+ DUE TO PREEMPTION")),
    ("launch_error", False, b"srun: error", re.compile(rb"srun: error: [^\n]*Exited with exit code [1-9]")),
    ("launch_error", False, b"exitcode", re.compile(rb"failed \(exitcode: -?[1-9]\d*\)")),
    ("launch_error", False, b"ChildFailedError", re.compile(rb"ChildFailedError")),
    ("unknown", False, b"error", re.compile(rb"CUDA error: |terminate called after throwing|srun: error: [^\n]*(?:Terminated|Bus error|Segmentation)")),
]


def find_failure(chunk: bytes, first_line: int) -> Failure | None:
    """The failure shown in ``chunk`` (whose first line is number ``first_line``), or None."""
    best: tuple[bool, int, str] | None = None  # (strong, position, reason)
    for reason, strong, keyword, regex in SIGNALS:
        if keyword not in chunk:
            continue
        m = regex.search(chunk)
        if m is None:
            continue
        candidate = (strong, m.start(), reason)
        if best is None or (strong and not best[0]) or (strong == best[0] and m.start() < best[1]):
            best = candidate
    if best is None:
        return None
    _, pos, reason = best
    start = max(chunk.rfind(b"\n", 0, pos), chunk.rfind(b"\r", 0, pos)) + 1
    end_n, end_r = chunk.find(b"\n", pos), chunk.find(b"\r", pos)
    end = min(e for e in (end_n, end_r, len(chunk)) if e >= 0)
    if end - start > 300:  # a message glued onto a progress bar: keep the message
        start = max(start, chunk.rfind(b"[", max(start, pos - 80), pos), pos - 80)
    text = strip_rank_label(chunk[start:end].decode("utf-8", "replace")).strip()
    return Failure(reason, text[:300], first_line + chunk.count(b"\n", 0, pos))


def slurm_failure(state: str | None) -> str | None:
    """The taxonomy reason for a terminal Slurm state that is a failure, else None."""
    if not state:
        return None
    base = state.split()[0].upper().rstrip("+")
    return {"TIMEOUT": "time_limit", "OUT_OF_MEMORY": "oom", "NODE_FAIL": "node_failure",
            "CANCELLED": "cancelled", "PREEMPTED": "cancelled", "FAILED": "unknown",
            "BOOT_FAIL": "node_failure", "DEADLINE": "time_limit"}.get(base)
