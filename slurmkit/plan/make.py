"""The plan: every sweep point resolved against its site and model, and checked.

``make_plan`` validates everything first and raises one ConfigError listing every problem, so
nothing is written for a sweep that has any error. The plan is typed data (each job's
parameters and template context); slurmkit.plan.render turns it into scripts afterwards. Parameters are the flat keys of
docs/contracts.md; ``run_id`` is a readable prefix plus a hash of everything that shapes the job.
"""
from __future__ import annotations

import gc
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slurmkit.config.catalog import ModelArch, catalogue, load_models
from slurmkit.config.experiment import JobSpec, LoadedExperiment, load_experiment, point_spec
from slurmkit.config.limits import NAME_MAX, path_problem
from slurmkit.config.site import Site, load_site
from slurmkit.config.sweep import MAX_POINTS
from slurmkit.errors import ConfigError, Location, Problem
from slurmkit.plan.arguments import check_arguments, check_command
from slurmkit.plan.check import check_memory, check_point, data_parallel
from slurmkit.plan.context import job_context
from slurmkit.plan.launch.common import container_image, resolve_paths
from slurmkit.plan.launch.software import container_software
from slurmkit.plan.memory import Layout, estimate
from slurmkit.plan.runid import make_run_id, run_files_problem, varying_fields
from slurmkit.rundir import plan_text, script_path


@dataclass
class JobPlan:
    run_id: str
    script: str  # relative to the run directory
    params: dict[str, Any]
    context: dict[str, Any] = field(repr=False)  # what the template formats
    text: str = field(default="", repr=False)  # the script, once slurmkit.plan.render.render_plan ran
    params_json: str = field(default="", repr=False)  # params as compact, key-sorted JSON


@dataclass
class Plan:
    experiment: str
    experiment_file: str
    sites: dict[str, dict]
    jobs: list[JobPlan]
    warnings: list[Problem] = field(default_factory=list)
    axes: tuple[str, ...] = ()  # the job fields that vary within the sweep (generate's table shows them)
    site_files: dict[str, str] = field(default_factory=dict)  # site name -> the YAML file read (absolute)

    def to_json(self) -> str:
        """plan.json's text (slurmkit.rundir.plan_text)."""
        return plan_text(self.experiment, self.experiment_file, self.sites,
                         ((j.run_id, j.script, j.params_json or _compact(j.params)) for j in self.jobs),
                         self.site_files)


def make_plan(experiment: Path | str, sites: list[str] | None = None, *, strict: bool = False,
              site_dirs: list[Path] | None = None, max_points: int = MAX_POINTS) -> Plan:
    """Load, expand and check an experiment; raise ConfigError with every problem. A sweep of
    more than ``max_points`` jobs is refused before it is expanded."""
    # A sweep allocates millions of small acyclic objects; the cyclic collector would rescan
    # them over and over (a third of the time for 10,000 points), so it pauses meanwhile.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _make_plan(experiment, sites, strict, site_dirs, max_points)
    finally:
        if enabled:
            gc.enable()


