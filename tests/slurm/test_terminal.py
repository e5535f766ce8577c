"""Terminal manners (issue 12, point 6), through real processes: `status --watch` redraws in place
on a terminal (a pseudo-terminal here) and prints plain tables into a pipe; progress bars and
colour only on a terminal, never colour with NO_COLOR; `submit --test-only` says its job
numbers are estimates; `scripts/local-slurm status` of a stopped cluster says so and exits 3."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from slurmkit.rundir import JobRecord, write_manifest

ROOT = Path(__file__).parents[2]
ESC = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
REDRAW = "\x1b[5F\x1b[J"  # up over the last table's five rows, clear below
COLUMNS = 200  # wide enough that no row of the table wraps


def fake_command(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


@pytest.fixture
def slurm_on_path(tmp_path, run_dir):
    """Stand-ins for squeue and scontrol (no accounting): the three submitted jobs run during
    the first two refreshes and have completed at the third."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    count = tmp_path / "squeue-calls"
    fake_command(bin_dir, "squeue", f"""
n=$(cat {count} 2>/dev/null || echo 0); echo $((n+1)) > {count}
state=RUNNING; [ "$n" -ge 2 ] && state=COMPLETED
for job in 100:alpha 101:beta 102:gamma; do echo "${{job%%:*}}|${{job#*:}}|$state|None|node1|0"; done""")
    fake_command(bin_dir, "scontrol", """
if [ "$1" = show ] && [ "$2" = config ]; then echo "AccountingStorageType = accounting_storage/none"; fi""")
    write_manifest(run_dir, {name: JobRecord(name, job_id, "2026-12-04T00:00:00Z", "PENDING")
                             for name, job_id in (("alpha", "100"), ("beta", "101"), ("gamma", "102"))})
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    return {**env, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}", "TERM": "xterm"}


def run_with_tty(argv: list[str], env: dict[str, str], cwd: Path, tty: str) -> tuple[int, str, str]:
    """Run ``argv`` with ``tty`` ("stdout" or "stderr") on a pseudo-terminal of COLUMNS columns
    and the other stream on a pipe; returns (exit code, the terminal's text, the pipe's text)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, COLUMNS, 0, 0))
    streams = {"stdout": follower, "stderr": subprocess.PIPE} if tty == "stdout" else \
        {"stdout": subprocess.PIPE, "stderr": follower}
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, **streams)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            proc.kill()
            raise AssertionError("no output for 60 s")
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's other end closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    pipe = (proc.stderr if tty == "stdout" else proc.stdout).read()  # type: ignore[union-attr]
    proc.wait(timeout=60)
    return proc.returncode, b"".join(chunks).decode().replace("\r\n", "\n"), pipe.decode()


def slurmkit(*args: str) -> list[str]:
    return [sys.executable, "-m", "slurmkit", *args]


WATCH = ("status", "run", "--watch", "--interval", "0.05")


def test_status_watch_redraws_in_place_on_a_terminal(slurm_on_path, tmp_path):
    code, screen, _ = run_with_tty(slurmkit(*WATCH), slurm_on_path, tmp_path, "stdout")
    assert code == 0
    draws = screen.split(REDRAW)
    assert len(draws) == 3 and not draws[0].startswith("\x1b")  # three refreshes, two redraws
    assert "3 runs: 3 RUNNING" in draws[1] and "3 runs: 3 COMPLETED" in draws[2]
    assert all(len(ESC.sub("", d).strip().splitlines()) == 5 for d in draws)  # header, 3 jobs, summary
    assert "\x1b[33mRUNNING" in draws[0] and "\x1b[32mCOMPLETED" in draws[2]  # states in colour


def test_status_watch_never_colours_with_no_color(slurm_on_path, tmp_path):
    code, screen, _ = run_with_tty(slurmkit(*WATCH), {**slurm_on_path, "NO_COLOR": "1"}, tmp_path, "stdout")
    assert code == 0
    assert len(screen.split(REDRAW)) == 3  # still redrawn in place: moving the cursor is no colour
    assert ESC.findall(screen) == [REDRAW[:4], REDRAW[4:]] * 2


def test_status_watch_prints_plain_lines_into_a_pipe(slurm_on_path, tmp_path):
    out = subprocess.run(slurmkit(*WATCH), env=slurm_on_path, cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "\x1b" not in out.stdout
    # three refreshes; the second equals the first, so it is not printed again
    assert out.stdout.count("RUN_ID") == 2 and (tmp_path / "squeue-calls").read_text().strip() == "3"
    assert out.stdout.splitlines()[4] == "3 runs: 3 RUNNING (accounting unavailable: squeue and " \
        "scontrol only; purged jobs show UNKNOWN)"


def trainer_logs(folder: Path, count: int) -> list[str]:
    folder.mkdir()
    for n in range(count):
        steps = "".join(f"SKTRAIN step={s}/3 loss={3 - s * 0.1} lr=0.001 grad_norm=1.0 step_time_s=0.5 "
                        f"tokens_per_s_per_gpu=100.0 time_unix={s}\n" for s in range(1, 4))
        (folder / f"job-{n}.out").write_text(steps + "SKTRAIN done steps=3 final_loss=2.7\n")
    return sorted(str(p) for p in folder.iterdir())


def test_progress_bar_only_on_a_terminal(tmp_path):
    logs = trainer_logs(tmp_path / "logs", 4)
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    code, bar, out = run_with_tty(slurmkit("parse", *logs, "--out", "a"), env, tmp_path, "stderr")
    assert code == 0 and "parsing" in bar and "4/4" in bar
    assert out.count(": trainer, 3 step rows") == 4
    piped = subprocess.run(slurmkit("parse", *logs, "--out", "b"), env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0 and piped.stderr == "" and piped.stdout == out
    code, bar, out = run_with_tty(slurmkit("report", "a", "-o", "a.html"), env, tmp_path, "stderr")
    assert code == 0 and "report" in bar and "3/3" in bar and out.startswith("wrote a.html\n")
    piped = subprocess.run(slurmkit("report", "b", "-o", "b.html"), env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0 and piped.stderr == "" and piped.stdout.startswith("wrote b.html\n")


def test_error_prefix_coloured_on_a_terminal_only(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    missing = tmp_path / "missing.out"
    argv = slurmkit("parse", str(missing))
    line = f" {missing}: no such file or folder: {missing} (hint: give log files, folders or quoted globs)\n"
    code, err, _ = run_with_tty(argv, {**env, "TERM": "xterm"}, tmp_path, "stderr")
    assert (code, err) == (2, "\x1b[31merror:\x1b[0m" + line)
    code, err, _ = run_with_tty(argv, {**env, "TERM": "xterm", "NO_COLOR": "1"}, tmp_path, "stderr")
    assert (code, err) == (2, "error:" + line)
    piped = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (piped.returncode, piped.stderr) == (2, "error:" + line)


def test_local_slurm_status_of_a_stopped_cluster(tmp_path):
    """Like `systemctl is-active`: "stopped" and exit code 3 (a state folder nothing runs from)."""
    out = subprocess.run(["bash", str(ROOT / "scripts" / "local-slurm"), "status"], capture_output=True,
                         text=True, env={**os.environ, "LOCAL_SLURM_STATE": str(tmp_path / "state")},
                         timeout=60)
    assert (out.returncode, out.stdout) == (3, "stopped\n")
