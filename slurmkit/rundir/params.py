"""The run parameters: the flat ``params`` of plan.json and of the provenance line, and the
parameter columns of the results store's runs table (docs/contracts.md, "plan.json").

``PARAMS`` is the one list: ``slurmkit.plan.make.job_params`` writes exactly these keys (a test
compares them), and ``slurmkit.results.store`` derives its column types from their Python types.
``nullable`` says whether a plan may hold null for the key (a log that does not say is null
in the results whatever it says here).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    type: type  # str, int, float or bool
    nullable: bool = False

    def accepts(self, value: Any, *, null: bool | None = None) -> bool:
        """Whether ``value`` is of this type (an int counts as a float; a bool is no int);
        None when nullable (or when ``null`` says so)."""
        if value is None:
            return self.nullable if null is None else null
        if isinstance(value, bool):
            return self.type is bool
        if self.type is float:
            return isinstance(value, (int, float))
        return isinstance(value, self.type)


_S, _I, _F, _B = Param(str), Param(int), Param(float), Param(bool)
_SN, _IN, _FN = Param(str, True), Param(int, True), Param(float, True)

# In contract order (the order of the runs table's parameter columns).
PARAMS: dict[str, Param] = {
    "experiment": _S, "workload": _S, "launcher": _S, "model": _S, "site": _S,
    "nodes": _I, "gpus_per_node": _I, "gpus": _I,
    "tp": _I, "pp": _I, "cp": _I, "vpp": _IN, "dp": _I,
    "sequence_parallel": _B,
    "mbs": _I, "gbs": _I, "seq_len": _I,
    "precision": _S,
    "steps": _I, "warmup_steps": _I, "repeat": _I,
    "dataset": _S, "time_limit_min": _I,
    "model_params": _I, "model_layers": _I, "model_hidden": _I, "model_ffn_hidden": _I,
    "model_heads": _I, "model_kv_heads": _I, "model_vocab": _I,
    "gpu_model": _S, "gpu_mem_gib": _F, "gpu_peak_tflops": _FN,
    "node_model": _S,
    "adapters_per_node": _I, "adapter_model": _SN, "adapter_rate_gbps": _FN, "fabric": _S,
    "storage_type": _SN, "cost_per_node_hour": _FN, "mem_estimate_gib": _F,
    "container_image": _SN, "software": _SN,
    "recompute": _SN, "parallel": _SN, "lr": _F, "checkpoint_interval": _IN,
    "extra_args": _SN, "env": _SN,
}


def param_problems(params: dict[str, Any]) -> list[str]:
    """What makes ``params`` other than a plan's: keys missing or unknown, values of the
    wrong type or null where the key is not nullable. Empty when it is a plan's."""
    problems = [f"missing parameter {k!r}" for k in PARAMS if k not in params]
    problems += [f"unknown parameter {k!r}" for k in params if k not in PARAMS]
    problems += [f"parameter {k!r}: {v!r} is not {_type_text(PARAMS[k])}"
                 for k, v in params.items() if k in PARAMS and not PARAMS[k].accepts(v)]
    return problems


def select_params(params: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The known parameters of ``params`` (a plan's or a log's) whose values have the right
    type or are null, and one warning per key left out (unknown, or a value of another type)."""
    kept: dict[str, Any] = {}
    warnings: list[str] = []
    for key, value in params.items():
        param = PARAMS.get(key)
        if param is None:
            warnings.append(f"parameter {key!r} is not a slurmkit parameter; left out")
        elif not param.accepts(value, null=True):
            warnings.append(f"parameter {key!r}: {value!r} is not {_type_text(param)}; left out")
        else:
            kept[key] = value
    return kept, warnings


def _type_text(param: Param) -> str:
    text = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}[param.type]
    return text + (" or null" if param.nullable else "")
