"""slurmkit.rundir.params: one list of run parameters for both halves. A key that plan.job_params
writes and PARAMS lacks (or the reverse) fails here; the store's columns and the contract's
table come from the same list."""
from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa

from slurmkit.plan.make import make_plan
from slurmkit.results import store
from slurmkit.rundir import PARAMS, Param, param_problems, select_params

ROOT = Path(__file__).parents[2]


def test_job_params_writes_exactly_the_contract_keys():
    for name in ("local-smoke", "llama2-finetune", "llama3-8b-pretrain-bridge"):
        for job in make_plan(ROOT / "experiments" / f"{name}.yaml").jobs:
            written = set(job.params)
            assert written - set(PARAMS) == set(), f"{name}: job_params writes keys PARAMS lacks"
            assert set(PARAMS) - written == set(), f"{name}: PARAMS has keys job_params does not write"
            assert param_problems(job.params) == []


def test_store_columns_derive_from_params():
    columns = {f.name: f.type for f in store.RUNS_SCHEMA if f.name in PARAMS}
    assert list(columns) == list(PARAMS)  # every parameter, in contract order
    arrow = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}
    assert columns == {k: arrow[p.type] for k, p in PARAMS.items()}
    assert store.PARAM_TYPES == columns


def test_contract_table_names_every_parameter():
    text = (ROOT / "docs" / "contracts.md").read_text()
    table = text.split("| key | type | meaning |", 1)[1].split("\n\n", 1)[0]
    keys = {k.strip() for line in table.splitlines()[2:] for k in line.split("|")[1].split(",")}
    assert keys == set(PARAMS)


def test_param_problems():
    params = {key: (1.5 if p.type is float else 1 if p.type is int else True if p.type is bool else "x")
              for key, p in PARAMS.items()}
    assert param_problems(params) == []
    params.update(nodes=True, vpp=None, gpus=None, extra=1)
    del params["lr"]
    assert param_problems(params) == ["missing parameter 'lr'", "unknown parameter 'extra'",
                                      "parameter 'nodes': True is not an integer",
                                      "parameter 'gpus': None is not an integer"]


def test_types_accepted():
    assert Param(float).accepts(3) and not Param(float).accepts("3") and not Param(float).accepts(True)
    assert Param(int).accepts(3) and not Param(int).accepts(3.0) and not Param(int).accepts(False)
    assert Param(bool).accepts(False) and not Param(bool).accepts(0)
    assert not Param(str).accepts(None) and Param(str, nullable=True).accepts(None)


def test_select_params_keeps_the_known_and_says_what_it_left_out():
    kept, warnings = select_params({"nodes": 2, "gpus": None, "gbs": "8", "bogus": 1})
    assert kept == {"nodes": 2, "gpus": None}  # a log's params may be null anywhere
    assert warnings == ["parameter 'gbs': '8' is not an integer; left out",
                        "parameter 'bogus' is not a slurmkit parameter; left out"]
    assert all(re.fullmatch(r"[a-z_]+", key) for key in PARAMS)
