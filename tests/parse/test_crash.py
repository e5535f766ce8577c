"""`slurmkit parse` killed (SIGKILL) at random moments, fresh and while re-parsing: after each
kill every visible run is there once with its right step count; after the rerun every run is;
and after `slurmkit store vacuum --retention-hours 0` no file is left that the committed
version does not name (a killed write's uncommitted data files are vacuum's to delete: the rerun
cannot tell them from the files of another parse still under way)."""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from slurmkit.results import store

SLURMKIT = [sys.executable, "-m", "slurmkit"]
LOGS = 40
KILLS = 20


def _log(steps: int) -> str:
    lines = ["SKTRAIN start rank=0 local_rank=0 world_size=2 host=n1"]
    lines += [f"SKTRAIN step={n}/{steps} loss={5.0 - n / 100:.3f} lr=0.0003 grad_norm=1.5 step_time_s=0.5 "
              f"tokens_per_s_per_gpu=1024.0 time_unix={1700000000 + n}.5" for n in range(1, steps + 1)]
    return "\n".join([*lines, f"SKTRAIN done steps={steps} final_loss=4.0"]) + "\n"


def _expected(logs: Path) -> dict[str, int]:
    found = {}
    for i in range(LOGS):
        steps = 5 + (i * 7) % 40
        (logs / f"run{i:02d}-{1000 + i}.out").write_text(_log(steps))
        found[f"run{i:02d}-{1000 + i}"] = steps
    return found


def _check(results: Path, expected: dict[str, int], complete: bool) -> None:
    if not (results / "runs").exists():
        assert not complete
        return
    runs = store.read_runs(results)
    ids = list(runs["run_id"])
    assert len(ids) == len(set(ids)), "a run seen twice"
    assert set(ids) <= set(expected) and (not complete or set(ids) == set(expected))
    counts = store.read_steps(results).groupby("run_id").size().to_dict()
    assert counts == {r: expected[r] for r in ids}
    assert dict(zip(runs["run_id"], runs["steps_completed"])) == {r: expected[r] for r in ids}


def _leftovers(results: Path) -> list[str]:
    """Files under the results folder that the committed version of neither table names."""
    from deltalake import DeltaTable

    named = set()
    for name in store.TABLES:
        named |= {Path(uri).name for uri in DeltaTable(str(results / name)).file_uris()}
    left = []
    for root, _, files in os.walk(results):
        for file in files:
            log = Path(root).name == "_delta_log"
            if log and (file.endswith(".json") or ".checkpoint." in file or file == "_last_checkpoint"):
                continue
            if not log and file in named:
                continue
            left.append(os.path.join(root, file))
    return left


def test_parse_killed_at_random_moments(tmp_path: Path):
    logs = tmp_path / "logs"
    logs.mkdir()
    expected = _expected(logs)
    results = tmp_path / "results"
    command = [*SLURMKIT, "parse", str(logs), "--out", str(results)]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    full_s = time.perf_counter() - start
    rng = random.Random(11)
    for kill in range(KILLS):
        if kill % 2:  # every other kill hits a first parse, the others a re-parse replacing runs
            shutil.rmtree(results)
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.0) * full_s)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _check(results, expected, complete=kill % 2 == 0)
        subprocess.run(command, check=True, capture_output=True)
        _check(results, expected, complete=True)
        subprocess.run([*SLURMKIT, "store", "vacuum", str(results), "--retention-hours", "0"],
                       check=True, capture_output=True)
        assert _leftovers(results) == []
        _check(results, expected, complete=True)
