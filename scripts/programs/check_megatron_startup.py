#!/usr/bin/env python3
"""Run Megatron-LM's own start-up code on every Megatron command line slurmkit generates.

For each job of the given experiments (default: the shipped ones and the test goldens that use
``launcher: megatron``), the command is read back from the rendered script and handed to the
Megatron-LM source at TAG: ``parse_args``, ``validate_args`` (as ``pretrain`` calls it, with
pretrain_gpt.py's ``args_defaults``), ``core_transformer_config_from_args`` (TransformerConfig's
own checks) and ``build_tokenizer``. The resulting sizes are compared with the job's parameters.
With ``--datasets``, pretrain_gpt.py's own ``train_valid_test_datasets_provider`` then builds the
datasets with the sample counts ``training.py`` asks for (mock data; a ``--data-path`` job is
skipped, its files are the site's): the training split must hold steps x gbs samples of seq_len
tokens, every id below the padded vocabulary. That step compiles Megatron's C++ dataset helpers
(``g++`` and ``pybind11``).

Needs what those steps import: PyTorch (CPU is enough: ``pip install -e '.[trainer]'``), ``six``
and ``regex``. Transformer Engine and Apex are CUDA-only and unused by these steps, so they are
replaced by empty stand-ins; nothing touches a GPU. Not run by CI (it needs the Megatron-LM
source); rerun it when the flag set or the launcher changes:

    scripts/programs/check_megatron_startup.py --git-dir /work/.mirror/NVIDIA+Megatron-LM/repo \\
        --tag core_v0.7.0
"""
from __future__ import annotations

import argparse
import importlib.metadata
import io
import logging
import os
import re
import shlex
import subprocess
import sys
import tarfile
import tempfile
import types
from contextlib import redirect_stdout
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[2]
STAND_INS = ["transformer_engine", "transformer_engine.pytorch", "transformer_engine.pytorch.distributed",
             "transformer_engine.pytorch.float8_tensor", "transformer_engine.common",
             "transformer_engine.common.recipe", "transformer_engine.pytorch.attention",
             "transformer_engine.pytorch.cpp_extensions", "apex", "apex.optimizers", "apex.normalization",
             "apex.multi_tensor_apply", "amp_C"]


