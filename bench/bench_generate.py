"""Benchmark `slurmkit generate` on a 10,000-point sweep (a script, not a timed test).

Measures, on this machine:
- rendering alone (Jinja, templates compiled once) against plain ``str.format`` producing the
  identical text for the same 10,000 jobs (goal: rendering >= 40% of str.format's speed);
- the whole ``slurmkit generate`` command on 10,000 points (goal: < 3 s), then regenerating
  (goal: no file rewritten);
- import time of ``slurmkit --help`` and ``slurmkit generate`` (goal: < 150 ms, no pandas,
  pyarrow or matplotlib).

Run: .venv/bin/python bench/bench_generate.py [--points 10000] [--work-dir /dev/shm]
"""
from __future__ import annotations

import argparse
import compileall
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from slurmkit.plan.make import make_plan
from slurmkit.plan.render import Renderer, render_plan, shell_command, shell_quote, write_plan

ROOT = Path(__file__).resolve().parents[1]
SLURMKIT = [sys.executable, "-m", "slurmkit"]


def sweep_yaml(points: int) -> str:
    """A NeMo Llama 2 7B sweep on XE9680 configuration 1: nodes x steps x warm-up steps."""
    side = max(1, round((points / 4) ** 0.5))
    steps = list(range(200, 200 + side))
    warmup = list(range(1, 1 + max(1, points // (4 * side))))
    return (
        "schema_version: 1\nname: bench\nsites: [xe9680-8cx7]\nworkload: pretrain\nlauncher: nemo\n"
        "model: llama2-7b\ntp: 1\npp: 1\nmbs: 1\ngbs: 128\nseq_len: 4096\n"
        # mandatory (???) in NeMo's Llama config; as in the shipped experiments
        "extra_args: [model.tokenizer.model=/mnt/powerscale/datasets/llama2/tokenizer.model]\n"
        f"matrix:\n  nodes: [1, 2, 4, 8]\n  steps: {steps}\n  warmup_steps: {warmup}\n")


# The NeMo script as one str.format template: the same bytes as templates/nemo.sbatch.j2.
FORMAT = """#!/bin/bash
{header}
# slurmkit run {run_id} on site {site}; resubmit from the run directory: sbatch scripts/{run_id}.sbatch
set -eo pipefail

# Network and site environment (NCCL/UCX derived from the site's adapters)
{env}
{setup}
# One machine-readable line describing this run (docs/contracts.md)
sk_json() {{  # a JSON string, or null when empty
  if [ -z "$1" ]; then printf 'null'; return; fi
  local s=${{1//\\\\/\\\\\\\\}}
  s=${{s//\\"/\\\\\\"}}
  printf '"%s"' "$s"
}}
SK_DRIVER=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1 || true)
SK_CUDA=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\\([0-9.]*\\).*/\\1/p' | head -n 1 || true)
printf 'SLURMKIT_PROVENANCE {{"schema_version":1,"run_id":%s,"params":%s,"job_id":%s,"nodelist":%s,"driver_version":%s,"nccl_version":%s,"cuda_version":%s}}\\n' \\
  {run_id_json} \\
  {params_json} \\
  "$(sk_json "${{SLURM_JOB_ID:-}}")" "$(sk_json "${{SLURM_JOB_NODELIST:-}}")" \\
  "$(sk_json "$SK_DRIVER")" "$(sk_json "${{NCCL_VERSION:-}}")" "$(sk_json "$SK_CUDA")"

# NeMo 1.x: one task per GPU, Hydra overrides
srun \\
{srun}  {python} -u \\
    {command}
"""


def format_job(ctx: dict) -> str:
    """Plain-Python rendering of the same script (the baseline)."""
    c = ctx["container"]
    srun = [*ctx["srun_flags"], f"--container-image={c.image}"]
    if c.mounts:
        srun.append(f"--container-mounts={','.join(c.mounts)}")
    if c.workdir:
        srun.append(f"--container-workdir={c.workdir}")
    srun_text = "".join(f"  {shell_quote(f)} \\\n" for f in srun)
    if not c.mount_home:
        srun_text += "  --no-container-mount-home \\\n"
    return FORMAT.format(
        header="\n".join(f"#SBATCH --{k}" if v is None else f"#SBATCH --{k}={v}" for k, v in ctx["header"]),
        run_id=ctx["run_id"], site=ctx["site"],
        env="\n".join(f"export {k}={shell_quote(v)}" for k, v in ctx["env"]),
        setup="".join(f"{line}\n" for line in ctx["setup"]),
        run_id_json=shell_quote(ctx["run_id_json"]), params_json=shell_quote(ctx["params_json"]),
        srun=srun_text, python=shell_quote(ctx["python"]),
        command=shell_command(ctx["command"]))  # the same quoting helper as the template filter


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_rendering(experiment: Path) -> None:
    plan = render_plan(make_plan(experiment))
    contexts = [job.context for job in plan.jobs]
    renderer = Renderer()
    jinja = [renderer.render(c) for c in contexts]
    plain = [format_job(c) for c in contexts]
    assert jinja == plain, "the baseline must produce the same bytes"
    t_jinja = best_of(lambda: [renderer.render(c) for c in contexts])
    t_format = best_of(lambda: [format_job(c) for c in contexts])
    n = len(contexts)
    print(f"rendering {n} scripts: jinja {t_jinja:.3f} s ({n / t_jinja:,.0f}/s), str.format {t_format:.3f} s"
          f" ({n / t_format:,.0f}/s); jinja at {100 * t_format / t_jinja:.0f}% of str.format's speed")
    t_plan = best_of(lambda: render_plan(make_plan(experiment)), repeat=1)
    print(f"make_plan + render_plan (load, expand, validate, estimate, render) of {n} points: {t_plan:.3f} s")
    start = time.perf_counter()
    write_plan(plan, experiment.parent / "write-plan")  # removed with the rest, after every timing
    print(f"write_plan of {n} scripts into a fresh folder (file-system work): {time.perf_counter() - start:.3f} s")


def bench_command(experiment: Path, out: Path) -> None:
    cmd = [*SLURMKIT, "generate", str(experiment), "--out", str(out)]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    first = subprocess.run(cmd, capture_output=True, text=True, check=True)
    t_first = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = after.ru_utime - usage.ru_utime, after.ru_stime - usage.ru_stime
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    start = time.perf_counter()
    second = subprocess.run(cmd, capture_output=True, text=True, check=True)
    t_second = time.perf_counter() - start
    rewritten = sum(1 for p, m in mtimes.items() if p.stat().st_mtime_ns != m)
    print(f"slurmkit generate, {len(mtimes) - 1} scripts, fresh folder: {t_first:.2f} s ({first.stderr.strip()})")
    # System time is the kernel creating 10,001 files. On this VM's ext4 the same creations take
    # 0.1 to 4 s: for minutes after many files were deleted nearby (a previous run's clean-up,
    # test suites in /tmp) ext4 checks each recently freed inode before reusing one (perf:
    # find_inode_bit -> recently_deleted). User time is slurmkit's own work.
    print(f"  CPU: slurmkit's own code (user) {user:.2f} s; the kernel creating the files (system) {system:.2f} s")
    print(f"slurmkit generate again, unchanged: {t_second:.2f} s ({second.stderr.strip()}); files rewritten: {rewritten}")


def import_ms(args: list[str]) -> tuple[float, list[str]]:
    """Total import time (sum of -X importtime self times) and heavy modules imported."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "slurmkit", *args],
                         capture_output=True, text=True)
    total_us, heavy = 0, set()
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if m:
            total_us += int(m.group(1))
            if m.group(2).split(".")[0] in ("pandas", "pyarrow", "matplotlib", "torch"):
                heavy.add(m.group(2).split(".")[0])
    return total_us / 1000, sorted(heavy)


def bench_imports(tmp: Path) -> None:
    smoke = ROOT / "experiments" / "local-smoke.yaml"
    for label, args in (("slurmkit --help", ["--help"]),
                        ("slurmkit generate", ["generate", str(smoke), "--out", str(tmp / "smoke")])):
        ms, heavy = min((import_ms(args) for _ in range(5)), key=lambda r: r[0])
        wall = min(command_ms(args) for _ in range(7)) - min(command_ms(None) for _ in range(7))
        print(f"{label}: imports {ms:.0f} ms (sum of -X importtime, which inflates them); the whole"
              f" command {wall:.0f} ms beyond a bare interpreter; heavy modules imported: {heavy or 'none'}")


def command_ms(args: list[str] | None) -> float:
    """Wall time of the command (None: of `python -c pass`), in ms."""
    cmd = [*SLURMKIT, *args] if args is not None else [sys.executable, "-c", "pass"]
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--work-dir", default=str(ROOT / "bench" / "out"),
                        help="where to write (default bench/out; /dev/shm leaves out the disk; in /tmp,"
                             " where test suites delete many files, ext4 creates files several times slower)")
    args = parser.parse_args()
    # byte-compile as `pip install` does: with PYTHONDONTWRITEBYTECODE set (this VM) a checkout
    # would otherwise recompile every changed module on each start, and that is not import time
    compileall.compile_dir(ROOT / "slurmkit", quiet=1)
    Path(args.work_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.work_dir, prefix=".bench-generate-") as tmp_name:
        tmp = Path(tmp_name)
        experiment = tmp / "bench.yaml"
        experiment.write_text(sweep_yaml(args.points))
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
              " (other work on the machine inflates every number)")
        bench_command(experiment, tmp / "run")  # first: before this run deletes anything
        bench_rendering(experiment)
        bench_imports(tmp)
    # (the folder is removed only now: deleting many files slows creating files for minutes)


if __name__ == "__main__":
    main()
