from pathlib import Path

import pytest

from slurmkit.config.site import list_site_names, load_site
from slurmkit.errors import ConfigError

SHIPPED = ["local", "r760xa-h100pcie", "r760xa-l40s", "xe8640", "xe9680-4cx7", "xe9680-8cx7"]

# the smallest site: only the required keys (test_schema.py edits it too)
GOOD = (Path(__file__).parent / "data" / "sites" / "minimal.yaml").read_text()


def test_every_shipped_site_validates():
    assert set(SHIPPED) <= set(list_site_names())
    for name in SHIPPED:
        site, _ = load_site(name)
        assert site.name == name


def test_reference_configurations_differ_only_in_adapters():
    one, _ = load_site("xe9680-8cx7")
    two, _ = load_site("xe9680-4cx7")
    assert one.hca_devices() == [f"mlx5_{i}" for i in range(8)]
    assert two.hca_devices() == [f"mlx5_{i}" for i in range(4)]
    assert one.gpu == two.gpu and one.nodes == two.nodes
    assert (one.gpu.peak_tflops_bf16, one.gpu.peak_tflops_fp8) == (989, 1979)


def test_minimal_site_gets_defaults(write_yaml):
    site, _ = load_site(str(write_yaml("mine.yaml", GOOD)))
    assert site.scheduler.gpu_request == "gpus-per-node" and site.scheduler.exclusive
    assert site.hca_devices() == ["mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3"]


def test_all_problems_reported_together_with_lines(write_yaml):
    path = write_yaml("bad.yaml", GOOD.replace("partition: batch", "partition: batch\n  colour: red")
                      .replace("count_per_node: 4", "count_per_node: 0")
                      .replace("fabric: infiniband", "fabric: token-ring"))
    with pytest.raises(ConfigError) as err:
        load_site(str(path))
    assert err.value.lines() == [
        f"error: {path}:5:3: scheduler.colour: unknown key (hint: check the spelling; `slurmkit schema` lists the keys)",
        f"error: {path}:7:33: gpu.count_per_node: Input should be greater than 0 (hint: got 0)",
        f"error: {path}:9:11: network.fabric: Input should be 'infiniband', 'roce' or 'ethernet'",
    ]


def test_wrong_type_and_missing(write_yaml):
    path = write_yaml("bad.yaml", GOOD.replace("cpus: 8", "cpus: many").replace("name: mine\n", ""))
    with pytest.raises(ConfigError) as err:
        load_site(str(path))
    assert err.value.lines() == [
        f"error: {path}:1:1: name: required key is missing",
        f"error: {path}:4:35: nodes.cpus: Input should be a valid integer, unable to parse string as an integer"
        " (hint: got 'many')",
    ]


@pytest.mark.parametrize("hostile", ["batch; rm -rf /", "a b", "$(id)", "x'y", "p\nq"])
def test_hostile_sbatch_values_refused(write_yaml, hostile):
    path = write_yaml("bad.yaml", GOOD.replace("partition: batch", f"partition: {hostile!r}".replace("'", '"')
                                               if "'" not in hostile else 'partition: "x\'y"'))
    with pytest.raises(ConfigError) as err:
        load_site(str(path))
    assert "scheduler.partition: String should match pattern" in err.value.lines()[0]


def test_hca_names_must_match_count(write_yaml):
    path = write_yaml("bad.yaml", GOOD.replace("rate_gbps: 400}", "rate_gbps: 400, hca_names: [mlx5_0]}"))
    with pytest.raises(ConfigError) as err:
        load_site(str(path))
    assert err.value.lines() == [
        f"error: {path}:8:3: network: Value error, adapters.hca_names lists 1 devices but count is 4"]


def test_unknown_site_name_lists_known():
    with pytest.raises(ConfigError, match="unknown site 'nope'") as err:
        load_site("nope")
    assert "xe9680-8cx7" in err.value.lines()[0]


import yaml  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from slurmkit.config.site import parse_site  # noqa: E402
from slurmkit.config.yamlsource import parse_yaml  # noqa: E402

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
KEYS = st.sampled_from(["schema_version", "name", "scheduler", "partition", "nodes", "count", "gpu",
                        "count_per_node", "network", "fabric", "adapters", "storage", "env", "software"])
TREES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(KEYS, inner, max_size=5)), max_leaves=20)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS, TREES, max_size=8))
def test_any_structure_is_a_site_or_a_config_error(data):
    doc = parse_yaml(yaml.safe_dump(data), "fuzz.yaml")
    try:
        parse_site(doc)
    except ConfigError as exc:
        assert all(line.startswith("error: fuzz.yaml:") for line in exc.lines())
