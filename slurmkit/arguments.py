"""The experiment's ``extra_args`` checked against the real program the job's container runs.

Every launcher module says which program its arguments go to (``program(spec, site)``: a Hydra
key set, an argparse flag set, or None when slurmkit has no description, so nothing is checked).
A Hydra override must name a key of the config at that version, with the prefix Hydra's struct
mode accepts: plain for a key of the YAML, ``+`` for one the program reads from code, ``++`` for
either. A ``--flag`` must be one of the program's flags. A launcher whose arguments must always
be proven (``PROGRAM_REQUIRED``) refuses a container image slurmkit has no description for.
"""
from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from types import ModuleType

from slurmkit.catalog import ModelArch
from slurmkit.check import Where
from slurmkit.errors import Location, Problem
from slurmkit.experiment import JobSpec, LoadedExperiment
from slurmkit.launch import launcher_module
from slurmkit.launch.common import Job, container_image, resolve_paths
from slurmkit.launch.programs import FlagSet, KeySet
from slurmkit.launch.software import CONTAINERS
from slurmkit.site import Site

MISSING = "???"  # OmegaConf's mark for a value the user must give

# Hydra's override forms that set a key: key=v, +key=v (add), ++key=v (add or change)
_OVERRIDE = re.compile(r"(\+{0,2})([A-Za-z_][\w.-]*)=")


def check_arguments(spec: JobSpec, site: Site, loaded: LoadedExperiment, where: Where,
                    model: ModelArch | None = None) -> list[Problem]:
    """Problems with the point's program and the experiment's ``extra_args`` (each at its line)."""
    module = launcher_module(spec.launcher)
    program = program_for(module, spec, site, model)
    if hasattr(module, "extra_args_program"):  # torchrun: extra_args go to the training script
        program = module.extra_args_program(loaded.experiment.program is not None)
    if program is None:
        if getattr(module, "PROGRAM_REQUIRED", False):
            return [_unknown_image(module, spec, site, model, where)]
        return []
    problems = []
    managed = _CommandSettings(module, spec, site, model, loaded)
    for i, arg in enumerate(loaded.experiment.extra_args):
        at = loaded.doc.location(("extra_args", i))
        if isinstance(program, KeySet):
            problems += _check_override(program, arg, i, at, managed)
        else:
            problems += _check_flag(program, arg, i, at, managed)
    return problems


class _CommandSettings:
    """The keys and flags the launcher's own command sets, each from a job field that is a named
    parameter of the run. extra_args come after them, so one naming the same key or flag would
    silently replace the field's value: the run would differ from what its parameters say. Built
    only when an extra_args entry is checked."""

    def __init__(self, module: ModuleType, spec: JobSpec, site: Site, model: ModelArch | None,
                 loaded: LoadedExperiment) -> None:
        self.args = module, spec, site, model, loaded
        self.names: set[str] | None = None

    def __contains__(self, name: str) -> bool:
        if self.names is None:
            module, spec, site, model, loaded = self.args
            self.names = set()
            if model is not None:
                paths = resolve_paths(spec, site, loaded.experiment, _RUN_ID)
                command = module.command(Job(_RUN_ID, spec, model, site, loaded.experiment, paths))
                for arg in (str(a) for group in command for a in group):
                    if arg.startswith("--"):
                        self.names.add(arg.split("=", 1)[0])
                    elif match := _OVERRIDE.match(arg):
                        self.names.add(match.group(2))
        return name in self.names


_RUN_ID = "validate"  # the keys a command sets do not depend on the run id


def program_for(module: ModuleType, spec: JobSpec, site: Site, model: ModelArch | None
                ) -> KeySet | FlagSet | None:
    """``module.program(spec, site)``, with the model for a launcher whose program depends on it."""
    if _takes_model(module.program):
        return module.program(spec, site, model=model)
    return module.program(spec, site)


