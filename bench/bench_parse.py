#!/usr/bin/env python3
"""Benchmark `slurmkit parse` against `grep -c` and a naive line-by-line regex parser.

    .venv/bin/python bench/bench_parse.py [--mb 200] [--big-mb 1000] [--skip-big] [--repeat 1]

Generates logs with the shared generator (/work/shared/bench/make_logs.py, deterministic) into
bench/out/ (gitignored), then times on the same files, each command in its own process
(interpreter start included), with its CPU time and the peak memory (PSS) of its process tree:

- ``grep -c iteration`` (the floor: one literal scan),
- a naive parser: ``for line in open(f): re.search(...)`` per field, the way most scripts do it,
- ``slurmkit parse DIR --out RESULTS`` end to end (the Delta tables written into a fresh folder under
  bench/out each run; the time to create as many empty files there is printed beside it).

It prints MB/s, the ratios to grep and to the naive parser (by wall time, and by CPU time,
which other work on a shared machine hardly changes; slurmkit's CPU time adds up both of its
processes, so that ratio understates it on an idle machine), peak memory, the load average,
and checks the rows slurmkit wrote against the generator's manifest (rows_expected).
Corpora: a mixed NeMo/Megatron set of --mb MB, and single logs of --big-mb/4 and --big-mb MB
(peak memory must not grow with file size).
"""
from __future__ import annotations

import argparse
import compileall
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
MAKE_LOGS = Path("/work/shared/bench/make_logs.py")
SLURMKIT = ROOT / ".venv" / "bin" / "slurmkit"
PYTHON = ROOT / ".venv" / "bin" / "python"

NAIVE = r'''
import re, sys
fields = {
    "step": re.compile(r"iteration\s+(\d+)/\s*\d+"),
    "bar": re.compile(r"\| *(\d+)/\d+ \["),
    "time_ms": re.compile(r"elapsed time per iteration \(ms\): ([\d.]+)"),
    "loss": re.compile(r"lm loss: ([^ |]+)"),
    "nemo_loss": re.compile(r"reduced_train_loss=([^,\]]+)"),
    "lr": re.compile(r"learning rate: ([^ |]+)"),
    "grad": re.compile(r"grad norm: ([^ |]+)"),
    "timing": re.compile(r"train_step_timing in s=([^,\]]+)"),
    "tflops": re.compile(r"TFLOP/s/GPU\): ([\d.]+)"),
}
rows = 0
for path in sys.argv[1:]:
    seen = {}
    with open(path, errors="replace") as fh:
        for line in fh:
            for part in line.split("\r"):
                found = {k: m.group(1) for k, p in fields.items() if (m := p.search(part))}
                step = found.get("step") or found.get("bar")
                if step and ("loss" in found or "nemo_loss" in found or "time_ms" in found):
                    seen[int(step)] = {k: float(v) for k, v in found.items() if k not in ("step", "bar")
                                       and v.replace(".", "", 1).replace("E", "").replace("e", "")
                                       .replace("-", "").replace("+", "").isdigit()}
    rows += len(seen)
print(rows)
'''


def generate(name: str, args: list[str]) -> Path:
    """bench/out/<name>/ from make_logs.py (kept between runs: the generator is deterministic)."""
    folder = OUT / name
    if not (folder / "manifest.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(MAKE_LOGS), *args, "--out", str(folder)], check=True,
                       stdout=subprocess.DEVNULL)
    return folder


def timed(cmd: list[str], sample_memory: bool = False) -> tuple[float, float, str, float]:
    """(wall seconds, peak memory MiB, stdout, CPU seconds) of one command.

    Peak memory: the largest RSS of one of its processes, or with ``sample_memory`` the largest
    total PSS (proportional set size) of the command's whole process tree, sampled every 20 ms,
    so worker processes count and pages they share are not counted twice. Sampling is for a
    separate run, not a timed one: reading a big process's smaps takes its memory-map lock
    against its own page faults and costs CPU (slurmkit measured 10-20% slower on 1 GB).
    CPU time (user + system, all processes) is reported too: other work on a shared machine
    inflates wall time but hardly CPU time.
    """
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
        peak = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG if sample_memory else 0)
            if pid:
                break
            peak = max(peak, _tree_pss(proc.pid))
            time.sleep(0.02)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        stdout = out.read().decode()
    if proc.returncode not in (0, 1):  # grep -c exits 1 when a file has no match
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode})")
    peak = max(peak, usage.ru_maxrss * 1024)  # a run too short to sample: its max RSS
    return wall, peak / 2**20, stdout, usage.ru_utime + usage.ru_stime


def _tree_pss(pid: int) -> int:
    """Total PSS in bytes of a process and its descendants (Linux /proc)."""
    total = 0
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
        children = open(f"/proc/{pid}/task/{pid}/children").read().split()
    except OSError:
        return total
    return total + sum(_tree_pss(int(c)) for c in children)


