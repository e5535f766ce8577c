"""Every validation rule, through make_plan, with the exact message and YAML position."""
from pathlib import Path

import pytest

from slurmkit.errors import ConfigError
from slurmkit.plan.make import make_plan

BASE = (Path(__file__).parent / "data" / "base-experiment.yaml").read_text()


@pytest.fixture
def lines_of(tmp_path):
    """Apply {old: new} edits to the base experiment; return (path, error lines or warnings)."""

    def run(edits: dict[str, str], strict: bool = False) -> tuple[str, list[str]]:
        text = BASE
        for old, new in edits.items():
            assert old in text
            text = text.replace(old, new)
        path = tmp_path / "exp.yaml"
        path.write_text(text)
        try:
            plan = make_plan(path, strict=strict)
        except ConfigError as exc:
            return str(path), exc.lines()
        return str(path), [f"warning: {w}" for w in plan.warnings]

    return run


def test_base_is_valid(lines_of):
    assert lines_of({})[1] == []


def test_nodes_above_site(lines_of):
    path, lines = lines_of({"nodes: 1": "nodes: 9"})
    assert lines[0] == f"error: {path}:7:8: nodes=9 is more than site xe9680-8cx7 has (8)" \
                       " (hint: use at most 8 nodes on xe9680-8cx7)"


def test_tp_not_dividing_gpus_and_heads_reported_together(lines_of):
    path, lines = lines_of({"tp: 1": "tp: 3"})
    assert lines == [
        f"error: {path}:9:5: tp*pp*cp = 3*1*1 = 3 does not divide the 8 GPUs (nodes=1 x 8 per node on"
        " xe9680-8cx7) (hint: choose tp, pp and cp whose product divides the GPU count)",
        f"error: {path}:9:5: model llama2-7b has 32 attention heads, not divisible by tp=3 (hint: choose tp dividing 32)",
        f"error: {path}:9:5: model llama2-7b has 32 KV heads, not divisible by tp=3 (hint: choose tp dividing 32)",
    ]


def test_kv_heads_checked_separately(lines_of):
    path, lines = lines_of({"model: llama2-7b": "model: llama2-70b", "tp: 1": "tp: 16", "nodes: 1": "nodes: 4",
                            "pp: 1": "pp: 2"})
    assert f"error: {path}:9:5: model llama2-70b has 8 KV heads, not divisible by tp=16 (hint: choose tp dividing 8)" in lines
    assert not any("attention heads" in line for line in lines)


def test_gbs_not_divisible(lines_of):
    path, lines = lines_of({"gbs: 128": "gbs: 100"})
    assert lines == [f"error: {path}:12:6: gbs=100 is not divisible by mbs*dp = 1*8 = 8 (hint: use a multiple of 8)"]


def test_layers_not_divisible_by_pp(lines_of):
    path, lines = lines_of({"nodes: 1": "nodes: 3", "pp: 1": "pp: 3", "gbs: 128": "gbs: 120"})
    assert lines == [f"error: {path}:10:5: model llama2-7b has 32 layers, not divisible by pp=3"
                     " (hint: choose pp dividing the layer count)"]


def test_layers_not_divisible_by_pp_times_vpp(lines_of):
    path, lines = lines_of({"pp: 1": "pp: 2\nvpp: 3"})
    assert lines == [f"error: {path}:11:6: model llama2-7b has 32 layers, not divisible by pp*vpp = 6"
                     " (hint: choose vpp so that layers / (pp*vpp) is whole)"]


def test_vpp_without_pp(lines_of):
    path, lines = lines_of({"pp: 1": "pp: 1\nvpp: 2"})
    assert lines == [f"error: {path}:11:6: vpp needs pipeline parallelism (pp > 1)"]


def test_tp_above_gpus_per_node_is_a_warning_and_strict_makes_it_an_error(lines_of):
    edits = {"nodes: 1": "nodes: 2", "tp: 1": "tp: 16"}
    path, lines = lines_of(edits)
    expected = f"{path}:9:5: tp=16 is larger than the 8 GPUs per node of xe9680-8cx7 (hint: tensor parallelism across nodes is slow)"
    assert lines == [f"warning: {expected}"]
    assert lines_of(edits, strict=True)[1] == [f"error: {expected}"]


def test_seq_above_model_max_is_a_warning(lines_of):
    path, lines = lines_of({"seq_len: 4096": "seq_len: 8192"})
    assert lines[0] == f"warning: {path}:13:10: seq_len=8192 is above the maximum of llama2-7b (4096)"


def test_memory_does_not_fit_shows_estimate(lines_of):
    path, lines = lines_of({"model: llama2-7b": "model: llama2-70b", "tp: 1": "tp: 8"})
    assert len(lines) == 1
    assert lines[0].startswith(
        f"error: {path}:6:8: does not fit: llama2-70b pretrain on 1x8 H100 SXM (tp=8 pp=1 cp=1 mbs=1 seq_len=4096)"
        " needs about ")
    assert "GiB = weights 16.1 + grads 16.1 + optimizer 96.4 + activations" in lines[0]
    assert lines[0].endswith("above 79.6 GiB (hint: add nodes, raise tp/pp, use recompute: full, or lower mbs/seq_len)")


