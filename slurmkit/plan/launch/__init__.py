"""Launcher arguments and environment, decided here so the templates only format them.

One module per launcher builds its command line (NeMo 1.x Hydra overrides, NeMo 2 recipe
settings, Megatron-LM flags, Megatron-Bridge flags and overrides, torchrun and the example
trainer); ``common`` holds what they share. Network variables come
from the site's typed adapter fields: one HCA per adapter in ``NCCL_IB_HCA`` and ``UCX_NET_DEVICES``.

Each launcher module has ``command(job) -> list[list[str]]`` (the program and its arguments, one
option with its values per line) and ``program(spec, site, model)``: the shipped description of the real
program the arguments are checked against (``programs.KeySet`` or ``FlagSet``), None when
slurmkit has none for the job's container. A module may add ``check(spec, site, where)``: what
its program refuses at start-up that the generic rules (``slurmkit.plan.check``) do not see.
"""
from __future__ import annotations

import functools
import importlib
from types import ModuleType

# launcher name (JobSpec.launcher) -> module under slurmkit.plan.launch
LAUNCHER_MODULES = {"nemo": "nemo1", "megatron": "megatron", "torchrun": "torchrun",
                    "megatron-bridge": "bridge", "nemo2": "nemo2"}


@functools.cache  # asked several times per sweep point
def launcher_module(launcher: str) -> ModuleType:
    return importlib.import_module(f"slurmkit.plan.launch.{LAUNCHER_MODULES[launcher]}")