def _create_floor(folder: Path, count: int) -> float:
    """Seconds to create ``count`` empty files in a fresh folder beside the results: what the
    file system alone charges for the files slurmkit wrote (it varies several times over on
    this VM's ext4, from folder to folder and after big deletions)."""
    folder.mkdir()
    start = time.perf_counter()
    for i in range(count):
        os.close(os.open(folder / f"f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    return time.perf_counter() - start


def bench(folder: Path, repeat: int, results_parent: Path) -> dict:
    load_before = os.getloadavg()[0]
    manifest = json.loads((folder / "manifest.json").read_text())
    files = sorted(str(p) for p in folder.glob("*.out"))
    mb = sum(os.path.getsize(f) for f in files) / 1e6
    # Results go next to the logs, as a user's would, into a fresh folder per run (a first
    # parse, not a re-parse). Not /tmp: test suites delete many files there, after which ext4
    # takes ~0.75 ms to create a file (it checks recently freed inodes) against ~0.02 ms.
    with tempfile.TemporaryDirectory() as tmp, \
            tempfile.TemporaryDirectory(dir=results_parent, prefix=".bench-results-") as res_root:
        naive_script = Path(tmp) / "naive.py"
        naive_script.write_text(NAIVE)
        best: dict[str, tuple[float, float, str, float]] = {}
        for i in range(repeat):
            res = Path(res_root) / f"res{i}"
            for name, cmd in (("grep", ["grep", "-c", "iteration", *files]),
                              ("naive", [sys.executable, str(naive_script), *files]),
                              ("slurmkit", [str(SLURMKIT), "parse", str(folder), "--out", str(res)])):
                result = timed(cmd)
                if name not in best or result[0] < best[name][0]:
                    best[name] = result
        # slurmkit's peak memory over all its processes, from one more (untimed) run
        res = Path(res_root) / "memory"
        memory = timed([str(SLURMKIT), "parse", str(folder), "--out", str(res)], sample_memory=True)[1]
        best["slurmkit"] = (best["slurmkit"][0], memory, *best["slurmkit"][2:])
        written = sum(len(files_) for _, _, files_ in os.walk(res))
        create_s = _create_floor(Path(res_root) / "floor", written)
        rows = _rows_written(res)
    return {"corpus": folder.name, "files": len(files), "mb": mb, "rows_expected": manifest["rows_expected"],
            "rows_slurmkit": rows, "rows_naive": int(best["naive"][2].strip() or 0),
            **{f"{k}_s": v[0] for k, v in best.items()}, **{f"{k}_rss_mib": v[1] for k, v in best.items()},
            **{f"{k}_cpu_s": v[3] for k, v in best.items()}, "load_before": load_before,
            "files_written": written, "create_floor_s": create_s,
            "load": os.getloadavg()[0]}


def _rows_written(results: Path) -> int:
    out = subprocess.run([str(PYTHON), "-c", "import sys; from slurmkit.results import store; "
                          "print(int(store.read_runs(sys.argv[1])['steps_completed'].sum()))", str(results)],
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


def report(r: dict) -> None:
    speed = {k: r["mb"] / r[f"{k}_s"] for k in ("grep", "naive", "slurmkit")}
    print(f"\n{r['corpus']}: {r['files']} files, {r['mb']:.0f} MB (load {r['load_before']:.1f} before,"
          f" {r['load']:.1f} after; wall times mean little when load > CPUs, CPU times still do)")
    for k in ("grep", "naive", "slurmkit"):
        print(f"  {k:9s} {r[f'{k}_s']:7.2f} s  {speed[k]:8.1f} MB/s  peak mem {r[f'{k}_rss_mib']:7.1f} MiB"
              f"  CPU {r[f'{k}_cpu_s']:6.2f} s ({r['mb'] / max(r[f'{k}_cpu_s'], 1e-3):7.1f} MB per CPU-s)")
    cpu = {k: r[f"{k}_cpu_s"] for k in ("grep", "naive", "slurmkit")}
    print(f"  slurmkit / grep  = {speed['slurmkit'] / speed['grep']:.1%}   (goal >= 15%)"
          f"   by CPU time: {cpu['grep'] / cpu['slurmkit']:.1%}")
    print(f"  slurmkit / naive = {speed['slurmkit'] / speed['naive']:.2f}x  (goal >= 2.5x)"
          f"   by CPU time: {cpu['naive'] / cpu['slurmkit']:.2f}x")
    print(f"  slurmkit wrote {r['files_written']} files; creating that many empty files here takes"
          f" {r['create_floor_s']:.2f} s (file-system floor, included in slurmkit's time)")
    ok = "OK" if r["rows_slurmkit"] == r["rows_expected"] else "MISMATCH"
    print(f"  rows: expected {r['rows_expected']}, slurmkit {r['rows_slurmkit']} ({ok}), naive {r['rows_naive']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mb", type=int, default=200, help="size of the mixed corpus")
    p.add_argument("--big-mb", type=int, default=1000, help="size of the single-log corpus")
    p.add_argument("--skip-big", action="store_true")
    p.add_argument("--only", action="append", metavar="CORPUS",
                   help="time only this corpus (mixed-200, single-250, single-1000; repeatable)")
    p.add_argument("--repeat", type=int, default=3, help="runs per command; the best is kept")
    p.add_argument("--results-dir", type=Path, default=OUT,
                   help="folder in which each run's fresh results folder is made (default: bench/out)")
    a = p.parse_args()
    compileall.compile_dir(ROOT / "slurmkit", quiet=1)  # as `pip install` does (see bench_generate)
    print(f"machine: {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f}")
    corpora = [generate(f"mixed-{a.mb}", ["--format", "mixed", "--mb", str(a.mb)])]
    if not a.skip_big:
        for mb in (a.big_mb // 4, a.big_mb):
            corpora.append(generate(f"single-{mb}", ["--format", "mixed", "--runs", "1", "--mb", str(mb)]))
    if a.only:
        corpora = [c for c in corpora if c.name in a.only]
    results = [bench(folder, a.repeat, a.results_dir) for folder in corpora]
    for r in results:
        report(r)
    (OUT / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
