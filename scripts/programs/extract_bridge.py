#!/usr/bin/env python3
"""Write the Megatron-Bridge ConfigContainer key set slurmkit checks its Hydra overrides against.

Reads the real source with ``git show TAG:path`` from bare mirrors (the search tool's
``fetch`` of NVIDIA-NeMo/Megatron-Bridge and NVIDIA/Megatron-LM) and writes
``bridge-config-<tag>.json`` (``kind: hydra``): the flattened keys of the ``ConfigContainer``
sections (see SECTIONS), i.e. the dataclass fields of the classes the Llama 3 performance recipe
puts there, with every base class followed across both repositories. ``run_script.py`` applies leftover ``key=value`` arguments with
  Hydra's override parser in struct mode (``omegaconf_utils.parse_hydra_overrides``), so a key
  outside this set is refused by the program too.

Only names and literal defaults are recorded (facts), no code. The flags of ``run_script.py``
(``bridge-run_script-<tag>.json``) come from the shared argparse extractor:

    scripts/programs/extract_argparse.py --git-dir /work/.mirror/NVIDIA-NeMo+Megatron-Bridge/repo \\
        --repo NVIDIA-NeMo/Megatron-Bridge --tag v0.4.0 \\
        --program "Megatron-Bridge scripts/performance/run_script.py" \\
        --source scripts/performance/argument_parser.py:parse_cli_args \\
        --out slurmkit/data/programs/bridge-run_script-v0.4.0.json

Usage:

    scripts/programs/extract_bridge.py --bridge /work/.mirror/NVIDIA-NeMo+Megatron-Bridge/repo \\
        --megatron /work/.mirror/NVIDIA+Megatron-LM/repo --tag v0.4.0 --core-tag core_v0.17.0
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared readers beside this file
from extract_argparse import git_show, literal_default  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "slurmkit" / "data" / "programs"
BRIDGE_REPO, CORE_REPO = "NVIDIA-NeMo/Megatron-Bridge", "NVIDIA/Megatron-LM"

# ConfigContainer section -> the class the Llama 3 performance recipe (run_script.py) puts there,
# named as megatron.bridge.training.config sees it. Sections the recipe leaves None (ft,
# straggler, nvrx_straggler, peft, tensor_inspect, inprocess_restart) and comm_overlap (set
# only by some GPU presets) take no sub-keys, so they are left out.
SECTIONS = {
    "model": ("megatron.bridge.models.gpt_provider", "GPTModelProvider"),
    "train": (None, "TrainingConfig"), "validation": (None, "ValidationConfig"),
    "optimizer": (None, "OptimizerConfig"), "scheduler": (None, "SchedulerConfig"),
    "ddp": (None, "DistributedDataParallelConfig"),
    "dataset": (None, "MockGPTDatasetConfig"),  # utils/datasets.py create_mock_dataset_config
    "tokenizer": (None, "TokenizerConfig"), "logger": (None, "LoggerConfig"),
    "checkpoint": (None, "CheckpointConfig"), "dist": (None, "DistributedInitConfig"),
    "rng": (None, "RNGConfig"), "rerun_state_machine": (None, "RerunStateMachineConfig"),
    "profiling": (None, "ProfilingConfig"),
    "mixed_precision": (None, "MixedPrecisionConfig"),  # the llama3 perf configs set one
}
HOME = "megatron.bridge.training.config"
# module name -> path in its repository: every file the field walk may follow
BRIDGE_FILES = {
    HOME: "src/megatron/bridge/training/config.py",
    "megatron.bridge.models.gpt_provider": "src/megatron/bridge/models/gpt_provider.py",
    "megatron.bridge.models.transformer_config": "src/megatron/bridge/models/transformer_config.py",
    "megatron.bridge.models.model_provider": "src/megatron/bridge/models/model_provider.py",
    "megatron.bridge.training.tokenizers.config": "src/megatron/bridge/training/tokenizers/config.py",
    "megatron.bridge.training.mixed_precision": "src/megatron/bridge/training/mixed_precision.py",
}
CORE_FILES = {
    "megatron.core.transformer.transformer_config": "megatron/core/transformer/transformer_config.py",
    "megatron.core.model_parallel_config": "megatron/core/model_parallel_config.py",
    "megatron.core.optimizer": "megatron/core/optimizer/optimizer_config.py",
    "megatron.core.distributed": "megatron/core/distributed/distributed_data_parallel_config.py",
    "megatron.core.datasets.gpt_dataset": "megatron/core/datasets/gpt_dataset.py",
    "megatron.core.datasets.blended_megatron_dataset_config":
        "megatron/core/datasets/blended_megatron_dataset_config.py",
    "megatron.training.config": "megatron/training/config/__init__.py",
    "megatron.training.config.common_config": "megatron/training/config/common_config.py",
    "megatron.training.config.training_config": "megatron/training/config/training_config.py",
    "megatron.training.config.resilience_config": "megatron/training/config/resilience_config.py",
}




class Module:
    """One parsed source file: its classes and the names it imports."""

    def __init__(self, name: str, text: str):
        tree = ast.parse(text)
        self.classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        self.imports: dict[str, tuple[str, str]] = {}  # local name -> (module, name)
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and (node.module or node.level):
                source = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    package = name.split(".")[:-node.level]
                    source = ".".join(package + ([source] if source else []))
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = (source, alias.name)


def _base_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Subscript):  # Generic[...] / Mixin[T]
        node = node.value
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def resolve(modules: dict[str, Module], module: str, name: str) -> tuple[str, str] | None:
    """Where class ``name`` as seen from ``module`` is defined (following imports and re-exports)."""
    for _ in range(5):
        mod = modules.get(module)
        if mod is None:
            return None
        if name in mod.classes:
            return module, name
        if name not in mod.imports:
            return None
        module, name = mod.imports[name]
    return None


def class_fields(modules: dict[str, Module], module: str, name: str, seen: set | None = None) -> dict:
    """Dataclass fields of ``module.name`` and its bases (subclass wins), in MRO-like order."""
    seen = set() if seen is None else seen
    mod = modules[module]
    node = mod.classes[name]
    fields: dict = {}
    for base in reversed(node.bases):
        base_name = _base_name(base)
        if base_name is None or (module, base_name) in seen:
            continue
        seen.add((module, base_name))
        target = resolve(modules, module, base_name)
        if target is not None:
            fields.update(class_fields(modules, *target, seen))
    for stmt in node.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            annotation = ast.unparse(stmt.annotation)
            if annotation.startswith(("ClassVar", "InitVar", "typing.ClassVar")):
                continue
            fields[stmt.target.id] = _default(stmt.value)
    return fields


def _default(value: ast.expr | None):
    if isinstance(value, ast.Call) and _base_name(value.func) == "field":
        for kw in value.keywords:
            if kw.arg == "default":
                return literal_default(kw.value)
        return None
    return literal_default(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bridge", required=True, help="bare mirror of NVIDIA-NeMo/Megatron-Bridge")
    parser.add_argument("--megatron", required=True, help="bare mirror of NVIDIA/Megatron-LM")
    parser.add_argument("--tag", required=True, help="Megatron-Bridge tag, e.g. v0.4.0")
    parser.add_argument("--core-tag", required=True, help="Megatron-LM tag, e.g. core_v0.17.0")
    args = parser.parse_args()

    modules = {m: Module(m, git_show(args.bridge, args.tag, p)) for m, p in BRIDGE_FILES.items()}
    modules |= {m: Module(m, git_show(args.megatron, args.core_tag, p)) for m, p in CORE_FILES.items()}
    keys: dict = {}
    for section, (module, class_name) in SECTIONS.items():
        target = resolve(modules, module or HOME, class_name)
        if target is None:
            raise SystemExit(f"{section}: class {class_name} not found in the files read")
        for name, default in class_fields(modules, *target).items():
            keys[f"{section}.{name}"] = default
    sources = [{"repo": BRIDGE_REPO, "tag": args.tag, "path": p} for p in dict.fromkeys(BRIDGE_FILES.values())]
    sources += [{"repo": CORE_REPO, "tag": args.core_tag, "path": p} for p in dict.fromkeys(CORE_FILES.values())]
    write(f"bridge-config-{args.tag}", {
        "kind": "hydra", "program": "Megatron-Bridge ConfigContainer (Llama 3 performance recipe)",
        "version": f"{args.tag} with Megatron-LM {args.core_tag}", "sources": sources,
        "keys": dict(sorted(keys.items())), "code_keys": {}})


def write(name: str, data: dict) -> None:
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {path} ({len(data['keys'])} keys)")


if __name__ == "__main__":
    main()
