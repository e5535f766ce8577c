"""Start-up of `slurmkit --help` and `slurmkit generate` on the reference sweep (dry run).

Prints, for each command, the median of N runs of: the import time (sum of ``-X importtime``
self times, which inflates it), the share of it spent in pydantic and its dependencies, and the
wall time of the whole command. ``--src DIR`` measures another checkout of slurmkit (for example
``git archive <commit> | tar -x -C DIR``) with the same interpreter, so before and after can be
measured in one session on a machine whose speed drifts.
"""
from __future__ import annotations

import argparse
import compileall
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# pydantic and what only it brings in (typing_inspection, annotated_types)
PYDANTIC = ("pydantic", "pydantic_core", "annotated_types", "typing_inspection", "typing_extensions")
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+\d+ \|(\s*)(\S+)")


def import_ms(env: dict[str, str], args: list[str]) -> tuple[float, float, bool]:
    """(total import ms, pydantic's share in ms, whether pydantic was imported) of one run."""
    # cwd: `-m` puts the working directory first on sys.path, before PYTHONPATH
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "slurmkit", *args],
                         capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    total_us = pydantic_us = 0
    for line in out.stderr.splitlines():
        if m := IMPORT_LINE.match(line):
            total_us += int(m.group(1))
            if m.group(3).split(".")[0] in PYDANTIC:
                pydantic_us += int(m.group(1))
    return total_us / 1000, pydantic_us / 1000, pydantic_us > 0


def wall_ms(env: dict[str, str], args: list[str] | None) -> float:
    """Wall time of the installed `slurmkit` command (None: of `python -c pass`), in ms."""
    cmd = [str(Path(sys.executable).with_name("slurmkit")), *args] if args is not None else [sys.executable, "-c", "pass"]
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True, env=env, cwd=tempfile.gettempdir())
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, action="append",
                        help="checkout whose slurmkit/ is measured (repeatable; default this one)")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    sources = [s.resolve() for s in args.src or [ROOT]]
    for src in sources:
        # byte-compiled as `pip install` does: with PYTHONDONTWRITEBYTECODE set, a checkout would
        # otherwise recompile every module on each start, and that is not import time
        compileall.compile_dir(src / "slurmkit", quiet=1)
    print(f"python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}, median of {args.runs},"
          " the checkouts measured in turn (the machine's speed drifts)")
    with tempfile.TemporaryDirectory() as tmp:
        commands = {"slurmkit --help": ["--help"],
                    "slurmkit generate llama2-7b-pretrain --dry-run":
                        ["generate", "llama2-7b-pretrain", "--out", str(Path(tmp) / "x"), "--dry-run"]}
        envs = {src: {**os.environ, "PYTHONPATH": str(src)} for src in sources}
        bare = statistics.median(wall_ms(envs[sources[0]], None) for _ in range(args.runs))
        for label, cmd in commands.items():
            imports: dict[Path, list] = {src: [] for src in sources}
            walls: dict[Path, list] = {src: [] for src in sources}
            for _ in range(args.runs):
                for src in sources:
                    imports[src].append(import_ms(envs[src], cmd))
                    walls[src].append(wall_ms(envs[src], cmd))
            for src in sources:
                total = statistics.median(i[0] for i in imports[src])
                share = statistics.median(i[1] for i in imports[src])
                wall = statistics.median(walls[src])
                print(f"{src}: {label}: imports {total:.0f} ms (pydantic {share:.0f} ms, imported:"
                      f" {imports[src][0][2]}); wall {wall:.0f} ms, {wall - bare:.0f} ms beyond a bare"
                      f" interpreter ({bare:.0f} ms)")


if __name__ == "__main__":
    main()