def export_source(git_dir: str, tag: str, into: Path) -> None:
    archive = subprocess.run(["git", "-C", git_dir, "archive", "--format=tar", tag, "megatron", "pretrain_gpt.py"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


def import_megatron(source: Path, te_version: str) -> types.SimpleNamespace:
    for name in STAND_INS:
        sys.modules[name] = mock.MagicMock()
    if "pkg_resources" not in sys.modules:  # megatron/core/tensor_parallel/random.py needs only packaging
        try:
            import pkg_resources  # noqa: F401
        except ImportError:
            import packaging.version
            sys.modules["pkg_resources"] = types.SimpleNamespace(packaging=packaging)
    real_version = importlib.metadata.version
    importlib.metadata.version = \
        lambda name: te_version if name == "transformer-engine" else real_version(name)
    sys.path.insert(0, str(source))
    from megatron.training import arguments, global_vars, tokenizer, training
    return types.SimpleNamespace(arguments=arguments, tokenizer=tokenizer.tokenizer, global_vars=global_vars,
                                 training=training)


def compile_helpers(source: Path) -> None:
    """megatron/core/datasets/helpers.cpp, as its Makefile builds it (the image builds it at start-up)."""
    import sysconfig

    import pybind11
    folder = source / "megatron/core/datasets"
    out = folder / f"helpers{sysconfig.get_config_var('EXT_SUFFIX')}"
    subprocess.run(["g++", "-O3", "-shared", "-std=c++11", "-fPIC", f"-I{pybind11.get_include()}",
                    f"-I{sysconfig.get_paths()['include']}", str(folder / "helpers.cpp"), "-o", str(out)],
                   check=True, capture_output=True)


def check_datasets(megatron: types.SimpleNamespace, args: argparse.Namespace, job) -> str:
    """pretrain_gpt.py's dataset provider with the counts training.py asks for, on one process."""
    import pretrain_gpt
    logging.getLogger("megatron").setLevel(logging.ERROR)  # one line per job is the report
    p = job.params
    megatron.global_vars._GLOBAL_ARGS = megatron.global_vars._GLOBAL_TOKENIZER = None
    megatron.global_vars.set_args(args)
    with redirect_stdout(io.StringIO()):
        megatron.global_vars._build_tokenizer(args)
        sizes = megatron.training.get_train_valid_test_num_samples()
        with mock.patch.object(pretrain_gpt, "is_dataset_built_on_rank", lambda: True), \
                mock.patch("torch.distributed.is_initialized", lambda: False):
            train, _, _ = pretrain_gpt.train_valid_test_datasets_provider(sizes)
    tokens = train[len(train) - 1]["tokens"]
    if len(train) < p["steps"] * p["gbs"] or tokens.shape[0] != p["seq_len"] \
            or int(tokens.max()) >= args.padded_vocab_size:
        raise AssertionError(f"training split of {len(train)} samples, a sample of {tuple(tokens.shape)}"
                             f" tokens up to id {int(tokens.max())}, for {p['steps']} x {p['gbs']} samples of"
                             f" {p['seq_len']} below {args.padded_vocab_size}")
    return f" train_samples={len(train)} max_token_id={int(tokens.max())}"


def megatron_jobs(files: list[Path]):
    sys.path.insert(0, str(ROOT))
    from slurmkit.plan.make import make_plan
    for path in files:
        if not re.search(r"^\s*-?\s*\{?.*launcher: *megatron\b(?!-)", path.read_text(), re.MULTILINE):
            continue  # plan only what may hold megatron jobs (other experiments may not plan here)
        for job in make_plan(path).jobs:
            if job.params["launcher"] == "megatron":
                yield path, job


def command_of(text: str) -> list[str]:
    lines = text.replace("\\\n", " ").splitlines()
    argv = shlex.split(next(line for line in lines if line.startswith("srun ")))
    return argv[next(i for i, arg in enumerate(argv) if arg.endswith("/pretrain_gpt.py")):]


def check_job(megatron: types.SimpleNamespace, job, environment: dict[str, str], datasets: bool) -> str:
    p = job.params
    os.environ.update({**environment, "WORLD_SIZE": str(p["gpus"]), "RANK": "0"})
    with mock.patch.object(sys, "argv", command_of(job.text)), redirect_stdout(io.StringIO()):
        args = megatron.arguments.parse_args()
        args = megatron.arguments.validate_args(args, {"tokenizer_type": "GPT2BPETokenizer"})
        config = megatron.arguments.core_transformer_config_from_args(args)
        tokenizer = megatron.tokenizer.build_tokenizer(args)
    got = (args.data_parallel_size, config.tensor_model_parallel_size, config.pipeline_model_parallel_size,
           config.context_parallel_size, config.virtual_pipeline_model_parallel_size,
           config.num_layers, config.hidden_size, config.ffn_hidden_size, config.num_attention_heads,
           config.num_query_groups or config.num_attention_heads, tokenizer.vocab_size,
           args.seq_length, args.global_batch_size, args.train_iters)
    want = (p["dp"], p["tp"], p["pp"], p["cp"], p["vpp"], p["model_layers"], p["model_hidden"],
            p["model_ffn_hidden"], p["model_heads"], p["model_kv_heads"], p["model_vocab"], p["seq_len"],
            p["gbs"], p["steps"])
    if got != want:
        raise AssertionError(f"Megatron reads {got}, the job's parameters say {want}")
    line = (f"dp={args.data_parallel_size} vpp={config.virtual_pipeline_model_parallel_size}"
            f" sp={config.sequence_parallel}"
            f" recompute={config.recompute_granularity}/{config.recompute_method}"
            f" fp8={config.fp8} padded_vocab={args.padded_vocab_size}")
    return line + check_datasets(megatron, args, job) if datasets and args.mock_data else line


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("--git-dir", required=True, help="a clone or bare mirror of NVIDIA/Megatron-LM")
    ap.add_argument("--tag", default="core_v0.7.0")
    ap.add_argument("--te-version", default="1.6.0",
                    help="Transformer Engine version to report (NeMo 24.05 ships 1.6)")
    ap.add_argument("--datasets", action="store_true", help="also build the mock datasets (g++, pybind11)")
    ap.add_argument("experiments", nargs="*", type=Path,
                    default=sorted((ROOT / "experiments").glob("*.yaml"))
                    + sorted((ROOT / "tests/config/data/golden").glob("*.yaml")))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        export_source(args.git_dir, args.tag, Path(tmp))
        if args.datasets:
            compile_helpers(Path(tmp))
        megatron = import_megatron(Path(tmp), args.te_version)
        failures = 0
        for path, job in megatron_jobs(args.experiments):
            # the script's own exports (validate_args checks CUDA_DEVICE_MAX_CONNECTIONS)
            environment = {k: v.strip("'") for k, v in (line[len("export "):].split("=", 1)
                           for line in job.text.splitlines() if line.startswith("export "))}
            try:
                print(f"ok   {path.stem} {job.run_id}: {check_job(megatron, job, environment, args.datasets)}")
            # Megatron raises anything (assert, RuntimeError, argparse's exit): report all, then fail
            except (Exception, SystemExit) as exc:  # noqa: BLE001
                failures += 1
                print(f"FAIL {path.stem} {job.run_id}: {type(exc).__name__}: {exc}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
