"""Hostile and broken config input (issue 11, "Bounded input"): every case is refused by the real
command in a child process with exit code 2 and one line per problem naming file:line, before
anything is written, within 2 s of CPU and 200 MB of memory (the issue's limits, not benchmarks:
today's code takes minutes and gigabytes on most of these, or ends in a traceback).

The command's own resource use comes from os.wait4 in a small launcher process: a child forked
straight from pytest would count pytest's memory as its own (Linux keeps the peak of the memory a
process had before exec).
Time is CPU time (user + system): the machines that run the tests are shared, and a limit on wall
time would measure the neighbours; the wall-clock timeout only stops a hang.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from slurmkit.cli.config import generate
from slurmkit.config.sweep import MAX_POINTS

ROOT = Path(__file__).parents[2]
BASE = (Path(__file__).parent / "data" / "base-experiment.yaml").read_text()  # 14 lines, valid
BASE_LINES = BASE.count("\n")
CPU_LIMIT_S = 2.0
RSS_LIMIT_MB = 200
HANG_S = 60  # a child still running by then has hung: kill it and fail

# The classic "billion laughs": 9 levels of 9 aliases, 9**9 * 9 strings once expanded
LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]\n" for prev, name in zip("abcdefgh", "bcdefghi"))


@dataclass
class Run:
    code: int
    out: str
    err: str
    cpu_s: float
    rss_mb: float


# Spawns the command and writes "<cpu seconds> <peak RSS KiB>" of it alone to argv[1]
_LAUNCHER = """
import os, sys
pid = os.posix_spawn(sys.executable, [sys.executable, "-m", "slurmkit", *sys.argv[2:]], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as report:
    report.write(f"{usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def slurmkit(tmp_path: Path, *args: str) -> Run:
    """Run ``python -m slurmkit ARGS`` in ``tmp_path``; its exit code, output and resource use."""
    out, err, usage = tmp_path / ".stdout", tmp_path / ".stderr", tmp_path / ".usage"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with out.open("wb") as stdout, err.open("wb") as stderr:
        child = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(usage), *args], cwd=tmp_path, env=env,
                                 stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            child.wait(HANG_S)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            raise
    cpu_s, rss_kib = usage.read_text().split()
    return Run(child.returncode, out.read_text(), err.read_text(), float(cpu_s), int(rss_kib) / 1024)


def refused(run: Run, *lines: str) -> None:
    """Exit 2, nothing on stdout, exactly ``lines`` on stderr, within the issue's limits."""
    assert (run.code, run.out) == (2, ""), run.err
    assert run.err.splitlines() == list(lines)
    assert run.cpu_s < CPU_LIMIT_S and run.rss_mb < RSS_LIMIT_MB, (run.cpu_s, run.rss_mb)


def refused_at(run: Run, prefix: str, *words: str) -> str:
    """Exit 2, one line starting with ``error: <prefix>`` (file:line...) and holding ``words``."""
    assert (run.code, run.out) == (2, ""), run.err
    [line] = run.err.splitlines()
    assert line.startswith(f"error: {prefix}") and all(w in line for w in words), line
    assert run.cpu_s < CPU_LIMIT_S and run.rss_mb < RSS_LIMIT_MB, (run.cpu_s, run.rss_mb)
    return line


def experiment(tmp_path: Path, text: str = BASE, name: str = "e.yaml") -> str:
    (tmp_path / name).write_text(text)
    return name


def generate_refused(tmp_path: Path, exp: str, *args: str) -> Run:
    """generate must refuse without creating its --out folder."""
    run = slurmkit(tmp_path, "generate", exp, "--out", "run", *args)
    assert not (tmp_path / "run").exists()
    return run


# --- aliases ---------------------------------------------------------------------------------

BOMB_ERROR = (":{line}:8: alias *e makes the document expand to more than 100,000 values (an alias"
              " repeats all its anchor holds) (hint: use fewer or less nested aliases; a config needs a few"
              " hundred values)")


def test_alias_bomb_in_an_experiment(tmp_path):
    assert len(LAUGHS) < 545
    exp = experiment(tmp_path, BASE + LAUGHS)
    # f: holds nine *e of 66,430 values each (9**5 strings and the lists): the first crosses the bound
    line = BASE_LINES + 6
    refused(generate_refused(tmp_path, exp), "error: e.yaml" + BOMB_ERROR.format(line=line))
    refused(slurmkit(tmp_path, "validate", exp), "error: e.yaml" + BOMB_ERROR.format(line=line))


def test_alias_bomb_in_a_site_file(tmp_path):
    (tmp_path / "site.yaml").write_text("scheduler: {partition: p}\n" + LAUGHS)
    refused(slurmkit(tmp_path, "validate", "site.yaml"), "error: site.yaml" + BOMB_ERROR.format(line=7))
    run = generate_refused(tmp_path, experiment(tmp_path), "--site", "./site.yaml")
    refused(run, "error: site.yaml" + BOMB_ERROR.format(line=7))


def test_alias_bomb_in_a_models_file(tmp_path):
    (tmp_path / "models.yaml").write_text(LAUGHS)
    exp = experiment(tmp_path, BASE + "models_file: models.yaml\n")
    refused(generate_refused(tmp_path, exp), "error: models.yaml" + BOMB_ERROR.format(line=6))


def test_recursive_alias(tmp_path):
    exp = experiment(tmp_path, BASE + "env: &loop {A: *loop}\n")
    refused(generate_refused(tmp_path, exp),
            f"error: e.yaml:{BASE_LINES + 1}:16: alias *loop names a node that contains it (a recursive"
            " structure) (hint: write the values out instead of the alias)")


def test_aliases_within_the_bound_still_work(tmp_path):
    text = BASE.replace("tp: 1", "tp: &one 1").replace("pp: 1", "pp: *one")
    run = slurmkit(tmp_path, "validate", experiment(tmp_path, text))
    assert (run.code, run.out) == (0, "ok: e.yaml (1 jobs)\n"), run.err


# --- size ------------------------------------------------------------------------------------

def test_a_48_mb_file_of_4_million_env_keys(tmp_path):
    text = (BASE + "env:\n" + "".join(f"  K{i}: v\n" for i in range(4_000_000))).encode()
    assert len(text) > 48_000_000
    (tmp_path / "e.yaml").write_bytes(text)
    head = text[:4 * 2**20]  # the line and column of the first byte past 4 MiB
    line, column = head.count(b"\n") + 1, len(head) - head.rfind(b"\n")
    size = f"{len(text) / 2**20:.1f}"
    del text, head
    refused_at(generate_refused(tmp_path, "e.yaml"), f"e.yaml:{line}:{column}: the file is {size} MiB; a config file may"
               " be at most 4 MiB (this line passes the limit)")


def test_many_values_under_the_size_limit(tmp_path):
    keys = "".join(f"  K{i}: v\n" for i in range(300_000))
    exp = experiment(tmp_path, BASE + "env:\n" + keys)
    assert (tmp_path / exp).stat().st_size < 4 * 2**20
    # the document reaches 100,001 values at about the 50,000th key
    line = refused_at(generate_refused(tmp_path, exp), "e.yaml:",
                      "the document has more than 100,000 values (keys, items and scalars)")
    assert 49_000 < int(line.split(":")[2]) < 51_000


def test_deep_nesting(tmp_path):
    exp = experiment(tmp_path, BASE + "env: " + "[" * 900 + "]" * 900 + "\n")
    refused(generate_refused(tmp_path, exp), f"error: e.yaml:{BASE_LINES + 1}:69: the document nests more"
            " than 64 levels deep (hint: configs need a few levels; flatten the structure)")


# --- characters ------------------------------------------------------------------------------

def test_nul_byte(tmp_path):
    exp = experiment(tmp_path, BASE.replace("steps: 50", "steps: 5\x000"))
    refused(generate_refused(tmp_path, exp), "error: e.yaml:8:9: control character U+0000 (NUL) is not allowed"
            " in a config file (hint: a NUL byte means a binary file, or text saved as UTF-16: save it as UTF-8)")


def test_control_character(tmp_path):
    exp = experiment(tmp_path, BASE.replace("name: t", "name: t\x1b[31m"))
    refused(generate_refused(tmp_path, exp), "error: e.yaml:2:8: control character U+001B (ESC) is not allowed"
            " in a config file (hint: delete it (an editor may show it as ^ and a letter, or not at all))")


def test_bytes_that_are_not_utf8(tmp_path):
    (tmp_path / "e.yaml").write_bytes(BASE.replace("steps: 50", "steps: 5\xff").encode("latin-1"))
    refused(generate_refused(tmp_path, "e.yaml"), "error: e.yaml:8:9: the file is not UTF-8 text: byte 0xff"
            " cannot be decoded (hint: save the file as UTF-8)")


# --- the sweep's size ------------------------------------------------------------------------

def test_a_billion_repeats(tmp_path):
    exp = experiment(tmp_path, BASE + "repeats: 1000000000\n")
    message = (f"error: e.yaml:{BASE_LINES + 1}:1: the sweep has 1,000,000,000 points (sites 1 × repeats"
               " 1,000,000,000), more than --max-points 100,000 (hint: narrow the matrix or split the"
               " experiment (exclude entries are not subtracted); --max-points N raises the limit)")
    refused(generate_refused(tmp_path, exp), message)
    refused(slurmkit(tmp_path, "validate", exp), message)


def test_a_485_byte_matrix_of_ten_million_points(tmp_path):
    axes = ["nodes", "steps", "tp", "mbs", "gbs", "seq_len", "warmup_steps"]
    matrix = "matrix:\n" + "".join(f"  {axis}: [{', '.join(str(2**i) for i in range(10))}]\n" for axis in axes)
    assert len(matrix) <= 485
    exp = experiment(tmp_path, BASE + matrix)
    factors = " × ".join(["sites 1", *(f"{axis} 10" for axis in axes)])
    refused(generate_refused(tmp_path, exp), f"error: e.yaml:{BASE_LINES + 1}:1: the sweep has 10,000,000 points"
            f" ({factors}), more than --max-points 100,000 (hint: narrow the matrix or split the experiment"
            " (exclude entries are not subtracted); --max-points N raises the limit)")


def test_max_points_option(tmp_path):
    exp = experiment(tmp_path, BASE.replace("sites: [xe9680-8cx7]", "sites: [xe9680-8cx7, xe9680-4cx7]")
                     + "repeats: 2\nmatrix:\n  nodes: [1, 2]\n  include:\n    - {nodes: 1, steps: 60}\n")
    # 2 sites x 2 nodes, the include merges into existing points: 4 jobs, each twice
    ok = slurmkit(tmp_path, "validate", exp, "--max-points", "10")
    assert ok.code == 0 and ok.out == "ok: e.yaml (8 jobs)\n", ok.err
    run = slurmkit(tmp_path, "validate", exp, "--max-points", "9")
    refused(run, f"error: e.yaml:{BASE_LINES + 2}:1: the sweep has 10 points ((sites 2 × nodes 2 + include 1)"
            " × repeats 2), more than --max-points 9 (hint: narrow the matrix or split the experiment (exclude"
            " entries are not subtracted); --max-points N raises the limit)")
    refused_at(generate_refused(tmp_path, exp, "--max-points", "9"), "e.yaml:16:1:", "more than --max-points 9")


def test_max_points_default_is_the_library_default():
    [option] = [p for p in generate.params if p.name == "max_points"]
    assert option.default == MAX_POINTS == 100_000


def test_include_and_exclude_matching_is_bounded(tmp_path):
    values = ", ".join(str(i) for i in range(1, 301))
    excludes = "".join(f"    - {{steps: {i}, gbs: 1}}\n" for i in range(1, 401))
    exp = experiment(tmp_path, BASE + f"matrix:\n  steps: [{values}]\n  gbs: [{values}]\n  exclude:\n{excludes}")
    # 90,000 points are allowed; matching them with 400 entries is 36,000,000 comparisons
    refused(generate_refused(tmp_path, exp), f"error: e.yaml:{BASE_LINES + 1}:1: matching 90,000 combinations with"
            " 400 include/exclude entries takes 36,000,000 comparisons, more than 100 per point of --max-points"
            " 100,000 (hint: use fewer include/exclude entries: an axis of their values often says the same)")


# --- names, paths and numbers ----------------------------------------------------------------

def test_a_300_character_site_name(tmp_path):
    name = "s" * 300
    exp = experiment(tmp_path, BASE.replace("xe9680-8cx7", name))
    message = (f"error: e.yaml:3:9: site name {'s' * 24}... of 305 bytes is too long for a file name (the file"
               " system takes at most 255) (hint: use a shorter site name or path)")
    refused(generate_refused(tmp_path, exp), message)
    refused(slurmkit(tmp_path, "validate", exp), message)
    refused_at(generate_refused(tmp_path, experiment(tmp_path), "--site", name), "e.yaml:3:", "305 bytes")


def test_a_300_character_model_name(tmp_path):
    name = "m" * 300
    (tmp_path / "models.yaml").write_text(f"schema_version: 1\nmodels:\n  {name}: {{layers: 2, hidden: 64,"
                                          " ffn_hidden: 128, heads: 4, kv_heads: 4, vocab: 1000, max_seq_len: 4096}\n")
    exp = experiment(tmp_path, BASE.replace("llama2-7b", name) + "models_file: models.yaml\n")
    # refused by the model name's own bound, or at the latest by the run id's file names: never half-written
    run = generate_refused(tmp_path, exp)
    assert run.code == 2 and len(run.err.splitlines()) == 1 and run.err.startswith("error: "), run.err
    assert ".yaml:" in run.err and "Traceback" not in run.err
    assert run.cpu_s < CPU_LIMIT_S and run.rss_mb < RSS_LIMIT_MB
    assert not list(tmp_path.glob("**/*.sbatch"))


def test_a_5000_digit_number(tmp_path):
    exp = experiment(tmp_path, BASE.replace("steps: 50", "steps: " + "9" * 5000))
    refused(generate_refused(tmp_path, exp), "error: e.yaml:8:8: a number of 5,000 characters is too long (at most"
            " 64) (hint: quote it if it is text)")


def test_a_date_that_does_not_exist(tmp_path):
    exp = experiment(tmp_path, BASE.replace("name: t", "name: 2024-02-30"))
    refused(generate_refused(tmp_path, exp), "error: e.yaml:2:7: invalid date '2024-02-30': day is out of range"
            " for month (hint: quote it if it is text)")


def test_an_experiment_path_too_long(tmp_path):
    name = "x" * 300 + ".yaml"
    for command in ("generate", "validate"):
        refused_at(slurmkit(tmp_path, command, name), f"{'x' * 80}:", "305 bytes is too long for a file name")


def test_an_out_folder_too_long(tmp_path):
    exp = experiment(tmp_path)
    out = "/".join(["o" * 200] * 20)  # 4,019 bytes: the folder fits PATH_MAX, its scripts do not
    run = slurmkit(tmp_path, "generate", exp, "--out", out)
    refused_at(run, f"{out[:80]}:", "too long (the file system takes at most 4,095)", "choose a shorter --out")
    assert not (tmp_path / ("o" * 200)).exists()


def test_a_checkpoint_folder_too_long(tmp_path):
    folder = "/".join(["c" * 200] * 19)  # 3,819 bytes: no room for a file name under the run's folder
    exp = experiment(tmp_path, BASE + f"checkpoint_dir: /{folder}\n")
    refused_at(generate_refused(tmp_path, exp), f"e.yaml:{BASE_LINES + 1}:17: checkpoint_dir /ccc",
               "too long (the file system takes at most 3,839 for a folder that files are written into)")


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_file_that_is_not_a_file(tmp_path, kind):
    """A device reads forever; the bounded read stops at the limit."""
    path = tmp_path / "e.yaml"
    if kind == "fifo":
        os.mkfifo(path)
        writer = threading.Thread(target=lambda: _feed(path), daemon=True)
        writer.start()
    else:
        path.symlink_to("/dev/zero")
    run = slurmkit(tmp_path, "validate", "e.yaml")
    if kind == "fifo":
        refused_at(run, "e.yaml:", "the file is larger; a config file may be at most 4 MiB")
    else:
        refused_at(run, "e.yaml:1:", "the file is larger; a config file may be at most 4 MiB")


def _feed(path: Path) -> None:
    try:
        with path.open("wb") as fifo:
            while True:
                fifo.write(b"a: 1\n" * 65536)
    except BrokenPipeError:
        pass
