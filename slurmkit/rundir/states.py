"""Slurm job states, the one normalisation of them, and the failure taxonomy.

Slurm writes a state with decorations that differ by command and version: ``CANCELLED by 1000``
(sacct), ``COMPLETED+`` (a truncated sacct column), ``["FAILED"]`` (``sacct --json``, 23.11+),
lower case in some JSON. :func:`normalize_state` turns each into one upper-case word; an empty
state (the job is purged from the controller and accounting has no record of it, or the site has
no accounting) is ``UNKNOWN``. Every reader of a state (status, collect, the sacct reader, the
failure classifier) goes through it.
"""
from __future__ import annotations

from typing import Any

COMPLETED, FAILED, CANCELLED, TIMEOUT = "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"
NODE_FAIL, OUT_OF_MEMORY, PREEMPTED, BOOT_FAIL = "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL"
DEADLINE, REQUEUED, PENDING, RUNNING = "DEADLINE", "REQUEUED", "PENDING", "RUNNING"
# No longer in the controller's memory and not in accounting (or no accounting): state unknown.
UNKNOWN = "UNKNOWN"
# Not a Slurm state: sbatch refused the script (the manifest records its message).
SUBMIT_FAILED = "SUBMIT_FAILED"

# States of a job that may still run (REQUEUED: it goes back to the queue).
ACTIVE_STATES = frozenset({PENDING, "CONFIGURING", RUNNING, "COMPLETING", "SUSPENDED", REQUEUED,
                           "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "REQUEUE_FED",
                           "REQUEUE_HOLD", "SPECIAL_EXIT", "RESV_DEL_HOLD"})
# Final states that are failures (what `submit --resubmit-failed` submits again).
FAILED_STATES = frozenset({FAILED, TIMEOUT, CANCELLED, NODE_FAIL, OUT_OF_MEMORY, BOOT_FAIL,
                           DEADLINE, PREEMPTED, SUBMIT_FAILED})

# Why a run failed (the runs table's failure_reason): log evidence (slurmkit.results.parsers.failures),
# else the job's Slurm state (state_failure), else non-finite values (nan_loss).
FAILURE_REASONS = ("oom", "nccl_timeout", "nccl_error", "time_limit", "node_failure", "nan_loss",
                   "container_error", "launch_error", "cancelled", "unknown")

_STATE_FAILURE = {FAILED: "unknown", TIMEOUT: "time_limit", DEADLINE: "time_limit",
                  CANCELLED: "cancelled", PREEMPTED: "cancelled", NODE_FAIL: "node_failure",
                  BOOT_FAIL: "node_failure", OUT_OF_MEMORY: "oom"}


def normalize_state(state: Any) -> str:
    """One upper-case state word: 'CANCELLED by 0' -> 'CANCELLED', 'COMPLETED+' -> 'COMPLETED',
    ['FAILED'] -> 'FAILED'; None, '' and Slurm's '(null)' -> 'UNKNOWN'. A word slurmkit does not
    know is kept (a newer Slurm's state is shown as Slurm says it)."""
    if isinstance(state, (list, tuple)):
        state = state[0] if state else None
    if not isinstance(state, str):
        return UNKNOWN
    word = state.strip().split(" ", 1)[0].rstrip("+").upper()
    return word if word and word != "(NULL)" else UNKNOWN


def is_active(state: Any) -> bool:
    """Whether a job in this state may still run (queued, running, requeued...)."""
    return normalize_state(state) in ACTIVE_STATES


def state_failure(state: Any) -> str | None:
    """The failure reason (FAILURE_REASONS) a final Slurm state implies, None when it implies
    none (completed, still active, unknown)."""
    return _STATE_FAILURE.get(normalize_state(state))
