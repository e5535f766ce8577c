"""torchrun: the example trainer, or a program the experiment names."""
from __future__ import annotations

from slurmkit.catalog import ModelArch
from slurmkit.experiment import JobSpec
from slurmkit.launch.common import Job, group_args
from slurmkit.launch.programs import FlagSet, KeySet
from slurmkit.site import Site


def trainer_args(spec: JobSpec, model: ModelArch) -> list[str]:
    """The example trainer's command line (docs/contracts.md)."""
    return ["--steps", str(spec.steps), "--global-batch-size", str(spec.gbs),
            "--micro-batch-size", str(spec.mbs), "--seq-len", str(spec.seq_len),
            "--layers", str(model.layers), "--hidden", str(model.hidden), "--heads", str(model.heads),
            "--vocab", str(model.vocab), "--ffn-hidden", str(model.ffn_hidden), "--lr", str(spec.lr),
            "--parallel", spec.parallel, "--warmup-steps", str(spec.warmup_steps)]


def command(job: Job) -> list[list[str]]:
    """What follows ``torchrun <rendezvous flags>``: ``-m module args`` or ``script args``."""
    spec, model, experiment = job.spec, job.model, job.experiment
    program = experiment.program
    if program is None:
        return group_args(["-m", "slurmkit.trainer", *trainer_args(spec, model)])
    args = trainer_args(spec, model) if program.args is None else list(program.args)
    target = ["-m", program.module] if program.module else [program.script]
    return group_args([*target, *args])


def program(spec: JobSpec, site: Site) -> KeySet | FlagSet | None:
    """Not described yet."""
    return None
