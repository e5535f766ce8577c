"""Run ids: stable hash, and a readable label of the axes that vary within the sweep."""
from __future__ import annotations

import re
from pathlib import Path

from slurmkit.plan.make import make_plan
from slurmkit.plan.runid import run_label

ROOT = Path(__file__).resolve().parents[2]
BASE = (Path(__file__).parent / "data" / "base-experiment.yaml").read_text()


def test_the_smoke_sweeps_axis_is_in_its_run_ids():
    plan = make_plan(ROOT / "experiments" / "local-smoke.yaml")
    assert plan.axes == ("parallel",)
    ids = sorted(j.run_id for j in plan.jobs)
    assert [re.sub(r"[0-9a-f]{8}$", "<hash>", i) for i in ids] == [
        "tiny-gpt-pretrain-ddp-n2-local-<hash>", "tiny-gpt-pretrain-fsdp-n2-local-<hash>"]


def test_the_fine_tuning_dataset_is_in_its_run_ids():
    plan = make_plan(ROOT / "experiments" / "llama2-finetune.yaml")
    assert {"model", "workload", "dataset"} <= set(plan.axes)
    for job in plan.jobs:
        head = f"{job.params['model']}-{job.params['workload']}-{job.params['dataset']}-"
        assert job.run_id.startswith(head), job.run_id
    # Dolly and Alpaca rows of the same model and scheme differ by more than their hash now
    labels = {re.sub(r"-[0-9a-f]{8}$", "", j.run_id) for j in plan.jobs}
    assert len(labels) == len(plan.jobs) == 18


def test_an_experiment_without_varying_axes_keeps_the_plain_id(write_yaml):
    plan = make_plan(write_yaml("one.yaml", BASE))
    assert plan.axes == ()
    assert re.fullmatch(r"llama2-7b-pretrain-n1-xe9680-8cx7-[0-9a-f]{8}", plan.jobs[0].run_id)


def test_a_swept_knob_of_any_kind_gives_distinct_labelled_runs(write_yaml):
    plan = make_plan(write_yaml("sweep.yaml", BASE + "matrix:\n  recompute: [selective, full]\n  lr: [0.0003, 0.0001]\n"))
    assert plan.axes == ("recompute", "lr")
    labels = sorted(re.sub(r"^llama2-7b-pretrain-|-n1-xe9680-8cx7-[0-9a-f]{8}$", "", j.run_id) for j in plan.jobs)
    assert labels == ["fullrecompute-lr0.0001", "fullrecompute-lr0.0003",
                      "selrecompute-lr0.0001", "selrecompute-lr0.0003"]
    assert {(j.params["recompute"], j.params["lr"]) for j in plan.jobs} == {
        ("selective", 3e-4), ("full", 3e-4), ("selective", 1e-4), ("full", 1e-4)}


def test_labels_are_file_name_safe_and_short():
    params = {"dataset": "/mnt/nfs/datasets/my sft set, v2 [it's]/", "container_image": "nvcr.io/nvidia/nemo:24.05",
              "sequence_parallel": False, "recompute": None, "lr": 1e-06}
    label = run_label(params, ("dataset", "container_image", "sequence_parallel", "recompute", "lr"))
    assert label == "my_sft_set_v2_it_s-nemo24.05-nosp-lr1e-06"
    assert len(run_label({"dataset": "x" * 200, "lr": 1.0}, ("dataset", "lr"))) <= 64


def test_generate_shows_the_varying_axes_as_columns(cli):
    code, out, _ = cli("generate", str(ROOT / "experiments" / "local-smoke.yaml"), "--dry-run")
    assert code == 0
    head, *rows = out.splitlines()
    assert head.split() == ["run_id", "site", "nodes", "gpus", "tp/pp/dp", "gbs", "parallel", "mem_gib"]
    assert sorted(row.split()[6] for row in rows) == ["ddp", "fsdp"]
