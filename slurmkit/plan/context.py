"""The flat, fully resolved values a job's template formats (no decisions left for Jinja)."""
from __future__ import annotations

import json
from typing import Any

from slurmkit.config.catalog import ModelArch
from slurmkit.config.experiment import Experiment, JobSpec
from slurmkit.config.site import Container, Site
from slurmkit.plan.launch import common, launcher_module
from slurmkit.plan.launch.common import Job
from slurmkit.rundir import log_path


def job_context(run_id: str, params_json: str, spec: JobSpec, site: Site, model: ModelArch,
                experiment: Experiment) -> dict[str, Any]:
    paths = common.resolve_paths(spec, site, experiment, run_id)
    env = {**common.network_env(site, spec.launcher), **site.env, **spec.env}
    context = {
        "run_id": run_id,
        "launcher": spec.launcher,
        "site": site.name,
        "header": sbatch_header(run_id, spec, site),
        "env": sorted(env.items()),
        "setup": list(site.software.setup),
        "container": container(spec, site),
        "srun_flags": srun_flags(spec, site),
        "python": site.software.python,
        "params_json": params_json,
        "run_id_json": json.dumps(run_id),
        "nodes": spec.nodes,
        "gpus_per_node": site.gpu.count_per_node,
        "checkpoint_dir": paths.checkpoint_dir,
    }
    command = launcher_module(spec.launcher).command(Job(run_id, spec, model, site, experiment, paths))
    context["launcher_command"] = command  # slurmkit's own settings, without extra_args (for checks)
    context["command"] = command + common.group_args(list(spec.extra_args))
    return context


def container(spec: JobSpec, site: Site) -> Container | None:
    """The site's container settings with the point's image (an image alone when the site has none)."""
    image = common.container_image(spec, site)
    if image is None:
        return None
    base = site.software.container or Container(image=image)
    return base if base.image == image else Container.model_validate({**base.model_dump(), "image": image})


def sbatch_header(run_id: str, spec: JobSpec, site: Site) -> list[tuple[str, str | None]]:
    """Sorted ``#SBATCH`` options as (name, value or None for a bare flag)."""
    sched, gpus = site.scheduler, site.gpu.count_per_node
    time_min = spec.time_limit_min or sched.time_limit_min
    options: dict[str, str | None] = {
        "job-name": run_id,
        "output": log_path(run_id, "%j"),
        "nodes": str(spec.nodes),
        "ntasks-per-node": "1" if spec.launcher == "torchrun" else str(gpus),
        "partition": sched.partition,
        "time": f"{time_min // 60:02d}:{time_min % 60:02d}:00",
    }
    if sched.gpu_request == "gres":
        options["gres"] = f"{sched.gres_name}:{gpus}"
    else:
        options["gpus-per-node"] = str(gpus)
    for name, value in (("account", sched.account), ("qos", sched.qos)):
        if value:
            options[name] = value
    if sched.exclusive:
        options["exclusive"] = None
    options.update(sched.sbatch_args)
    return sorted(options.items())


def srun_flags(spec: JobSpec, site: Site) -> list[str]:
    """Flags of the one ``srun`` that starts the job (container flags come from the partial)."""
    flags = ["--kill-on-bad-exit=1", f"--nodes={spec.nodes}"]
    if spec.launcher == "torchrun":
        flags.append("--ntasks-per-node=1")
    else:
        flags.append(f"--ntasks-per-node={site.gpu.count_per_node}")
        if site.scheduler.mpi:
            flags.append(f"--mpi={site.scheduler.mpi}")
    return flags + list(site.scheduler.srun_args)
