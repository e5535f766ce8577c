"""The shipped published numbers and the rule that matches them to measured configurations."""
from __future__ import annotations

import pandas as pd

from slurmkit.reference import gpu_key, load_reference, matching_reference, model_key, reference_label


def test_every_published_number_names_its_source():
    ref = load_reference()
    assert len(ref) >= 80
    assert ref["source"].notna().all() and (ref["source"].str.len() > 10).all()
    assert set(ref["metric"]) <= {"tokens_per_s_per_gpu", "tflops_per_gpu", "step_time_s", "mfu",
                                  "time_to_train_min"}
    row = ref[(ref["source_id"] == "nemo-24.07-fp8") & (ref["model"] == "llama2-70b")
              & (ref["metric"] == "tokens_per_s_per_gpu")].iloc[0]
    assert (row["value"], row["gpus"], row["tp"], row["pp"], row["derived"]) == (1728, 64, 4, 4, False)


def test_names_normalise():
    assert model_key("Llama 2 7B") == model_key("LLAMA2_7B") == "llama27b"
    assert gpu_key("NVIDIA H100 80GB HBM3") == gpu_key("H100-SXM5-80GB") == "h100sxm"
    assert gpu_key("H100 PCIe") == "h100pcie" and gpu_key("L40S") == "l40s"


def test_match_needs_model_gpu_precision_task_and_sequence():
    configs = pd.DataFrame([dict(model="llama2-7b", gpu_model="H100 SXM", precision="bf16",
                                 workload="pretrain", seq_len=4096, gbs=128)])
    found = matching_reference(load_reference(), configs, "tokens_per_s_per_gpu")
    assert list(found["value"]) == [11088]
    assert "derived from published" in reference_label(found.iloc[0])
    other = configs.assign(seq_len=2048)
    assert matching_reference(load_reference(), other, "tokens_per_s_per_gpu").empty
    nulls = configs.assign(gpu_model=None)
    assert matching_reference(load_reference(), nulls, "tokens_per_s_per_gpu").empty


def test_a_published_global_batch_must_match_too():
    configs = pd.DataFrame([dict(model="llama2-7b", gpu_model="H100 SXM", precision="fp8",
                                 workload="pretrain", seq_len=4096, gbs=256)])
    assert matching_reference(load_reference(), configs, "tokens_per_s_per_gpu").empty
    found = matching_reference(load_reference(), configs.assign(gbs=128), "tokens_per_s_per_gpu")
    assert sorted(found["value"]) == [16154, 16934]
