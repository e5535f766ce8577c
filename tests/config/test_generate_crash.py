"""`slurmkit generate` killed (SIGKILL) at random moments, then rerun (issue 11 point 3).

After each kill: plan.json is valid and either the previous one or the new one (complete: every
script it names is on disk, new), and every script is whole (its previous or its new bytes).
After each rerun: the run directory is exactly what a clean run writes (bytes and modes), with no
temporary left anywhere. Kills alternate between a fresh directory (scripts staged in a hidden
folder, renamed into place) and one holding another sweep of the same experiment (each script
replaced in place, the old ones removed), and most land while files are being written.
"""
from __future__ import annotations

import fcntl
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slurmkit.atomic import remove_stale_temporaries
from slurmkit.cli import main

KILLS = 20  # kills that land while generate runs (issue 11: at least 20)
SLURMKIT = [sys.executable, "-m", "slurmkit"]


def sweep(steps_from: int) -> str:
    """About 400 NeMo jobs (4 node counts x 10 step counts x 10 warm-ups); ``steps_from`` shifts
    every run id, so two sweeps share no script."""
    steps = list(range(steps_from, steps_from + 10))
    return ("schema_version: 1\nname: crash\nsites: [xe9680-8cx7]\nworkload: pretrain\nlauncher: nemo\n"
            "model: llama2-7b\ntp: 1\npp: 1\nmbs: 1\ngbs: 128\nseq_len: 4096\n"
            "extra_args: [model.tokenizer.model=/mnt/powerscale/datasets/llama2/tokenizer.model]\n"
            f"matrix:\n  nodes: [1, 2, 4, 8]\n  steps: {steps}\n  warmup_steps: {list(range(1, 11))}\n")


