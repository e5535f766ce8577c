from pathlib import Path

import pytest

from slurmkit.config.experiment import experiment_json_schema, load_experiment
from slurmkit.errors import ConfigError

ROOT = Path(__file__).parents[2]


def points_of(loaded):
    return [{k: v.value for k, v in p.items()} for p in loaded.points]


def test_sites_are_the_first_axis():
    loaded = load_experiment(ROOT / "experiments" / "llama2-7b-pretrain.yaml")
    pts = points_of(loaded)
    assert [(p["site"], p["nodes"]) for p in pts] == [
        (s, n) for s in ("xe9680-8cx7", "xe9680-4cx7") for n in (1, 2, 4, 8)]


def test_site_override_replaces_sites():
    loaded = load_experiment(ROOT / "experiments" / "llama2-7b-pretrain.yaml", sites=["xe8640"])
    assert {p["site"] for p in points_of(loaded)} == {"xe8640"}


def test_include_and_exclude_in_shipped_70b():
    pts = points_of(load_experiment(ROOT / "experiments" / "llama2-70b-pretrain.yaml"))
    assert sorted({p["nodes"] for p in pts}) == [2, 4, 8]
    assert {p["nodes"]: p.get("recompute") for p in pts} == {2: "full", 4: None, 8: None}


def test_include_overrides_added_values_only():
    pts = points_of(load_experiment(ROOT / "experiments" / "llama2-finetune.yaml"))
    assert len(pts) == 18
    sft70 = [p for p in pts if p["model"] == "llama2-70b" and p["workload"] == "sft"]
    lora70 = [p for p in pts if p["model"] == "llama2-70b" and p["workload"] == "lora"]
    assert {(p["nodes"], p["tp"], p["pp"]) for p in sft70} == {(2, 4, 4)}
    assert {(p["nodes"], p["tp"], p["pp"]) for p in lora70} == {(1, 2, 4)}


def test_matrix_problems_all_reported(write_yaml):
    path = write_yaml("e.yaml", """
        schema_version: 1
        name: e
        sites: [local]
        flavour: x
        matrix:
          colour: [red]
          nodes: 2
          site: [a]
          exclude:
            - {tp: 2}
          include:
            - {nonsense: 1}
    """)
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    assert err.value.lines() == [
        f"error: {path}:4:1: flavour: unknown key (hint: check the spelling; `slurmkit schema` lists the keys)",
        f"error: {path}:6:3: matrix.colour: not a sweepable field (hint: sweepable fields: checkpoint_interval,"
        " container_image, cp, dataset, env, extra_args, gbs, launcher, lr, mbs, model, nodes, parallel, pp, precision, recompute, seq_len,"
        " sequence_parallel, steps, time_limit_min, tp, vpp, warmup_steps, workload)",
        f"error: {path}:7:10: matrix.nodes: must be a non-empty list",
        f"error: {path}:8:3: matrix.site: not a sweepable field (hint: sweep sites by listing them under `sites:`)",
        f"error: {path}:12:8: matrix.include[0].nonsense: not a sweepable field",
        f"error: {path}:10:8: matrix.exclude[0].tp: not a matrix axis",
    ]


def test_hostile_name_refused(write_yaml):
    path = write_yaml("e.yaml", 'schema_version: 1\nname: "x; rm -rf /"\nsites: [local]\n')
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    assert err.value.lines()[0].startswith(f"error: {path}:2:7: name: String should match pattern")


def test_json_schema_lists_job_fields_and_matrix():
    schema = experiment_json_schema()
    assert {"nodes", "tp", "matrix", "sites", "workload"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    assert "nodes" in schema["properties"]["matrix"]["properties"]


import tempfile  # noqa: E402

import yaml  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from slurmkit.plan.make import make_plan  # noqa: E402
from slurmkit.plan.render import render_plan  # noqa: E402

FIELDS = ["schema_version", "name", "sites", "workload", "launcher", "model", "nodes", "steps", "tp", "pp",
          "vpp", "gbs", "mbs", "seq_len", "matrix", "include", "exclude", "dataset", "repeats"]
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2, 300), st.sampled_from(
    ["local", "xe9680-8cx7", "llama2-7b", "tiny-gpt", "nemo", "torchrun", "pretrain", "lora", "x y", "$(id)"]))
TREES = st.recursive(VALUES, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.sampled_from(FIELDS), inner, max_size=4)),
                     max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELDS), TREES, max_size=10))
def test_any_experiment_plans_or_raises_config_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "e.yaml"
        path.write_text(yaml.safe_dump(data))
        try:
            make_plan(path)
        except ConfigError as exc:
            assert exc.lines() and all(line.startswith("error: ") or line.startswith("warning: ")
                                       for line in exc.lines())


SWEEP_FIELDS = ["nodes", "tp", "pp", "vpp", "mbs", "gbs", "seq_len", "steps", "warmup_steps", "parallel",
                "launcher", "workload", "model", "dataset", "precision", "site", "sequence_parallel"]
SWEEP_VALUES = st.one_of(st.integers(-1, 70), st.booleans(), st.none(), st.sampled_from(
    ["ddp", "fsdp", "nemo", "megatron", "torchrun", "pretrain", "sft", "lora", "llama2-7b", "tiny-gpt",
     "dolly", "synthetic", "bf16", "fp8", "local", "xe9680-8cx7", "x y", "$(id)", "a\nb"]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(axes=st.dictionaries(st.sampled_from(SWEEP_FIELDS), st.lists(SWEEP_VALUES, min_size=0, max_size=3), max_size=3),
       include=st.lists(st.dictionaries(st.sampled_from(SWEEP_FIELDS), SWEEP_VALUES, max_size=3), max_size=3),
       exclude=st.lists(st.dictionaries(st.sampled_from(SWEEP_FIELDS), SWEEP_VALUES, max_size=2), max_size=2))
def test_any_matrix_plans_or_raises_config_error(axes, include, exclude):
    data = {"schema_version": 1, "name": "fuzz", "sites": ["local"], "workload": "pretrain",
            "launcher": "torchrun", "model": "tiny-gpt", "nodes": 2, "steps": 20, "mbs": 1, "gbs": 8,
            "seq_len": 32, "warmup_steps": 2, "matrix": {**axes, "include": include, "exclude": exclude}}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "e.yaml"
        path.write_text(yaml.safe_dump(data))
        try:
            plan = render_plan(make_plan(path))
        except ConfigError as exc:
            assert exc.lines() and all(line.startswith(("error: ", "warning: ")) for line in exc.lines())
            return
        assert all(job.text.startswith("#!/bin/bash\n") for job in plan.jobs)
