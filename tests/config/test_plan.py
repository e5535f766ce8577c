import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from slurmkit.errors import ConfigError
from slurmkit.plan.make import make_plan as plan_of
from slurmkit.plan.render import render_plan, write_plan
from slurmkit.rundir import param_problems


def make_plan(experiment, *args, templates_dir=None, **kwargs):
    """The plan with its scripts rendered, as `generate` makes it."""
    return render_plan(plan_of(experiment, *args, **kwargs), templates_dir)


ROOT = Path(__file__).parents[2]
SHIPPED = sorted((ROOT / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("experiment", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_experiment_validates_without_warnings(experiment):
    plan = make_plan(experiment, strict=True)
    assert plan.jobs and not plan.warnings
    for job in plan.jobs:
        assert param_problems(job.params) == []  # the keys, types and nulls of slurmkit.rundir.PARAMS
        assert re.fullmatch(r"[a-z0-9.-]+-n\d+-[a-z0-9-]+-[0-9a-f]{8}", job.run_id)
        assert job.params["gpus"] == job.params["nodes"] * job.params["gpus_per_node"]
        assert job.params["dp"] * job.params["tp"] * job.params["pp"] * job.params["cp"] == job.params["gpus"]


def test_reference_design_sweeps():
    seven = make_plan(ROOT / "experiments" / "llama2-7b-pretrain.yaml")
    assert {(j.params["site"], j.params["nodes"]) for j in seven.jobs} == {
        (s, n) for s in ("xe9680-8cx7", "xe9680-4cx7") for n in (1, 2, 4, 8)}
    assert {j.params["adapters_per_node"] for j in seven.jobs} == {8, 4}
    assert {j.params["steps"] for j in seven.jobs} == {500}
    tune = make_plan(ROOT / "experiments" / "llama2-finetune.yaml")
    assert {(j.params["model"], j.params["workload"], j.params["dataset"]) for j in tune.jobs} == {
        (m, w, d) for m in ("llama2-7b", "llama2-13b", "llama2-70b") for w in ("sft", "lora", "ptuning")
        for d in ("dolly", "alpaca")}
    assert {(j.params["mbs"], j.params["gbs"], j.params["steps"]) for j in tune.jobs} == {(1, 128, 50)}


def test_local_smoke_is_small_and_real():
    plan = make_plan(ROOT / "experiments" / "local-smoke.yaml")
    assert len(plan.jobs) >= 2
    for job in plan.jobs:
        p = job.params
        assert (p["site"], p["launcher"], p["model"], p["nodes"]) == ("local", "torchrun", "tiny-gpt", 2)
        assert p["steps"] <= 100 and p["time_limit_min"] <= 10
        # the run directory carries the trainer; the job never imports slurmkit
        assert '"$SLURM_SUBMIT_DIR"/trainer/train-' in job.text and "slurmkit.trainer" not in job.text


def test_run_ids_are_stable_and_distinct():
    path = ROOT / "experiments" / "llama2-7b-pretrain.yaml"
    first, second = make_plan(path), make_plan(path)
    assert [j.run_id for j in first.jobs] == [j.run_id for j in second.jobs]
    assert len({j.run_id for j in first.jobs}) == len(first.jobs)
    assert first.to_json() == second.to_json()
    assert first.jobs[0].run_id.startswith("llama2-7b-pretrain-n1-xe9680-8cx7-")


def test_repeats_get_their_own_run_ids(write_yaml):
    text = (ROOT / "experiments" / "local-smoke.yaml").read_text().replace("nodes: 2", "nodes: 2\nrepeats: 3")
    plan = make_plan(write_yaml("e.yaml", text))
    assert len(plan.jobs) == 6
    assert sorted(j.params["repeat"] for j in plan.jobs) == [0, 0, 1, 1, 2, 2]


def test_plan_json_contract(tmp_path):
    plan = make_plan(ROOT / "experiments" / "local-smoke.yaml")
    write_plan(plan, tmp_path)
    body = json.loads((tmp_path / "plan.json").read_text())
    assert body["schema_version"] == 1 and body["experiment"] == "local-smoke"
    assert set(body["sites"]) == {"local"} and body["sites"]["local"]["gpu"]["count_per_node"] == 2
    for job in body["jobs"]:
        assert job["script"] == f"scripts/{job['run_id']}.sbatch"
        assert (tmp_path / job["script"]).read_text().count(f"#SBATCH --output=logs/{job['run_id']}_%j.out") == 1


def test_all_errors_before_anything_is_written(tmp_path, write_yaml):
    text = (ROOT / "experiments" / "llama2-7b-pretrain.yaml").read_text().replace(
        "nodes: [1, 2, 4, 8]", "nodes: [1, 2, 4, 8, 16]")
    with pytest.raises(ConfigError) as err:
        make_plan(write_yaml("e.yaml", text))
    lines = err.value.lines()
    row = text.splitlines().index("  nodes: [1, 2, 4, 8, 16]") + 1
    assert len(lines) == 2  # one per site; the 16-node point's other problems are not repeated
    assert f"e.yaml:{row}:23: nodes=16 is more than site xe9680-8cx7 has (8)" in lines[0]
    assert f"e.yaml:{row}:23: nodes=16 is more than site xe9680-4cx7 has (8)" in lines[1]


def test_site_override_and_site_file(tmp_path):
    plan = make_plan(ROOT / "experiments" / "llama2-7b-pretrain.yaml",
                     sites=[str(ROOT / "site-configs" / "xe8640.yaml")])
    assert {j.params["site"] for j in plan.jobs} == {"xe8640"}
    assert {j.params["gpus_per_node"] for j in plan.jobs} == {4}


def test_user_model_from_models_file(write_yaml):
    write_yaml("models/mine.yaml", """
        schema_version: 1
        models:
          tinyllama-1.1b: {layers: 22, hidden: 2048, ffn_hidden: 5632, heads: 32, kv_heads: 4, vocab: 32000, max_seq_len: 2048}
    """)
    text = (ROOT / "experiments" / "llama2-7b-pretrain.yaml").read_text().replace(
        "model: llama2-7b", "model: tinyllama-1.1b\nmodels_file: models/mine.yaml").replace("seq_len: 4096", "seq_len: 2048")
    plan = make_plan(write_yaml("e.yaml", text))
    job = plan.jobs[0]
    assert job.run_id.startswith("tinyllama-1.1b-pretrain-n1-")
    assert job.params["model_params"] == 1_100_048_384 and job.params["model_kv_heads"] == 4
    assert "model.num_query_groups=4" in job.text


def test_making_a_plan_renders_nothing():
    """make_plan gives typed data (parameters and template contexts); scripts come afterwards from
    slurmkit.plan.render, so the planning stage never loads Jinja."""
    code = ("import sys; from slurmkit.plan.make import make_plan; "
            f"plan = make_plan({str(ROOT / 'experiments' / 'llama2-7b-pretrain.yaml')!r}); "
            "assert plan.jobs and not any(job.text for job in plan.jobs); "
            "print(sorted(m for m in sys.modules if m.startswith('jinja2') or m == 'slurmkit.plan.render'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_an_unrendered_plan_is_never_written(tmp_path):
    plan = plan_of(ROOT / "experiments" / "local-smoke.yaml")
    with pytest.raises(ValueError, match="render_plan"):
        write_plan(plan, tmp_path / "run")
    assert not (tmp_path / "run").exists()


SMOKE_WITH_KNOBS = (ROOT / "experiments" / "local-smoke.yaml").read_text(encoding="utf-8").replace(
    "  parallel: [ddp, fsdp]\n",
    "  parallel: [ddp]\n"
    "  extra_args: [[], [--seed, '7']]\n"
    "  include:\n"
    "    - {extra_args: [--seed, '7'], env: {OMP_NUM_THREADS: '1'}}\n")


def test_extra_args_and_env_of_a_point_are_run_parameters(write_yaml):
    """Launcher-only knobs given per point (a matrix axis, an include entry) make distinct runs,
    named in the parameters, the provenance line and generate's columns."""
    plan = make_plan(write_yaml("e.yaml", SMOKE_WITH_KNOBS))
    plain, knobbed = sorted(plan.jobs, key=lambda j: j.params["extra_args"] or "")
    assert (plain.params["extra_args"], plain.params["env"]) == (None, None)
    assert (knobbed.params["extra_args"], knobbed.params["env"]) == ("--seed 7", "OMP_NUM_THREADS=1")
    assert plain.run_id != knobbed.run_id and "extra_args" in plan.axes and "env" in plan.axes
    assert "export OMP_NUM_THREADS=1\n" in knobbed.text and "OMP_NUM_THREADS" not in plain.text
    assert '"extra_args":"--seed 7"' in knobbed.text and "--seed 7" not in plain.text.replace('"--seed 7"', "")
    assert param_problems(knobbed.params) == []


def test_runs_differing_only_in_env_are_two_configurations(write_yaml):
    pd = pytest.importorskip("pandas")
    from slurmkit.report.compare import CONFIG_FIELDS, config_key

    plan = make_plan(write_yaml("e.yaml", SMOKE_WITH_KNOBS))
    frame = pd.DataFrame([job.params for job in plan.jobs])
    assert config_key(frame, CONFIG_FIELDS).nunique() == 2


def test_an_extra_arg_of_an_include_entry_is_located_at_its_element(write_yaml):
    text = SMOKE_WITH_KNOBS.replace("env: {OMP_NUM_THREADS: '1'}", "env: {OMP_NUM_THREADS: '1'}}\n"
                                    "    - {site: local, extra_args: [--seed, '7', --no-such-flag]")
    path = write_yaml("e.yaml", text)
    with pytest.raises(ConfigError) as err:
        make_plan(path)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "--no-such-flag" in t)
    column = text.splitlines()[line - 1].index("--no-such-flag") + 1
    assert any(f"{path}:{line}:{column}: extra_args[2]: --no-such-flag" in msg for msg in err.value.lines())
