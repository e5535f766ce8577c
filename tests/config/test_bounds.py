"""Values that cannot work are refused by the config models (issue 11, bounded input): each case
through the CLI's entry point, exit code 2, one line naming file:line:col, nothing written,
within the issue's limits of 2 s and 200 MB (of Python memory: tracemalloc's peak)."""
from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

# A site the shipped local-smoke experiment runs on; each case changes one line of it.
SITE = """\
schema_version: 1
name: mine
scheduler:
  partition: debug
  gpu_request: gres
  mpi: null
nodes: {count: 4, model: node, cpus: 2, mem_gib: 4}
gpu: {model: fake, count_per_node: 2, mem_gib: 2, peak_tflops_bf16: 0.05, reserved_gib: 0.25}
network:
  fabric: ethernet
  socket_interface: eth0
software:
  python: python
  container: {image: registry.example/trainer:1}
"""
LONG = "m" * 100_000  # a 100 kB value: "Argument list too long" once it reaches a command line


@pytest.fixture
def refused(cli, tmp_path, monkeypatch):
    """Run the real command in tmp_path; check it is refused with exactly the ``expected`` line,
    exit code 2, nothing written, in under 2 s and 200 MB of Python memory."""
    monkeypatch.chdir(tmp_path)

    def check(args: list[str], expected: str) -> None:
        tracemalloc.start()
        start = time.perf_counter()
        code, _, err = cli(*args)
        seconds, (_, peak) = time.perf_counter() - start, tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert (code, err.splitlines()) == (2, [expected])
        assert not (tmp_path / "run").exists()  # refused before anything is written
        assert seconds < 2 and peak < 200e6, (seconds, peak)

    return check


@pytest.mark.parametrize("old, new, expected", [
    ("mem_gib: 2,", "mem_gib: .inf,", "8:48: gpu.mem_gib: Input should be a finite number (hint: got inf)"),
    ("mem_gib: 4}", "mem_gib: .nan}", "7:50: nodes.mem_gib: Input should be a finite number (hint: got nan)"),
    ("socket_interface: eth0", "socket_interface: eth0\n  gid_index: -5",
     "12:14: network.gid_index: Input should be greater than or equal to 0 (hint: got -5)"),
    ("partition: debug", "partition: ''",
     "4:14: scheduler.partition: String should have at least 1 character (hint: got '')"),
    ("python: python", "python: ''", "13:11: software.python: String should have at least 1 character (hint: got '')"),
    ("image: registry.example/trainer:1", "image: ''",
     "14:22: software.container.image: String should have at least 1 character (hint: got '')"),
    ("name: mine", "name: " + "s" * 300,
     f"2:7: name: String should have at most 64 characters (hint: got '{'s' * 39}... (300 characters))"),
    ("socket_interface: eth0", f"socket_interface: eth0\n  adapters: {{count: 1, model: x, rate_gbps: 10,"
     f" hca_prefix: {LONG}}}", "12:61: network.adapters.hca_prefix: String should have at most 4096 characters"
     f" (hint: got '{'m' * 39}... (100000 characters))"),
    ("socket_interface: eth0", "socket_interface: eth0\n  adapters: {count: 1000000000, model: x, rate_gbps: 10}",
     "12:21: network.adapters.count: Input should be less than or equal to 64 (hint: got 1000000000)"),
    ("count: 4,", "count: 1e400,", "7:16: nodes.count: Input should be a finite number (hint: got inf)"),
    ("count: 4,", "count: 99999999999999999999,",
     "7:16: nodes.count: Input should be less than or equal to 2147483647 (hint: got 99999999999999999999)"),
])
def test_a_site_value_that_cannot_work_is_one_line(refused, tmp_path, old, new, expected):
    assert SITE.count(old) == 1
    (tmp_path / "site.yaml").write_text(SITE.replace(old, new))
    refused(["generate", "local-smoke", "--site", "site.yaml", "--out", "run"], f"error: site.yaml:{expected}")


@pytest.mark.parametrize("added, expected", [
    ("lr: .inf", "lr: Input should be a finite number (hint: got inf)"),
    ("lr: -1e-4", "lr: Input should be greater than 0 (hint: got '-1e-4')"),
    ("warmup_steps: -1", "warmup_steps: Input should be greater than or equal to 0 (hint: got -1)"),
    ("dataset: ''", "dataset: String should have at least 1 character (hint: got '')"),
    ("container_image: ''", "container_image: String should have at least 1 character (hint: got '')"),
    ("steps: 5000000000", "steps: Input should be less than or equal to 2147483647 (hint: got 5000000000)"),
    ("model: " + "m" * 300,
     f"model: String should have at most 64 characters (hint: got '{'m' * 39}... (300 characters))"),
    ("extra_args: [" + LONG + "]",
     f"extra_args.0: String should have at most 4096 characters (hint: got '{'m' * 39}... (100000 characters))"),
    ("checkpoint_dir: ''", "checkpoint_dir: String should have at least 1 character (hint: got '')"),
])
def test_an_experiment_value_that_cannot_work_is_one_line(refused, tmp_path, added, expected):
    text = (ROOT / "experiments" / "local-smoke.yaml").read_text()
    key = added.split(":")[0]
    lines = [line for line in text.splitlines() if not line.startswith(f"{key}:")]
    at = lines.index("matrix:")  # the value goes where the fixed settings end, before the matrix
    lines.insert(at, added)
    (tmp_path / "e.yaml").write_text("\n".join(lines) + "\n")
    column = len(key) + 3 + added.endswith("]")  # a list's first item is after its bracket
    refused(["generate", "e.yaml", "--out", "run"], f"error: e.yaml:{at + 1}:{column}: {expected}")


def test_a_model_name_that_cannot_be_a_run_id_part_is_one_line(refused, tmp_path):
    arch = "{layers: 2, hidden: 64, ffn_hidden: 256, heads: 4, kv_heads: 4, vocab: 512, max_seq_len: 256}"
    (tmp_path / "m.yaml").write_text(f"schema_version: 1\nmodels:\n  {'m' * 300}: {arch}\n")
    refused(["models", "--models-file", "m.yaml"], f"error: m.yaml:3:3: models.{'m' * 40}... (300 characters)"
            f" (key): String should have at most 64 characters (hint: got '{'m' * 39}... (300 characters))")
