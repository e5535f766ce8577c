"""The config models' shared behaviour (slurmkit.config.schema, pydantic underneath), through the
public loaders: YAML's coercions, strict types, every problem at once at its line, frozen
instances, and the JSON Schema that editors and the shipped configs agree with."""
from __future__ import annotations

from pathlib import Path

import jsonschema
import pydantic
import pytest

from slurmkit.config.catalog import ModelArch, ModelFile, load_models
from slurmkit.config.experiment import JobSpec, experiment_json_schema
from slurmkit.config.schema import json_schema
from slurmkit.config.site import Gpu, Site, parse_site
from slurmkit.config.yamlsource import load_yaml, parse_yaml
from slurmkit.errors import ConfigError

ROOT = Path(__file__).parents[2]

SITE = (Path(__file__).parent / "data" / "sites" / "minimal.yaml").read_text()  # only the required keys
JOB = {"site": "local", "model": "tiny-gpt", "workload": "pretrain", "launcher": "torchrun", "nodes": 1,
       "steps": 10, "gbs": 8, "seq_len": 64}


def site_of(text: str) -> Site:
    return parse_site(parse_yaml(text, "s.yaml"))


def site_errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        site_of(text)
    return err.value.lines()


def gpu_line(**fields: str) -> str:
    """SITE with its gpu line's fields replaced (YAML text, as a user writes them)."""
    gpu = {"model": "g", "count_per_node": "4", "mem_gib": "80", "peak_tflops_bf16": "100", **fields}
    return SITE.replace("gpu: {model: g, count_per_node: 4, mem_gib: 80, peak_tflops_bf16: 100}",
                        "gpu: {" + ", ".join(f"{k}: {v}" for k, v in gpu.items()) + "}")


@pytest.mark.parametrize("written, expected", [("4", 4), ("'4'", 4), ("4.0", 4), ("1e1", 10), ("' 6 '", 6)])
def test_integers_from_what_yaml_gives(written, expected):
    # PyYAML reads 1e1 as a string; an integral float is an integer
    count = site_of(gpu_line(count_per_node=written)).gpu.count_per_node
    assert count == expected and type(count) is int


@pytest.mark.parametrize("written, expected", [("79.6", 79.6), ("80", 80.0), ("8e1", 80.0), ("'1e-1'", 0.1)])
def test_floats_from_what_yaml_gives(written, expected):
    mem = site_of(gpu_line(mem_gib=written)).gpu.mem_gib
    assert mem == expected and type(mem) is float


@pytest.mark.parametrize("field, written, message", [
    ("count_per_node", "true", "Input should be a valid integer"),  # a YAML boolean is never a number
    ("count_per_node", "2.5", "Input should be a valid integer, got a number with a fractional part"),
    ("count_per_node", "four", "Input should be a valid integer, unable to parse string as an integer"),
    ("count_per_node", "[4]", "Input should be a valid integer"),
    ("count_per_node", "0", "Input should be greater than 0"),
    ("mem_gib", "false", "Input should be a valid number"),
    ("mem_gib", "lots", "Input should be a valid number, unable to parse string as a number"),
    ("mem_gib", ".inf", "Input should be a finite number"),
    ("mem_gib", ".nan", "Input should be a finite number"),
    ("reserved_gib", "-1", "Input should be greater than or equal to 0"),
    ("model", "5", "Input should be a valid string"),  # a number is not silently a string
    ("model", "''", "String should have at least 1 character"),
])
def test_bad_numbers_and_strings_name_their_field(field, written, message):
    [line] = site_errors(gpu_line(**{field: written}))
    assert line.startswith("error: s.yaml:6:") and f": gpu.{field}: {message}" in line


def test_booleans_and_versions_are_strict():
    for written in ("1", "'yes'", "'true'", "0.0"):  # (YAML reads a bare yes as true)
        assert site_errors(SITE + f"software: {{container: {{image: i, writable: {written}}}}}\n") == [
            f"error: s.yaml:10:44: software.container.writable: Input should be a valid boolean"
            f" (hint: got {parse_yaml(f'x: {written}', 'x').data['x']!r})"]
    assert site_errors(SITE.replace("schema_version: 1", "schema_version: true")) == [
        "error: s.yaml:1:17: schema_version: Input should be 1"]
    assert site_of(SITE + "software: {container: {image: i, writable: true}}\n").software.container.writable is True


def test_every_problem_at_once_in_field_order_with_positions():
    text = (SITE.replace("partition: batch", "partition: batch\n  colour: red")
            .replace("cpus: 8", "cpus: 0").replace("fabric: infiniband", "fabric: token-ring")
            + "env: {1BAD: x, GOOD: 'y'}\nstorage: {scratch: {path: /s, type: nfs}}\n")
    assert site_errors(text) == [
        "error: s.yaml:5:3: scheduler.colour: unknown key (hint: check the spelling; `slurmkit schema` lists the keys)",
        "error: s.yaml:6:35: nodes.cpus: Input should be greater than 0 (hint: got 0)",
        "error: s.yaml:9:11: network.fabric: Input should be 'infiniband', 'roce' or 'ethernet'",
        # a bad mapping key is reported at the key
        "error: s.yaml:12:11: storage.scratch (key): Input should be 'datasets', 'checkpoints' or 'results'",
        "error: s.yaml:11:7: env.1BAD (key): String should match pattern '^[A-Za-z_][A-Za-z0-9_]*$'"
        " (hint: got '1BAD')",
    ]