@functools.cache
def _takes_model(program: Callable) -> bool:
    return "model" in inspect.signature(program).parameters


def _check_override(keys: KeySet, arg: str, i: int, at: Location, managed: _CommandSettings) -> list[Problem]:
    match = _OVERRIDE.match(arg)
    if match is None:
        return []  # not an override that sets a key (a Hydra flag, a group choice): Hydra's own rules
    prefix, key = match.groups()
    if key.split(".", 1)[0] == "hydra":
        return []  # Hydra's own settings (hydra.run.dir, hydra.verbose), there for every Hydra app
    of = f"{keys.program} ({keys.version})"
    if key not in keys.keys and key not in keys.code_keys:
        near = keys.nearest(key)
        return [Problem(f"extra_args[{i}]: {key} is not a key of {of}", at,
                        f"did you mean {keys.prefix(near)}{near}?" if near else None)]
    if key in managed:
        return [_managed(i, key, at)]
    if key in keys.keys and prefix == "+":
        return [Problem(f"extra_args[{i}]: {key} is in the YAML of {of}, so Hydra refuses to add it"
                        " with +", at, f"write {key}=... without the +")]
    if key not in keys.keys and prefix == "":
        return [Problem(f"extra_args[{i}]: {key} is not in the YAML of {of}, so Hydra refuses to change it",
                        at, f"write +{key}=... (the program reads it from code)")]
    return []


def _check_flag(flags: FlagSet, arg: str, i: int, at: Location, managed: _CommandSettings) -> list[Problem]:
    if not arg.startswith("--"):
        return []  # a value of the flag before it
    flag = arg.split("=", 1)[0]
    if flag not in flags.flags:
        near = flags.nearest(flag)
        return [Problem(f"extra_args[{i}]: {flag} is not a flag of {flags.program} ({flags.version})", at,
                        f"did you mean {near}?" if near else None)]
    return [_managed(i, flag, at)] if flag in managed else []


def _managed(i: int, name: str, at: Location) -> Problem:
    return Problem(f"extra_args[{i}]: slurmkit sets {name} from the experiment's fields; a second value"
                   " would make the run differ from its parameters", at,
                   "change that field instead; extra_args may only add settings")


def check_mandatory(spec: JobSpec, site: Site, model: ModelArch, command: list[list[str]], where: Where
                    ) -> list[Problem]:
    """Keys the config marks mandatory (OmegaConf's ``???``) that the job's whole command line
    (extra_args included) leaves unset: the program would stop at start-up reading them."""
    keys = program_for(launcher_module(spec.launcher), spec, site, model)
    if not isinstance(keys, KeySet):
        return []
    mandatory = [key for key, default in keys.keys.items() if default == MISSING]
    if not mandatory:
        return []
    given = {m.group(2) for group in command for arg in group if (m := _OVERRIDE.match(str(arg)))}
    return [Problem(f"{key} is mandatory in {keys.program} ({keys.version}) and the job does not set it",
                    where("extra_args", "launcher"), f"add {key}=... to extra_args")
            for key in mandatory if key not in given]


def _unknown_image(module: ModuleType, spec: JobSpec, site: Site, model: ModelArch | None,
                   where: Where) -> Problem:
    image = container_image(spec, site)
    known = [name for name in CONTAINERS
             if program_for(module, JobSpec.validate({**spec.to_dict(), "container_image": name}), site, model)]
    hint = (f"known images: {', '.join(known)}" if known else "slurmkit ships no image for it") + \
        " (set container_image:, or the site's software.container.image)"
    if image is None:
        return Problem(f"launcher {spec.launcher} needs a container image: its arguments are checked against"
                       f" the program the image ships, and site {site.name} names none",
                       where("container_image", "launcher"), hint)
    return Problem(f"launcher {spec.launcher}: slurmkit does not know the program versions in container"
                   f" image {image!r}, so it cannot check the job's arguments",
                   where("container_image", "launcher"), hint)