def _make_plan(experiment: Path | str, sites: list[str] | None, strict: bool,
               site_dirs: list[Path] | None, max_points: int) -> Plan:
    name = str(experiment)
    problem = path_problem(name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")  # a name gets .yaml
    if problem:
        raise ConfigError(problem, location=Location(name[:80]), hint="use a shorter path")
    loaded = load_experiment(experiment, sites, max_points=max_points)
    models = _models(loaded)
    site_table, problems = _sites(loaded, site_dirs)
    jobs: list[JobPlan] = []
    seen: set[str] = set()
    label_fields = varying_fields(loaded.points)  # what run ids show besides model, workload, nodes, site
    for point in loaded.points:
        job_problems, resolved = _resolve_point(loaded, point, site_table, models, label_fields)
        problems += job_problems
        for job in resolved:
            if job.run_id not in seen:
                seen.add(job.run_id)
                jobs.append(job)
    errors, warnings = _split(_unique(problems), strict)
    if errors:
        raise ConfigError("invalid experiment", problems=errors + warnings)
    if not jobs:
        raise ConfigError("the sweep has no points", location=loaded.doc.location(("matrix",)),
                          hint="check matrix.exclude")
    used = sorted({job.params["site"] for job in jobs})
    return Plan(loaded.experiment.name, loaded.file,
                {name: site_table[name][0].model_dump() for name in used}, jobs, warnings,
                varying_fields(loaded.points, ("model", "workload", "extra_args", "env")) + label_fields,
                {name: site_table[name][2] for name in used})


def _models(loaded: LoadedExperiment) -> dict[str, ModelArch]:
    rel = loaded.experiment.models_file
    if rel is None:
        return catalogue()
    path = Path(loaded.file).parent / rel
    return catalogue(load_models(path, display=str(path)))


def _sites(loaded: LoadedExperiment, site_dirs: list[Path] | None
           ) -> tuple[dict[str, tuple[Site, str, str]], list[Problem]]:
    """Load each named site once: key -> (Site, the name as written, the file read)."""
    table: dict[str, tuple[Site, str, str]] = {}
    problems: list[Problem] = []
    tried: set[str] = set()  # a site that failed to load is reported once, not once per point
    for point in loaded.points:
        value = point.get("site")
        if value is None or not isinstance(value.value, str) or value.value in tried:
            continue
        tried.add(value.value)
        try:
            site, doc = _load_site(value.value, site_dirs, Path(loaded.file).parent)
        except ConfigError as exc:
            problems += [p if p.location else Problem(p.message, loaded.doc.location(value.origin), p.hint)
                         for p in exc.problems]
            continue
        table[value.value] = (site, value.value, str(Path(doc.file).resolve()))  # doc.file: cwd-relative
    # the plan's `sites` map is keyed by the site's own name
    return {**table, **{entry[0].name: entry for entry in list(table.values())}}, problems


def _resolve_point(loaded: LoadedExperiment, point: dict, site_table: dict, models: dict,
                   label_fields: tuple[str, ...] = ()) -> tuple[list[Problem], list[JobPlan]]:
    def where(*names: str | int) -> Location:
        """The line that set the first of ``names`` present in the file (defaults have none);
        ``where(field, i)``: the i-th element of a list field (extra_args)."""
        if len(names) == 2 and isinstance(names[1], int):
            field, index = names
            return loaded.doc.location((point[field].origin if field in point else (field,)) + (index,))
        for name in names:
            if name in point:
                return loaded.doc.location(point[name].origin)
        return loaded.doc.location()

    spec, problems = point_spec(loaded, point)
    if spec is None or spec.site not in site_table:
        return problems, []
    site = site_table[spec.site][0]
    model = models.get(spec.model)
    if model is None:
        return [Problem(f"unknown model {spec.model!r}", where("model"),
                        f"known models: {', '.join(sorted(models))}; add yours with models_file:")], []
    problems = check_point(spec, site, model, where, custom_program=loaded.experiment.program is not None)
    problems += check_arguments(spec, site, loaded, where, model)
    dp = data_parallel(spec, site)
    if any(p.severity == "error" for p in problems) or dp is None:
        return problems, []
    mem = estimate(model, _layout(spec, dp), site.gpu.reserved_gib)
    problems += check_memory(spec, site, mem, where)
    jobs = [_job(loaded, spec, site, model, dp, mem.total_gib, repeat, label_fields)
            for repeat in range(loaded.experiment.repeats)]
    problems += check_command(spec, site, model, loaded, jobs[0].context, where)
    problems += _file_problems(loaded, spec, site, jobs[0].run_id, where)
    return problems, jobs


def _load_site(name: str, site_dirs: list[Path] | None, base_dir: Path) -> tuple[Site, Any]:
    """load_site, with a name or path the file system cannot hold refused as a ConfigError."""
    problem = path_problem(name if name.endswith((".yaml", ".yml")) or "/" in name else f"{name}.yaml")
    if problem is None:
        try:
            return load_site(name, site_dirs, base_dir)
        except OSError as exc:  # a folder of the path too long, a loop of links...
            problem = f"cannot read site {name[:80]!r}: {exc.strerror}"
    raise ConfigError(f"site {problem}", hint="use a shorter site name or path")


def _file_problems(loaded: LoadedExperiment, spec: JobSpec, site: Site, run_id: str,
                   where: Callable[..., Location]) -> list[Problem]:
    """Names the file system must take, checked before anything is written: the files named
    after the run id (lengths are the same for every repeat), and the paths the job uses."""
    problem = run_files_problem(run_id)
    if problem:
        return [Problem(f"run id {run_id[:40]}...: {problem}", where("model", "site"),
                        "use shorter model and site names")]
    paths = resolve_paths(spec, site, loaded.experiment, run_id)
    for name, path in (("checkpoint_dir", paths.checkpoint_dir or paths.output_dir), ("dataset", paths.data),
                       ("base_checkpoint", paths.base_checkpoint)):
        problem = path_problem(path, room=NAME_MAX + 1) if path else None
        if path and problem:
            where_set = where(name) if name == "dataset" else loaded.doc.location((name,))
            return [Problem(f"{name} {path[:40]}...: {problem}", where_set, "use a shorter path")]
    return []


def _layout(spec: JobSpec, dp: int) -> Layout:
    return Layout(spec.workload, spec.launcher, spec.parallel, spec.tp, spec.pp, spec.cp, dp, spec.vpp,
                  spec.sequence_parallel, spec.mbs, spec.gbs, spec.seq_len, spec.recompute)


def job_params(spec: JobSpec, site: Site, model: ModelArch, dp: int, mem_gib: float, repeat: int,
               experiment: str) -> dict[str, Any]:
    """The flat parameters of docs/contracts.md: exactly the keys of slurmkit.rundir.PARAMS."""
    adapters = site.network.adapters
    image = container_image(spec, site)
    software = container_software(image)
    storage = site.storage.get("checkpoints") or site.storage.get("datasets")
    return {
        "experiment": experiment, "workload": spec.workload, "launcher": spec.launcher,
        "model": spec.model, "site": site.name, "nodes": spec.nodes,
        "gpus_per_node": site.gpu.count_per_node, "gpus": spec.nodes * site.gpu.count_per_node,
        "tp": spec.tp, "pp": spec.pp, "cp": spec.cp, "vpp": spec.vpp, "dp": dp,
        "sequence_parallel": spec.sequence_parallel, "mbs": spec.mbs, "gbs": spec.gbs,
        "seq_len": spec.seq_len, "precision": spec.precision, "steps": spec.steps,
        "warmup_steps": spec.warmup_steps, "repeat": repeat, "dataset": spec.dataset,
        "time_limit_min": spec.time_limit_min or site.scheduler.time_limit_min,
        "model_params": model.params(), "model_layers": model.layers, "model_hidden": model.hidden,
        "model_ffn_hidden": model.ffn_hidden, "model_heads": model.heads,
        "model_kv_heads": model.kv_heads, "model_vocab": model.vocab,
        "gpu_model": site.gpu.model, "gpu_mem_gib": float(site.gpu.mem_gib),
        "gpu_peak_tflops": site.peak_tflops(spec.precision), "node_model": site.nodes.model,
        "adapters_per_node": adapters.count if adapters else 0,
        "adapter_model": adapters.model if adapters else None,
        "adapter_rate_gbps": float(adapters.rate_gbps) if adapters else None,
        "fabric": site.network.fabric, "storage_type": storage.type if storage else None,
        "cost_per_node_hour": site.cost_per_node_hour, "mem_estimate_gib": round(mem_gib, 1),
        "container_image": image, "software": software.label if software else None,
        # launcher knobs that change the job (null where the launcher has no such setting)
        "recompute": None if spec.launcher == "torchrun" else spec.recompute,
        # as the job gets them (quoted words; NAME=value sorted), null when none
        "extra_args": shlex.join(spec.extra_args) if spec.extra_args else None,
        "env": shlex.join(f"{k}={v}" for k, v in sorted(spec.env.items())) if spec.env else None,
        "parallel": spec.parallel if spec.launcher == "torchrun" else None,
        "lr": spec.lr, "checkpoint_interval": spec.checkpoint_interval,
    }


def _job(loaded: LoadedExperiment, spec: JobSpec, site: Site, model: ModelArch, dp: int,
         mem_gib: float, repeat: int, label_fields: tuple[str, ...]) -> JobPlan:
    exp = loaded.experiment
    params = job_params(spec, site, model, dp, mem_gib, repeat, exp.name)
    params_json = _compact(params)
    run_id = make_run_id(params, params_json, loaded.settings_json, label_fields)
    context = job_context(run_id, params_json, spec, site, model, exp)
    return JobPlan(run_id, script_path(run_id), params, context, params_json=params_json)


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _unique(problems: list[Problem]) -> list[Problem]:
    """The same problem from many sweep points is reported once, in first-seen order."""
    return list(dict.fromkeys(problems))


def _split(problems: list[Problem], strict: bool) -> tuple[list[Problem], list[Problem]]:
    if strict:
        problems = [Problem(p.message, p.location, p.hint, "error") for p in problems]
    errors = [p for p in problems if p.severity == "error"]
    return errors, [p for p in problems if p.severity != "error"]
