"""Write ``slurmkit/data/programs/nemo-<tag>-<config>.json`` from NeMo's own source at a tag.

For each Hydra config a NeMo 1.x example script named by ``slurmkit.plan.launch.nemo1`` reads, this
takes the YAML with ``git show TAG:path`` from a bare mirror of NVIDIA/NeMo, follows its
``defaults:`` list, and flattens it to dotted keys with their defaults (OmegaConf's own loader,
interpolations left as written). It then adds the ``code_keys``: keys slurmkit sets that the
YAML lacks but NeMo reads from code with a default. Each is located by a pattern that must match
exactly one line of the file at the tag, so a read that moved or vanished fails here instead of
going stale in the JSON.

    .venv/bin/python scripts/programs/extract_hydra.py [--mirrors /work/.mirror] [--tag v2.0.0rc0]

The mirrors are ``<mirrors>/<owner>+<name>/repo`` (the search tool's ``fetch`` makes them). CI
does not run this: the JSON files are committed facts, and tests/config/test_nemo1_programs.py
composes every generated override onto them with Hydra.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[2]
NEMO = "NVIDIA/NeMo"
LIGHTNING = "Lightning-AI/pytorch-lightning"
LIGHTNING_TAG = "2.2.4"  # NeMo 24.05 ships Lightning 2.2.4 (NVIDIA's component table, see software.py)
EXAMPLES = "examples/nlp/language_modeling"
BASE_MODEL = "nemo/collections/nlp/models/language_modeling/megatron_base_model.py"
GPT_MODEL = "nemo/collections/nlp/models/language_modeling/megatron_gpt_model.py"
MODEL_PT = "nemo/core/classes/modelPT.py"
EXP_MANAGER = "nemo/utils/exp_manager.py"
TRAINER_BUILDER = "nemo/collections/nlp/parts/megatron_trainer_builder.py"
ADAPTER_MIXIN = "nemo/collections/nlp/parts/mixins/nlp_adapter_mixins.py"


@dataclass(frozen=True)
class Read:
    """One place in a repository's source that reads a key: ``pattern`` matches exactly one line."""

    path: str
    pattern: str
    repo: str = NEMO
    tag: str | None = None  # None: the tag being extracted


@dataclass(frozen=True)
class CodeKey:
    key: str
    default: Any  # "???" where the code has no default (the key must be given)
    how: str  # in our words: what the reads show
    reads: tuple[Read, ...]


@dataclass(frozen=True)
class Config:
    name: str  # --config-name
    script: str  # the example script that composes it
    conf_dir: str  # its --config-path, relative to the repository
    code_keys: tuple[CodeKey, ...]


_CONTEXT_PARALLEL = CodeKey(
    "model.context_parallel_size", 1,
    "the model passes cfg.get of it, default 1, to the parallel-state setup",
    (Read(BASE_MODEL, r"context_parallel_size=cfg\.get\('context_parallel_size', 1\)"),))
_EVERY_N_TRAIN_STEPS = CodeKey(
    "exp_manager.checkpoint_callback_params.every_n_train_steps", None,
    "exp_manager merges its cfg onto the ExpManagerConfig dataclass, whose CallbackParams has this"
    " field (default None) and passes it to the checkpoint callback",
    (Read(EXP_MANAGER, r"^\s+every_n_train_steps: Optional\[int\] = None"),
     Read(EXP_MANAGER, r"cfg = OmegaConf\.merge\(schema, cfg\)")))
_DATA_PREFIX = CodeKey(
    "model.data.data_prefix", "???",
    "build_train_valid_test_datasets reads it by attribute, with no default, even for mock data"
    " (which then ignores it); the model config is in struct mode, so a missing key is an error",
    (Read(GPT_MODEL, r"^\s+data_prefix = self\.cfg\.data\.data_prefix$"),
     Read(GPT_MODEL, r"mock_dataset = True if self\.cfg\.data\.get\(\"data_impl\", \"mmap\"\) == \"mock\""),
     Read(MODEL_PT, r"^\s+OmegaConf\.set_struct\(cfg, True\)$")))

# Fine-tuning: every cfg.model key is copied onto the restored .nemo's config, so a key absent
# from the fine-tuning YAML still reaches the model (whose own read and default are given too).
_MERGE = Read(ADAPTER_MIXIN, r"^\s+for key, val in cfg\.model\.items\(\):\n\s+base_cfg\[key\] = val$")


def _finetune(key: CodeKey) -> CodeKey:
    return CodeKey(key.key, key.default, key.how + "; the fine-tuning script copies every cfg.model key"
                   " onto the restored model's config (default: the .nemo's value)", key.reads + (_MERGE,))


_FINETUNE_KEYS = (
    _finetune(_CONTEXT_PARALLEL),
    _finetune(CodeKey("model.virtual_pipeline_model_parallel_size", None,
                      "the model reads cfg.get of it, default None",
                      (Read(BASE_MODEL, r"vp_size = self\.cfg\.get\('virtual_pipeline_model_parallel_size', None\)"
                            r"\n\n\s+if vp_size is not None:\n\s+if vp_size == 1:\n\s+vp_size = None"),))),
    _finetune(CodeKey("model.fp8", False, "the model reads cfg.get of it, default False",
                      (Read(BASE_MODEL, r"use_fp8=cfg\.get\('fp8', False\)"),))),
    _finetune(CodeKey("model.fp8_hybrid", False, "the model reads cfg.get of it, default False",
                      (Read(GPT_MODEL, r"fp8_hybrid=self\.cfg\.get\('fp8_hybrid', False\)"),))),
    _finetune(CodeKey("model.transformer_engine", False, "the model reads cfg.get of it, default False",
                      (Read(GPT_MODEL, r"self\.transformer_engine = cfg\.get\('transformer_engine', False\)"),))),
    CodeKey("trainer.limit_val_batches", None,
            "the trainer builder passes every cfg.trainer key to Lightning's Trainer, whose"
            " limit_val_batches defaults to None (all batches)",
            (Read(TRAINER_BUILDER, r"trainer = Trainer\(plugins=plugins, strategy=strategy, \*\*self\.cfg\.trainer"),
             Read("src/lightning/pytorch/trainer/trainer.py",
                  r"^\s+limit_val_batches: Optional\[Union\[int, float\]\] = None,$", LIGHTNING, LIGHTNING_TAG))),
    _EVERY_N_TRAIN_STEPS,
)

