"""Real corpus logs -> steps and run facts, each asserted from what a person reads off the file."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from slurmkit.results.parsers.logfile import iter_ranges, read_log

DATA = Path(__file__).parent / "data"


def col(log, name):
    return log.steps.column(name).to_pylist()


def test_megatron_classic_ms():
    log = read_log(DATA / "megatron-llm-slow-iterations.log")
    assert log.format == "megatron"
    assert col(log, "step") == [122, 123, 124, 125]
    assert log.steps_target == 250000
    assert col(log, "step_time_s") == pytest.approx([86.5452, 87.8716, 89.4748, 89.0752])
    assert col(log, "loss")[-1] == pytest.approx(2.477393)
    assert col(log, "grad_norm")[-1] == pytest.approx(0.356)
    assert col(log, "lr")[0] == pytest.approx(9.150e-06)
    assert col(log, "consumed_samples")[0] == 124928
    assert col(log, "source_line") == [1, 2, 3, 4]


def test_megatron_deepspeed_seconds_and_tflops():
    log = read_log(DATA / "bloom176b-loss-spike-elapsed-seconds.log")
    assert len(col(log, "step")) == 11 and col(log, "step")[-1] == 31251
    assert col(log, "step_time_s")[0] == pytest.approx(106.46)  # "(s)": seconds, not ms
    assert col(log, "tflops_per_gpu")[-1] == pytest.approx(147.75)
    assert col(log, "loss")[-1] == pytest.approx(2.235667)
    assert col(log, "source_line")[-1] == 12  # after the "[...]" elision line


def test_megatron_hard_wrapped_records():
    log = read_log(DATA / "bloom176b-throughput-drop-hard-wrapped.log")
    assert col(log, "step") == [42780, 42781, 42782, 42783, 42784]
    assert col(log, "lr") == pytest.approx([4.475e-05] * 5)  # "learning\n rate" wrapped
    assert col(log, "grad_norm")[0] == pytest.approx(0.150)
    assert col(log, "tflops_per_gpu")[-1] == pytest.approx(141.09)  # third physical line
    assert col(log, "source_line") == [1, 4, 7, 10, 13]


def test_megatron_missing_loss_is_null_not_zero():
    log = read_log(DATA / "megatron-bert-setup-skipped-iters-timers.log")
    assert col(log, "step") == [10] and col(log, "loss") == [None]
    assert col(log, "step_time_s") == pytest.approx([0.3562])
    nan = read_log(DATA / "megatron-deepspeed-gradnorm-nan-no-loss.log")
    assert col(nan, "loss") == [None] * 3
    assert all(g != g for g in col(nan, "grad_norm"))  # nan kept as a value


def test_megatron_timestamps_and_throughput():
    log = read_log(DATA / "megatron-moe-timestamps-tflops.log")
    assert col(log, "tflops_per_gpu") == pytest.approx([243.6, 238.7, 224.0])
    assert col(log, "time")[0] == datetime(2024, 4, 6, 3, 2, 12, tzinfo=timezone.utc)
    assert log.steps_target == 100


def test_nemo2_zero_based_iterations():
    log = read_log(DATA / "nemo2-early-2024-no-step-timing.log")
    assert log.format == "nemo2"
    assert col(log, "step") == list(range(1, 10))  # iteration 0..8 of 0..9
    assert log.steps_target == 10
    assert col(log, "step_time_s") == [None] * 9
    assert col(log, "loss")[-1] == pytest.approx(7.113)


def test_nemo2_srun_prefix_memory_tflops():
    log = read_log(DATA / "nemo2-perf-srun-prefix-tflops.log")
    assert col(log, "step") == [9, 10, 11, 12]
    assert col(log, "step_time_s") == pytest.approx([27.01, 27.88, 26.63, 26.93])
    assert col(log, "tflops_per_gpu") == pytest.approx([48.58, 85.8, 85.8, 85.8])
    assert col(log, "mem_gib")[0] == pytest.approx(57466159104 / 2**30)
    assert log.steps_target == 30


def test_nemo1_bar_nan_loss_scientific_step():
    log = read_log(DATA / "nemo1-progress-nan-loss-val-ckpt.log")
    assert log.format == "nemo"
    assert col(log, "step") == [9000] and log.steps_target == 301500
    assert col(log, "loss")[0] != col(log, "loss")[0]  # nan.0
    assert col(log, "consumed_samples") == [630000]  # 6.3e+5
    assert col(log, "step_time_s") == pytest.approx([0.615])


def test_nemo1_glued_watchdog_timeout():
    log = read_log(DATA / "bionemo1-progress-glued-nccl-watchdog-timeout.log")
    assert col(log, "step") == [32040] and col(log, "loss") == pytest.approx([2.590])
    assert log.failure.reason == "nccl_timeout" and log.failure.line == 1
    assert log.failure.evidence.startswith("[Rank 0] Watchdog caught collective operation timeout")


def test_nemo1_last_step_of_finished_run():
    log = read_log(DATA / "dgxc-nemo1-gpt3-175b-grep-last-step-and-scaling-table.txt")
    assert col(log, "step") == [50] and log.steps_target == 50
    assert col(log, "step_time_s") == pytest.approx([5.9])
    assert col(log, "loss") == pytest.approx([6.13])


def test_torchtitan_all_ranks_one_row_per_step():
    log = read_log(DATA / "torchtitan-all-ranks-duplicated.log")
    assert log.format == "torchtitan"
    assert col(log, "step") == [4, 5]
    assert col(log, "tokens_per_s_per_gpu")[0] == 10049  # last rank's line for step 4
    assert col(log, "mem_gib")[0] == pytest.approx(66.91)
    assert col(log, "loss")[1] == pytest.approx(7.07623)


def test_torchtitan_step_time_from_timestamps():
    log = read_log(DATA / "torchtitan-rank0-prefix.log")
    assert col(log, "step") == list(range(14, 22))
    assert col(log, "step_time_s")[0] is None
    assert col(log, "step_time_s")[1] == pytest.approx(47.456 - 46.338)
    old = read_log(DATA / "torchtitan-2024-wps-no-titan-prefix.log")
    assert col(old, "step") == [1, 10, 20, 30]
    assert col(old, "tokens_per_s_per_gpu")[1] == 2792  # "wps: 2,792"
    assert col(old, "step_time_s")[1] == pytest.approx((42.562 - 16.156) / 9)


def test_hf_dicts():
    log = read_log(DATA / "hf-trainer-dicts-tqdm-padding.log")
    assert log.format == "hf"
    assert col(log, "step") == list(range(1, 11))  # no step in HF dicts: record ordinal
    assert col(log, "loss")[-1] == pytest.approx(2.4189)
    assert col(log, "lr")[0] == pytest.approx(0.00011470588235294115)
    swift = read_log(DATA / "ms-swift-timestamped-hf-dicts.log")
    assert swift.steps_target == 1881 and col(swift, "step")[-1] == 365


def test_mllog_lora():
    log = read_log(DATA / "nvidia-llama2-70b-lora-eos-n128-v4.0.log")
    assert log.format == "mllog"
    assert len(col(log, "step")) == 11
    assert col(log, "step")[-1] == 11136 // 128  # metadata.step counts samples; GBS 128
    assert col(log, "consumed_samples")[-1] == 11136
    assert log.facts["mlperf_status"] == "success"
    assert log.facts["run_stop_ms"] - log.facts["run_start_ms"] == 1714905658686 - 1714905569479


@pytest.mark.parametrize("name, reason, line", [
    ("slurmstepd-oom-kill-and-bus-error.log", "oom", 1),
    ("srun-step-timelimit-task-ranges.log", "time_limit", 3),
    ("nccl-warn-ibv-reg-mr-rank-traceback.log", "nccl_error", 7),
    ("torchrun-sigterm-childfailed-traceback.log", "launch_error", 4),
    ("bloom176b-cuda-error-crash-rank-prefix.log", "unknown", 1),
])
def test_failures(name, reason, line):
    log = read_log(DATA / name)
    assert (log.failure.reason, log.failure.line) == (reason, line)
    assert not log.failure.evidence.startswith(("> [rank", "[default"))  # label stripped


def test_no_records_no_format():
    log = read_log(DATA / "nemo1-lora-info-lines-multiline-blocks.log")
    assert log.format is None and log.steps.num_rows == 0


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "x.out"
    path.write_bytes(data)
    return path


MEGA = (" iteration {s:8d}/     100 | consumed samples: {c:12d} | elapsed time per iteration (ms): "
        "{t:.1f} | learning rate: 1.000000E-04 | global batch size:   128 | lm loss: {l:.6E} | "
        "loss scale: 1.0 | grad norm: 1.000 | number of skipped iterations:   0 |\n")


def test_restart_and_rank_duplicates(tmp_path: Path):
    steps = [1, 2, 3, 3, 4, 2, 3, 4, 5]  # rank repeats step 3; a restart resumes from 2
    text = "".join(MEGA.format(s=s, c=s * 128, t=1000.0 + i, l=3.0) for i, s in enumerate(steps))
    log = read_log(_write(tmp_path, text.encode()))
    assert col(log, "restart") == [0, 0, 0, 0, 1, 1, 1, 1]
    assert col(log, "step") == [1, 2, 3, 4, 2, 3, 4, 5]
    assert col(log, "step_time_s")[2] == pytest.approx(1.003)  # last copy of step 3 wins


def test_carriage_returns_and_ansi(tmp_path: Path):
    bar = ("Epoch 0: {p:3d}%|##| {n}/4 [00:0{n}<00:10, v_num=0, reduced_train_loss={l:.3f}, "
           "global_step={g}.0, consumed_samples={c}.0, train_step_timing in s=0.500]")
    text = "".join("\r" + bar.format(p=25 * n, n=n, l=5.0 - n, g=n - 1, c=n * 8) for n in range(1, 5))
    text += "\r" + bar.format(p=100, n=4, l=1.0, g=3, c=32) + "[NeMo I x] glued\n"
    text += "".join(f"\rValidation DataLoader 0: {20 * j}%|#| {j}/5 [00:0{j}<00:05]" for j in range(6))
    log = read_log(_write(tmp_path, text.encode()))
    assert col(log, "step") == [1, 2, 3, 4] and col(log, "loss")[-1] == 1.0
    assert log.steps_target == 4  # not the validation bar's 5
    titan = ("\x1b[31mstep: {s:2d}  \x1b[32mloss:  7.{s}000  \x1b[33mmemory: 10.00GiB(9.00%)  "
             "\x1b[34mtps: 10,050  \x1b[36mtflops: 300.00  \x1b[35mmfu: 13.99%\x1b[39m\n")
    body = "".join(f"[titan] 2026-02-24 19:46:1{s},000 - root - INFO - " + titan.format(s=s) for s in (1, 2))
    log = read_log(_write(tmp_path, body.encode()))
    assert log.format == "torchtitan" and col(log, "step") == [1, 2]
    assert col(log, "tokens_per_s_per_gpu") == [10050, 10050]
    bare = body.replace("\x1b", "")  # a copy that lost the ESC bytes
    log = read_log(_write(tmp_path, bare.encode()))
    assert col(log, "loss") == pytest.approx([7.1, 7.2]) and col(log, "tflops_per_gpu") == [300.0, 300.0]


def test_small_ranges_give_same_rows(tmp_path: Path):
    text = "".join(MEGA.format(s=s, c=s, t=10.0, l=2.0) + "noise line\n" * 3 for s in range(1, 200))
    path = _write(tmp_path, text.encode())
    assert read_log(path, range_bytes=1000).steps.equals(read_log(path).steps)


def test_truncated_and_huge_lines_warn(tmp_path: Path):
    text = MEGA.format(s=1, c=1, t=5.0, l=2.0) + "x" * 5000 + "\n" + MEGA.format(s=2, c=2, t=5.0, l=2.0)[:60]
    log = read_log(_write(tmp_path, text.encode()), range_bytes=1024)
    assert col(log, "step")[0] == 1
    assert any("longer than" in w for w in log.warnings)
    assert any(w.endswith("last line has no line break (log cut mid-line)") for w in log.warnings)


def test_iter_ranges_line_numbers():
    import io
    data = b"a\nb\nc\n" * 1000
    ranges = list(iter_ranges(io.BytesIO(data), 100))
    assert b"".join(c for c, _, _ in ranges) == data
    assert all(first == 1 + b"".join(c for c, _, _ in ranges[:i]).count(b"\n")
               for i, (_, first, _) in enumerate(ranges))


def test_iter_ranges_from_a_pipe():
    """A pipe has no size to trust: it is read in whole ranges, not byte by byte."""
    import os
    import threading

    data = b"".join(b"line %d\n" % i for i in range(2000))
    read_fd, write_fd = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(write_fd, data), os.close(write_fd)))
    writer.start()
    with open(read_fd, "rb") as fh:
        ranges = list(iter_ranges(fh, 4096))
    writer.join()
    assert b"".join(c for c, _, _ in ranges) == data
    assert len(ranges) <= 2 * len(data) // 4096 + 2
    assert ranges[-1][1] == 1 + b"".join(c for c, _, _ in ranges[:-1]).count(b"\n")


def test_records_after_a_long_preamble(tmp_path: Path):
    preamble = "".join(f"  arg_{i} ........................ {i}\n" for i in range(20000))  # ~800 KB
    text = preamble + "".join(MEGA.format(s=s, c=s, t=10.0, l=2.0) for s in (1, 2, 3))
    log = read_log(_write(tmp_path, text.encode()))
    assert log.format == "megatron" and col(log, "step") == [1, 2, 3]
    assert col(log, "source_line") == [20001, 20002, 20003]


def test_root_cause_before_the_noise_of_other_ranks(tmp_path: Path):
    noise = "".join(f"node1:{i}:{i} [0] NCCL INFO Channel 00/0 : 0[0] -> 1[1] via P2P/IPC\n" for i in range(2000))
    text = (MEGA.format(s=1, c=1, t=10.0, l=2.0)
            + "[rank3]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n"
            + noise + "[rank0]: torch.distributed.DistBackendError: NCCL error in: x\n"
            + "srun: error: node1: task 3: Exited with exit code 1\n")
    log = read_log(_write(tmp_path, text.encode()))
    assert log.failure.reason == "oom" and log.failure.line == 2
    assert log.failure.evidence.startswith("torch.OutOfMemoryError: CUDA out of memory")


def test_failure_followed_by_a_finished_restart_is_no_failure(tmp_path: Path):
    text = ("srun: error: node1: task 3: Exited with exit code 1\n"
            + "".join(MEGA.format(s=s, c=s, t=10.0, l=2.0) for s in range(1, 400))
            + "[after training is done] datetime: 2024-05-03 16:09:06\n")
    log = read_log(_write(tmp_path, text.encode()))
    assert log.failure is None and log.done


def test_split_read_equals_serial_read(tmp_path: Path, monkeypatch):
    from slurmkit.results.parsers import logfile

    prov = 'SLURMKIT_PROVENANCE {"run_id": "r", "params": {}}\n'
    steps = list(range(1, 300)) + list(range(250, 400))  # a restart in the second half
    body = "".join(MEGA.format(s=s, c=s, t=10.0 + s % 7, l=2.0) + "noise\n" * (s % 3) for s in steps)
    text = prov + body[:30000] + "y" * 3000 + "\n" + body[30000:] + "srun: error: n1: task 0: Exited with exit code 1"
    path = _write(tmp_path, text.encode())
    serial = read_log(path, range_bytes=1024)
    monkeypatch.setattr(logfile, "SPLIT_MIN_BYTES", 1000)
    split = read_log(path, range_bytes=2048, workers=2)  # halves use half-size ranges
    assert split.steps.equals(serial.steps) and split.steps.num_rows == 299 + 150
    assert max(col(split, "restart")) == 1
    assert (split.warnings, split.provenance, split.failure) == (serial.warnings, serial.provenance, serial.failure)
    assert split.failure.reason == "launch_error"
    assert [w.split(": ", 1)[1] for w in split.warnings] == [
        "line longer than 1024 bytes, cut", "line longer than 1024 bytes, cut",
        "last line has no line break (log cut mid-line)"]


def test_tiny_reused_range_buffers_read_like_one_range(tmp_path: Path):
    """1 KiB ranges cycle the three reused range buffers many times: every value, timestamp
    and line number must come out as when the whole file is one range."""
    lines = [f"[2024-04-06 03:02:{s % 60:02d}]" + MEGA.format(s=s, c=s * 8, t=10.0 + s % 7, l=2.0 + s / 100)
             + "noise line\n" * (s % 4) + "\x1b[32mcolour\x1b[0m\n" * (s % 5 == 0) for s in range(1, 400)]
    path = _write(tmp_path, "".join(lines).encode())
    whole, tiny = read_log(path), read_log(path, range_bytes=1024)
    assert whole.steps.num_rows == 399 and col(whole, "time")[0].second == 1
    assert col(whole, "source_line")[:3] == [1, 3, 6]
    assert tiny.steps.equals(whole.steps)


def test_parse_worker_needs_no_pandas(tmp_path: Path):
    import subprocess
    import sys

    path = _write(tmp_path, "".join(MEGA.format(s=s, c=s, t=10.0, l=2.0) for s in (1, 2, 3)).encode())
    script = ("import sys; from slurmkit.results.parsers.logfile import worker_init, read_log; worker_init(); "
              "log = read_log(sys.argv[1]); print(log.steps.column('step').to_pylist(), 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[1,", "2,", "3]", "False"]


def test_split_read_leaves_no_temporary_file(tmp_path: Path, monkeypatch):
    """The worker's half comes back through a temporary Arrow file, removed once read."""
    import tempfile

    from slurmkit.results.parsers import logfile

    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))  # the forked worker inherits it
    monkeypatch.setattr(logfile, "SPLIT_MIN_BYTES", 1000)
    path = _write(tmp_path, "".join(MEGA.format(s=s, c=s, t=10.0, l=2.0) for s in range(1, 200)).encode())
    log = read_log(path, range_bytes=2048, workers=2)
    assert col(log, "step") == list(range(1, 200))
    assert list(spool.iterdir()) == []


def test_no_pandas_lasts_only_for_its_block(tmp_path: Path):
    """`slurmkit parse` parses without importing pandas; after the block pandas imports and
    pyarrow's to_pandas works again (a library caller may go on to use it)."""
    import subprocess
    import sys

    path = _write(tmp_path, "".join(MEGA.format(s=s, c=s, t=10.0, l=2.0) for s in (1, 2, 3)).encode())
    script = ("import sys; from slurmkit.results.parsers.logfile import no_pandas, read_log\n"
              "with no_pandas():\n"
              "    log = read_log(sys.argv[1]); inside = 'pandas' in sys.modules\n"
              "print(inside, list(log.steps.to_pandas()['step']))")
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "[1,", "2,", "3]"]


def test_no_pandas_leaves_loaded_pandas_alone():
    import sys

    import pandas  # noqa: F401  (already loaded: nothing to refuse)

    from slurmkit.results.parsers.logfile import _NoPandas, no_pandas

    with no_pandas():
        assert not any(isinstance(f, _NoPandas) for f in sys.meta_path)