def test_nested_missing_and_wrong_shapes():
    text = SITE.replace("nodes: {count: 2, model: n, cpus: 8, mem_gib: 64}", "nodes: {count: 2, model: n}")
    assert site_errors(text.replace("scheduler:\n  partition: batch", "scheduler: 5")) == [
        "error: s.yaml:3:12: scheduler: Input should be a valid dictionary or instance of Scheduler (hint: got 5)",
        "error: s.yaml:4:8: nodes.cpus: required key is missing",
        "error: s.yaml:4:8: nodes.mem_gib: required key is missing",
    ]


def test_rules_across_fields_run_on_valid_values():
    text = SITE.replace("rate_gbps: 400}", "rate_gbps: 400, hca_names: [mlx5_0]}")
    assert site_errors(text) == [
        "error: s.yaml:8:3: network: Value error, adapters.hca_names lists 1 devices but count is 4"]
    with pytest.raises(pydantic.ValidationError) as err:  # a model-wide rule: its location is the model
        ModelArch(layers=1, hidden=10, ffn_hidden=1, heads=3, kv_heads=3, vocab=1, max_seq_len=1)
    assert [(e["loc"], e["msg"]) for e in err.value.errors()] == [
        ((), "Value error, hidden (10) must be divisible by heads (3)")]
    with pytest.raises(pydantic.ValidationError) as err:  # the rule does not see a half-checked model
        ModelArch(layers=1, hidden=0, ffn_hidden=1, heads=3, kv_heads=3, vocab=1, max_seq_len=1)
    assert [e["loc"] for e in err.value.errors()] == [("hidden",)]


def test_instances_are_frozen_and_dump_to_plain_data():
    site = site_of(SITE)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        site.name = "other"  # type: ignore[misc]
    dumped = site.model_dump()
    assert dumped["gpu"] == {"model": "g", "count_per_node": 4, "mem_gib": 80.0, "peak_tflops_bf16": 100.0,
                             "peak_tflops_fp8": None, "link": "NVLink", "link_gbytes_per_s": 0.0,
                             "reserved_gib": 3.0}
    assert Site.model_validate(dumped) == site and site.gpu == Gpu.model_validate(dumped["gpu"])
    a, b = site_of(SITE), site_of(SITE)
    assert a.env == {} and a.env is not b.env  # no default shared between instances
    assert JobSpec.model_validate(JOB).lr == 3e-4


def test_long_values_are_shown_shortened_in_the_hint():
    [line] = site_errors(gpu_line(model="x" * 5000))
    assert line == ("error: s.yaml:6:14: gpu.model: String should have at most 4096 characters"
                    f" (hint: got '{'x' * 39}... (5000 characters))")


def test_json_schema_keywords_come_from_the_models():
    schema = json_schema(Site)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    gpu = schema["$defs"]["Gpu"]
    assert gpu["additionalProperties"] is False and gpu["required"] == [
        "model", "count_per_node", "mem_gib", "peak_tflops_bf16"]
    count = gpu["properties"]["count_per_node"]
    assert (count["type"], count["exclusiveMinimum"], count["maximum"]) == ("integer", 0, 2**31 - 1)
    assert gpu["properties"]["model"]["minLength"] == 1 and gpu["properties"]["model"]["maxLength"] == 4096
    assert schema["properties"]["name"]["maxLength"] == 64
    assert schema["properties"]["schema_version"]["const"] == 1
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    good = load_yaml(ROOT / "site-configs" / "local.yaml").data
    assert validator.is_valid(good)
    for bad in ({"env": {"1BAD": "x"}}, {"storage": {"scratch": {"path": "/s", "type": "nfs"}}},
                {"gpu": {**good["gpu"], "count_per_node": 0}}, {"colour": "red"}):
        assert not validator.is_valid({**good, **bad}), bad


@pytest.mark.parametrize("kind, files", [
    ("site", sorted((ROOT / "site-configs").glob("*.yaml"))),
    ("experiment", sorted((ROOT / "experiments").glob("*.yaml"))),
])
def test_shipped_configs_valid_against_emitted_schema(kind, files):
    schema = json_schema(Site) if kind == "site" else experiment_json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    assert files
    for path in files:
        errors = [e.message for e in validator.iter_errors(load_yaml(path).data)]
        assert not errors, f"{path.name}: {errors}"
    assert not validator.is_valid({**load_yaml(files[0]).data, "colour": "red"})


def test_model_file_schema_and_loader_agree(write_yaml):
    validator = jsonschema.Draft202012Validator(json_schema(ModelFile))
    arch = {"layers": 2, "hidden": 64, "ffn_hidden": 256, "heads": 4, "kv_heads": 4, "vocab": 512, "max_seq_len": 256}
    good = {"schema_version": 1, "models": {"m-1": arch}}
    assert validator.is_valid(good) and load_models(write_yaml("m.yaml", "schema_version: 1\nmodels: {m-1: {"
                                                                + ", ".join(f"{k}: {v}" for k, v in arch.items())
                                                                + "}}\n"))["m-1"] == ModelArch(**arch)
    assert not validator.is_valid({**good, "models": {"bad name": arch}})
    assert not validator.is_valid({**good, "models": {"m" * 65: arch}})