def tree(folder: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every entry under ``folder`` (hidden ones too): relative path -> (bytes or None for a
    folder, permission bits)."""
    entries = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root, name)
            data = None if name in dirs else path.read_bytes()
            entries[str(path.relative_to(folder))] = (data, path.stat().st_mode & 0o7777)
    return entries


def temporaries(folder: Path) -> list[str]:
    return sorted(rel for rel in tree(folder) if any(part.startswith(".") for part in Path(rel).parts))


def generate_argv(experiment: Path, out: Path) -> list[str]:
    return ["generate", str(experiment), "--out", str(out), "--format", "csv"]


class Clock:
    """Where writing starts in a run: the run directory appears (fresh), or the scripts folder
    changes (a directory holding the other sweep)."""

    @staticmethod
    def marker(out: Path) -> int | None:
        try:
            return (out / "scripts").stat().st_mtime_ns
        except FileNotFoundError:
            return 0 if out.exists() else None

    @classmethod
    def wait_for_writes(cls, proc: subprocess.Popen, out: Path, before: int | None) -> bool:
        while proc.poll() is None:
            now = cls.marker(out)
            if now is not None and now != before:
                return True
            time.sleep(0.0005)
        return False


def run_clean(experiment: Path, out: Path) -> tuple[float, float]:
    """A clean subprocess run; returns the seconds of the whole run and of its writing (from
    the first write to the exit)."""
    before = Clock.marker(out)
    start = time.perf_counter()
    proc = subprocess.Popen([*SLURMKIT, *generate_argv(experiment, out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    Clock.wait_for_writes(proc, out, before)
    writing = time.perf_counter()
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    end = time.perf_counter()
    return end - start, end - writing


def kill_at_random(experiment: Path, out: Path, rng: random.Random, write_s: float, whole_s: float) -> bool:
    """Start generate and SIGKILL it: mostly at a random moment of its writing, one time in four
    at a random moment of its whole run. False when it finished first."""
    before = Clock.marker(out)
    proc = subprocess.Popen([*SLURMKIT, *generate_argv(experiment, out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    if rng.random() < 0.25:
        time.sleep(rng.uniform(0, 0.9 * whole_s))
    elif Clock.wait_for_writes(proc, out, before):
        time.sleep(rng.uniform(0, write_s))
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return alive


def check_after_kill(out: Path, before: dict, after: dict) -> None:
    """Nothing half-written: plan.json valid and old or new (and then complete), scripts whole."""
    now = tree(out) if out.exists() else {}
    plan = now.get("plan.json")
    if plan is None:
        assert "plan.json" not in before, "plan.json vanished"
    else:
        assert plan[0] in (before.get("plan.json", (None,))[0], after["plan.json"][0]), "plan.json half-written"
        if plan == after["plan.json"]:  # the new index: every script it names is on disk, new
            assert all(now.get(rel) == entry for rel, entry in after.items() if rel.startswith("scripts/"))
    for rel, (data, _mode) in now.items():
        if rel.startswith("scripts/") and rel.endswith(".sbatch"):
            assert data in (before.get(rel, (None,))[0], after.get(rel, (None,))[0]), f"{rel} half-written"


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """Two sweeps of one experiment, each with its clean run's tree, and the seconds a run takes
    (the whole of it, and its writing into a fresh directory and in place)."""
    folder = tmp_path_factory.mktemp("sweeps")
    experiments = [folder / "a.yaml", folder / "b.yaml"]
    experiments[0].write_text(sweep(200))
    experiments[1].write_text(sweep(300))
    clean_dir = folder / "clean"  # a fresh directory (a), then in place (b over a)
    whole_s, write_fresh_s = run_clean(experiments[0], clean_dir)
    clean = [tree(clean_dir)]
    write_in_place_s = run_clean(experiments[1], clean_dir)[1]
    clean.append(tree(clean_dir))
    assert len([r for r in clean[0] if r.endswith(".sbatch")]) == 400 and not temporaries(clean_dir)
    assert not set(clean[0]) & (set(clean[1]) - {"plan.json", "scripts", "logs"})
    return experiments, clean, (whole_s, write_fresh_s, write_in_place_s)


def test_generate_killed_at_random_moments_then_rerun_leaves_a_clean_run(tmp_path, capsys, sweeps):
    experiments, clean, (whole_s, write_fresh_s, write_in_place_s) = sweeps
    rng = random.Random(11)
    out = tmp_path / "run"
    kills = left_temporaries = rounds = 0
    while kills < KILLS:
        rounds += 1
        assert rounds <= 3 * KILLS, f"only {kills} of {rounds} kills landed while generate ran"
        target = rounds % 2
        if rounds % 4 == 1:
            shutil.rmtree(out, ignore_errors=True)  # a fresh directory: the staged path
        before = tree(out) if out.exists() else {}
        write_s = write_fresh_s if not before else write_in_place_s
        kills += kill_at_random(experiments[target], out, rng, 0.8 * write_s, whole_s)
        check_after_kill(out, before, clean[target])
        left_temporaries += bool(out.exists() and temporaries(out))
        assert main(generate_argv(experiments[target], out)) is None  # the rerun, through the CLI
        capsys.readouterr()
        assert not temporaries(out)
        assert tree(out) == clean[target]
    # the kills found what they were for: a killed run's leftovers, which the rerun removed
    assert left_temporaries >= 3, f"only {left_temporaries} of {rounds} kills left temporaries"
    print(f"{kills} kills in {rounds} rounds, {left_temporaries} left temporaries")


def test_two_generates_into_one_directory_take_turns(tmp_path, sweeps):
    experiments, clean, (whole_s, _, _) = sweeps
    out = tmp_path / "run"
    assert main(generate_argv(experiments[0], out)) is None
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a generate writing into it holds it
    try:
        proc = subprocess.Popen([*SLURMKIT, *generate_argv(experiments[1], out)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(2 * whole_s)
        assert proc.poll() is None and tree(out) == clean[0]  # it waits, and touches nothing meanwhile
    finally:
        os.close(fd)
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert tree(out) == clean[1]
    shutil.rmtree(out)
    for experiment, expected in zip(experiments, clean):  # into a fresh directory, then in place
        procs = [subprocess.Popen([*SLURMKIT, *generate_argv(experiment, out)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for proc in procs:
            _, err = proc.communicate()
            assert proc.returncode == 0, err
        assert tree(out) == expected


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()  # reaped: its pid names no process now
    return child.pid


@pytest.mark.parametrize("lock", [False, True])
def test_only_temporaries_of_gone_writers_are_removed(tmp_path, lock):
    live, dead = os.getpid(), _dead_pid()
    names = {f".x.sbatch.{dead}-abcdefgh.tmp": "dead writer",
             f".y.sbatch.{live}-abcdefgh.tmp": "live writer, old",
             f".z.sbatch.{live}-ijklmnop.tmp": "live writer, being written",
             f".manifest.jsonl.{dead}-abcdefgh.tmp": "not ours",
             ".notes.tmp": "not a temporary name"}
    for name in names:
        (tmp_path / name).write_text("x")
    (tmp_path / f".scripts.{dead}-0123abcd.tmp").mkdir()  # a staging folder
    (tmp_path / f".scripts.{dead}-0123abcd.tmp" / "a.sbatch").write_text("x")
    an_hour_ago = time.time() - 3600
    os.utime(tmp_path / f".y.sbatch.{live}-abcdefgh.tmp", (an_hour_ago, an_hour_ago))
    locked_since = time.time() - 60 if lock else None
    removed = remove_stale_temporaries(tmp_path, owned=lambda name: name != "manifest.jsonl",
                                       locked_since=locked_since)
    expected = {f".x.sbatch.{dead}-abcdefgh.tmp", f".scripts.{dead}-0123abcd.tmp"}
    if lock:  # touched before the lock was taken: no writer holding it can be writing it now
        expected.add(f".y.sbatch.{live}-abcdefgh.tmp")
    assert {p.name for p in removed} == expected
    assert {p.name for p in tmp_path.iterdir()} == (set(names) | {f".scripts.{dead}-0123abcd.tmp"}) - expected