CONFIGS = (
    Config("megatron_llama_config", f"{EXAMPLES}/megatron_gpt_pretraining.py", f"{EXAMPLES}/conf",
           (_CONTEXT_PARALLEL, _DATA_PREFIX, _EVERY_N_TRAIN_STEPS)),
    Config("megatron_gpt_config", f"{EXAMPLES}/megatron_gpt_pretraining.py", f"{EXAMPLES}/conf",
           (_CONTEXT_PARALLEL, _EVERY_N_TRAIN_STEPS)),
    Config("megatron_gpt_finetuning_config", f"{EXAMPLES}/tuning/megatron_gpt_finetuning.py",
           f"{EXAMPLES}/tuning/conf", _FINETUNE_KEYS),
)


class Mirrors:
    """``git show TAG:path`` from bare mirrors under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def show(self, repo: str, tag: str, path: str) -> str:
        git_dir = self.root / repo.replace("/", "+") / "repo"
        done = subprocess.run(["git", "-C", str(git_dir), "show", f"{tag}:{path}"],
                              check=False, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"cannot read {repo}@{tag}:{path} from {git_dir}: {done.stderr.strip()}")
        return done.stdout


def compose(mirrors: Mirrors, tag: str, conf_dir: str, name: str) -> tuple[dict, list[str]]:
    """The config as Hydra composes it with no overrides, and the files it was read from."""
    path = f"{conf_dir}/{name}.yaml"
    data = OmegaConf.to_container(OmegaConf.create(mirrors.show(NEMO, tag, path)), resolve=False)
    defaults = data.pop("defaults", ["_self_"])
    merged, paths = OmegaConf.create(), []
    for entry in defaults:
        if entry == "_self_":
            merged, paths = OmegaConf.merge(merged, data), paths + [path]
            continue
        if not isinstance(entry, dict) or len(entry) != 1:
            sys.exit(f"{path}: defaults entry {entry!r} is not a form this extractor follows")
        (spec, option), = entry.items()
        optional, _, group = spec.rpartition(" ")
        group, _, package = group.partition("@")
        if option is None and optional == "optional":
            continue  # an optional group with nothing selected adds no keys
        if option is None or optional not in ("", "optional"):
            sys.exit(f"{path}: defaults entry {entry!r} is not a form this extractor follows")
        sub_path = f"{conf_dir}/{group}/{option}.yaml"
        node = OmegaConf.create(mirrors.show(NEMO, tag, sub_path))
        for part in reversed((package or group).split(".")):
            node = OmegaConf.create({part: node})
        merged, paths = OmegaConf.merge(merged, node), paths + [sub_path]
    return OmegaConf.to_container(merged, resolve=False), paths


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of the leaves (lists are leaves; an empty mapping is kept as ``{}``)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def locate(mirrors: Mirrors, tag: str, read: Read) -> str:
    """``repo@tag:path:line`` of the one line ``read.pattern`` matches."""
    at = read.tag or tag
    text = mirrors.show(read.repo, at, read.path)
    # the line of the match's first visible character (a leading \s+ may span blank lines)
    lines = [text[:m.start() + len(m.group()) - len(m.group().lstrip())].count("\n") + 1
             for m in re.finditer(read.pattern, text, re.MULTILINE)]
    if len(lines) != 1:
        sys.exit(f"{read.repo}@{at}:{read.path}: /{read.pattern}/ matches {len(lines)} lines, not one")
    return f"{read.repo}@{at}:{read.path}:{lines[0]}"


def describe(mirrors: Mirrors, tag: str, config: Config) -> dict[str, Any]:
    data, paths = compose(mirrors, tag, config.conf_dir, config.name)
    keys = flatten(data)
    code_keys = {}
    for code in config.code_keys:
        if code.key in keys:
            sys.exit(f"{config.name}: {code.key} is in the YAML at {tag}; it is not a code key there")
        code_keys[code.key] = {"default": code.default, "how": code.how,
                               "read_at": [locate(mirrors, tag, r) for r in code.reads]}
    return {
        "kind": "hydra",
        "program": f"NeMo {config.name}",
        "version": tag,
        "script": config.script,
        "config_name": config.name,
        "sources": [{"repo": NEMO, "tag": tag, "path": p} for p in paths],
        "extracted_by": "scripts/programs/extract_hydra.py",
        "keys": keys,
        "code_keys": code_keys,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--tag", default="v2.0.0rc0", help="NVIDIA/NeMo tag (software.py: image -> tag)")
    parser.add_argument("--out", type=Path, default=ROOT / "slurmkit" / "data" / "programs")
    args = parser.parse_args(argv)
    mirrors = Mirrors(args.mirrors)
    for config in CONFIGS:
        text = json.dumps(describe(mirrors, args.tag, config), indent=1) + "\n"
        out = args.out / f"nemo-{args.tag}-{config.name}.json"
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
