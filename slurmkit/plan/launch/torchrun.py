"""torchrun: the example trainer, carried in the run directory, or a program the experiment names.

The example trainer (``slurmkit/trainer/train.py``, standard library and PyTorch only) is copied
into the run directory as ``trainer/train-<hash>.py`` and torchrun runs that file, so the job's
container needs PyTorch, not slurmkit. ``check`` refuses a container whose PyTorch is too old for
it; ``program`` gives torchrun's own flags at the container's PyTorch version (what the template
passes; tests parse them), ``extra_args_program`` the flags the experiment's ``extra_args`` meet.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import resources

from slurmkit.config.catalog import ModelArch
from slurmkit.config.experiment import JobSpec
from slurmkit.config.site import Site
from slurmkit.errors import Location, Problem
from slurmkit.plan.launch.common import Job, container_image, group_args, versioned_program
from slurmkit.plan.launch.programs import FlagSet, KeySet, load_program
from slurmkit.plan.launch.software import CONTAINERS, container_software
from slurmkit.plan.runfile import RunFile

# The oldest PyTorch the example trainer runs on, per --parallel mode: the same table as
# MIN_TORCH in slurmkit/trainer/train.py (a test compares them; this module never imports torch).
TRAINER_MIN_TORCH = {"ddp": (2, 3), "fsdp": (2, 6)}
TRAINER_MIN_PYTHON = (3, 10)


@functools.lru_cache(maxsize=1)
def trainer_file() -> RunFile:
    """The example trainer's source as the run directory carries it (``trainer/train-<hash>.py``)."""
    data = resources.files("slurmkit.trainer").joinpath("train.py").read_bytes()
    return RunFile.content_addressed("trainer", "train", ".py", data)


def trainer_args(spec: JobSpec, model: ModelArch) -> list[str]:
    """The example trainer's command line (docs/contracts.md)."""
    return ["--steps", str(spec.steps), "--global-batch-size", str(spec.gbs),
            "--micro-batch-size", str(spec.mbs), "--seq-len", str(spec.seq_len),
            "--layers", str(model.layers), "--hidden", str(model.hidden), "--heads", str(model.heads),
            "--vocab", str(model.vocab), "--ffn-hidden", str(model.ffn_hidden), "--lr", str(spec.lr),
            "--parallel", spec.parallel, "--warmup-steps", str(spec.warmup_steps)]


def command(job: Job) -> list[list[str]]:
    """What follows ``torchrun <rendezvous flags>``: the carried trainer file, ``-m module`` or
    ``script``, and their arguments."""
    spec, model, experiment = job.spec, job.model, job.experiment
    program = experiment.program
    if program is None:
        return group_args([trainer_file(), *trainer_args(spec, model), "--precision", spec.precision])
    args = trainer_args(spec, model) if program.args is None else list(program.args)
    target = ["-m", program.module] if program.module else [program.script]
    return group_args([*target, *args])


def program(spec: JobSpec, site: Site, model: ModelArch | None = None) -> KeySet | FlagSet | None:
    """torchrun's flags at the PyTorch version of the job's container (None: unknown)."""
    return versioned_program(spec, site, "pytorch", lambda pytorch: f"torchrun-{pytorch}")


def extra_args_program(custom_program: bool) -> KeySet | FlagSet | None:
    """What an experiment's ``extra_args`` are checked against: they follow the training script's
    own arguments, so the example trainer's flags (``slurmkit-trainer.json``, written from
    trainer/train.py by scripts/programs/extract_trainer.py), or None for the user's program."""
    return None if custom_program else load_program("slurmkit-trainer")


def pytorch_version(tag: str) -> tuple[int, int]:
    """(major, minor) of a PyTorch release tag such as ``v2.3.0``."""
    major, minor = tag.lstrip("v").split(".")[:2]
    return int(major), int(minor)


def check_trainer(spec: JobSpec, site: Site, where: Callable[..., Location]) -> list[Problem]:
    """Whether the example trainer can run in the job's container (for jobs that run it).

    A known image's PyTorch must be recent enough for the --parallel mode; an image slurmkit does
    not know is a warning (images built on NGC PyTorch are common and usually fine, so refusing
    them would push users to --no-checks); no image means the site's own environment, as on the
    local test cluster, which runs the trainer for real.
    """
    if spec.precision != "bf16":
        return [Problem(f"the example trainer runs bf16, not {spec.precision}", where("precision"),
                        "use precision: bf16, or launcher nemo or megatron for fp8", "error")]
    image = container_image(spec, site)
    if image is None:
        return []
    need = TRAINER_MIN_TORCH[spec.parallel]
    need_text = ".".join(map(str, need))
    software = container_software(image)
    if software is None or software.pytorch is None:
        known = ", ".join(name for name, c in CONTAINERS.items()
                          if c.pytorch and pytorch_version(c.pytorch) >= need)
        return [Problem(f"slurmkit does not know the PyTorch version of container image {image!r}; the"
                        f" example trainer's {spec.parallel} mode needs PyTorch >= {need_text} and Python"
                        f" >= {'.'.join(map(str, TRAINER_MIN_PYTHON))}", where("container_image", "launcher"),
                        f"check the image, or use one slurmkit knows: {known}", "warning")]
    if pytorch_version(software.pytorch) < need:
        return [Problem(f"the example trainer's {spec.parallel} mode needs PyTorch >= {need_text}; container"
                        f" image {image} ships PyTorch {software.pytorch} ({software.source})",
                        where("container_image", "parallel"),
                        "use parallel: ddp, or an image with a newer PyTorch" if spec.parallel == "fsdp"
                        else "use an image with a newer PyTorch", "error")]
    return []