def test_matrix_value_located_at_its_list_item(lines_of):
    path, lines = lines_of({"seq_len: 4096": "seq_len: 4096\nmatrix:\n  tp: [1, 3]\n  nodes: [1, 2]"})
    assert lines[0].startswith(f"error: {path}:15:11: tp*pp*cp = 3*1*1 = 3 does not divide the 8 GPUs")
    assert lines[3].startswith(f"error: {path}:15:11: tp*pp*cp = 3*1*1 = 3 does not divide the 16 GPUs")
    assert len(lines) == 4  # head errors from both node counts are reported once


def test_fine_tuning_needs_a_dataset(lines_of):
    # the base's tokenizer override is for the pretraining config (fine-tuning reads it from the .nemo)
    path, lines = lines_of({"workload: pretrain": "workload: lora", "extra_args:": "# extra_args:"})
    assert lines == [f"error: {path}:4:11: lora needs a dataset (dolly, alpaca or a folder), not synthetic"]


def test_megatron_runs_pretraining_only(lines_of):
    path, lines = lines_of({"workload: pretrain": "workload: sft\ndataset: dolly", "launcher: nemo": "launcher: megatron"})
    assert lines == [f"error: {path}:4:11: the megatron launcher runs pretraining only, not sft"
                     " (hint: use launcher nemo for sft, lora and ptuning)"]


def test_torchrun_is_data_parallel_only(lines_of):
    path, lines = lines_of({"launcher: nemo": "launcher: torchrun", "tp: 1": "tp: 2"})
    assert lines[0] == (f"error: {path}:9:5: the torchrun launcher runs data parallelism only (tp, pp, cp 1; no vpp)"
                        " (hint: use launcher nemo or megatron for model parallelism)")


def test_warmup_must_leave_timed_steps(lines_of):
    path, lines = lines_of({"steps: 50": "steps: 5"})
    assert lines == [f"error: {path}:8:8: warmup_steps=10 leaves no timed steps of 5"
                     " (hint: use fewer warm-up steps than steps)"]


def test_fp8_needs_a_gpu_with_fp8(lines_of, tmp_path):
    site = (Path(__file__).parents[2] / "site-configs" / "xe9680-8cx7.yaml").read_text()
    (tmp_path / "nofp8.yaml").write_text(site.replace("name: xe9680-8cx7", "name: nofp8")
                                         .replace("  peak_tflops_fp8: 1979\n", ""))
    path, lines = lines_of({"sites: [xe9680-8cx7]": f"sites: [{tmp_path / 'nofp8.yaml'}]",
                            "steps: 50": "steps: 50\nprecision: fp8"})
    assert lines == [f"error: {path}:9:12: site nofp8's GPU (H100 SXM) has no FP8"]


def test_unknown_keys_and_wrong_types_together(lines_of):
    path, lines = lines_of({"name: t": "name: t\ncolour: red", "nodes: 1": "nodes: two"})
    assert lines == [
        f"error: {path}:3:1: colour: unknown key (hint: check the spelling; `slurmkit schema` lists the keys)",
        f"error: {path}:8:8: nodes: Input should be a valid integer, unable to parse string as an integer (hint: got 'two')",
    ]


def test_unknown_model(lines_of):
    path, lines = lines_of({"model: llama2-7b": "model: llama9"})
    assert lines[0].startswith(f"error: {path}:6:8: unknown model 'llama9' (hint: known models: gpt3-175b,")


def test_unknown_site_points_at_sites(lines_of):
    path, lines = lines_of({"sites: [xe9680-8cx7]": "sites: [nowhere]"})
    assert lines[0].startswith(f"error: {path}:3:9: unknown site 'nowhere' (hint: known sites:")


def test_include_that_adds_a_job_needs_a_site(lines_of):
    path, lines = lines_of({"seq_len: 4096": "seq_len: 4096\nmatrix:\n  nodes: [1, 2]\n  include:\n    - {nodes: 4, tp: 2}"})
    assert lines == [f"error: {path}:17:7: this include entry matches no combination, so it is a new job, but it"
                     " names no site (hint: add `site: NAME` to it, or make its values match an existing combination)"]


def test_include_with_a_site_adds_a_job(lines_of, tmp_path):
    path, lines = lines_of({"seq_len: 4096": "seq_len: 4096\nmatrix:\n  nodes: [1, 2]\n  include:\n"
                                              "    - {nodes: 4, tp: 2, site: xe9680-8cx7}"})
    assert lines == []
    plan = make_plan(path)
    assert [(j.params["nodes"], j.params["tp"]) for j in plan.jobs] == [(1, 1), (2, 1), (4, 2)]
