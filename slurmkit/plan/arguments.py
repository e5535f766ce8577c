"""The experiment's ``extra_args`` checked against the real program the job's container runs.

Every launcher module says which program its arguments go to (``program(spec, site, model)``: a Hydra
key set, an argparse flag set, or None when slurmkit has no description, so nothing is checked).
A Hydra override must name a key of the config at that version, with the prefix Hydra's struct
mode accepts: plain for a key of the YAML, ``+`` for one the program reads from code, ``++`` for
either. A ``--flag`` must be one of the program's flags. A launcher whose arguments must always
be proven (``PROGRAM_REQUIRED``) refuses a container image slurmkit has no description for.

Once the job's command is built (``check_command``): extra_args may only add settings, never
replace one slurmkit makes from the job's fields (the run would differ from its parameters), and a
key the config marks mandatory (``???``) must be set.
"""
from __future__ import annotations

import functools
import itertools
import re
from types import ModuleType

from slurmkit.config.catalog import ModelArch
from slurmkit.config.experiment import JobSpec, LoadedExperiment
from slurmkit.config.site import Site
from slurmkit.errors import Location, Problem
from slurmkit.plan.check import Where
from slurmkit.plan.launch import launcher_module
from slurmkit.plan.launch.common import container_image
from slurmkit.plan.launch.programs import FlagSet, KeySet, load_program
from slurmkit.plan.launch.software import CONTAINERS

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
    for i, arg in enumerate(spec.extra_args):
        at = where("extra_args", i)
        if isinstance(program, KeySet):
            problems += _check_override(program, arg, i, at)
        else:
            problems += _check_flag(program, arg, i, at)
    return problems


def program_for(module: ModuleType, spec: JobSpec, site: Site, model: ModelArch | None
                ) -> KeySet | FlagSet | None:
    """``module.program(spec, site, model)``: the description the job's arguments are checked against."""
    return module.program(spec, site, model)


def _check_override(keys: KeySet, arg: str, i: int, at: Location) -> list[Problem]:
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
    if key in keys.keys and prefix == "+":
        return [Problem(f"extra_args[{i}]: {key} is in the YAML of {of}, so Hydra refuses to add it"
                        " with +", at, f"write {key}=... without the +")]
    return []  # the rest needs the built command (check_command): a key slurmkit sets, or adds with +


def _check_flag(flags: FlagSet, arg: str, i: int, at: Location) -> list[Problem]:
    if not arg.startswith("--"):
        return []  # a value of the flag before it
    flag = arg.split("=", 1)[0]
    if flag not in flags.flags:
        near = flags.nearest(flag)
        return [Problem(f"extra_args[{i}]: {flag} is not a flag of {flags.program} ({flags.version})", at,
                        f"did you mean {near}?" if near else None)]
    return []


def _managed(i: int, name: str, at: Location) -> Problem:
    return Problem(f"extra_args[{i}]: slurmkit sets {name} from the experiment's fields; a second value"
                   " would make the run differ from its parameters", at,
                   "change that field instead; extra_args may only add settings")


def check_command(spec: JobSpec, site: Site, model: ModelArch, loaded: LoadedExperiment,
                  context: dict, where: Where) -> list[Problem]:
    """What only the built command shows: extra_args that would replace a setting slurmkit makes
    from the job's fields, and keys the config marks mandatory (OmegaConf's ``???``) that the whole
    command leaves unset (the program would stop at start-up reading them)."""
    problems = []
    keys = program_for(launcher_module(spec.launcher), spec, site, model)
    extra = [(i, str(arg), _name(str(arg))) for i, arg in enumerate(spec.extra_args)]
    if any(name for _, _, name in extra):
        own = _text(context["launcher_command"])
        for i, arg, name in extra:
            at = where("extra_args", i)
            if name and _sets(own, name):
                problems.append(_managed(i, name, at))
            elif isinstance(keys, KeySet) and name in keys.code_keys and not arg.startswith("+"):
                problems.append(Problem(
                    f"extra_args[{i}]: {name} is not in the YAML of {keys.program} ({keys.version}), so Hydra"
                    " refuses to change it", at, f"write +{name}=... (the program reads it from code)"))
    mandatory = _mandatory(keys.name) if isinstance(keys, KeySet) else ()
    if mandatory and isinstance(keys, KeySet):
        given = _text(context["command"])
        problems += [Problem(f"{key} is mandatory in {keys.program} ({keys.version}) and the job does not"
                             " set it", where("extra_args", "launcher"), f"add {key}=... to extra_args")
                     for key in mandatory if not _sets(given, key)]
    return problems


def _name(arg: str) -> str | None:
    """The flag or override key an argument sets (None for a value)."""
    if arg.startswith("--"):
        return arg.split("=", 1)[0]
    match = _OVERRIDE.match(arg)
    return match.group(2) if match else None


def _text(command: list[list]) -> str:
    """A command as one string, an argument a line (one search then finds a setting in it)."""
    return "\n" + "\n".join(map(str, itertools.chain.from_iterable(command))) + "\n"


def _sets(text: str, name: str) -> bool:
    """Whether the command ``text`` sets ``name`` (``--flag``, ``--flag=v``, ``[+|++]key=v``)."""
    return _setting_pattern(name).search(text) is not None


@functools.lru_cache(maxsize=1024)
def _setting_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"\n\+{{0,2}}{re.escape(name)}[=\n]")


@functools.lru_cache(maxsize=64)
def _mandatory(keyset_name: str) -> tuple[str, ...]:
    keys = load_program(keyset_name)
    assert isinstance(keys, KeySet)
    return tuple(key for key, default in keys.keys.items() if default == MISSING)


def _unknown_image(module: ModuleType, spec: JobSpec, site: Site, model: ModelArch | None,
                   where: Where) -> Problem:
    image = container_image(spec, site)
    known = [name for name in CONTAINERS
             if program_for(module, JobSpec.model_validate({**spec.model_dump(), "container_image": name}), site, model)]
    hint = (f"known images: {', '.join(known)}" if known else "slurmkit ships no image for it") + \
        " (set container_image:, or the site's software.container.image)"
    if image is None:
        return Problem(f"launcher {spec.launcher} needs a container image: its arguments are checked against"
                       f" the program the image ships, and site {site.name} names none",
                       where("container_image", "launcher"), hint)
    return Problem(f"launcher {spec.launcher}: slurmkit does not know the program versions in container"
                   f" image {image!r}, so it cannot check the job's arguments",
                   where("container_image", "launcher"), hint)
