"""Config-side commands: generate, validate, sites, models, schema.

Only click and the standard library at module level; library code is imported inside each
command so `slurmkit --help` stays fast.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from slurmkit.cli.listing import format_option, print_rows

if TYPE_CHECKING:
    from slurmkit.config.yamlsource import Document
    from slurmkit.plan.make import JobPlan

# the default is slurmkit.config.sweep.MAX_POINTS (not imported here: click only at module level)
MAX_POINTS = click.option("--max-points", type=click.IntRange(min=1), default=100_000, show_default=True,
                          help="Refuse a sweep of more jobs than this, before expanding it.")
SITE_DIR = click.option("--site-dir", "site_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
                        help="Folder of site configs, searched first (repeatable); then site-configs/ beside "
                             "the experiment, in the working directory, and the shipped ones.")


@click.command()
@click.argument("experiment")
@click.option("--site", "sites", multiple=True, help="Site name or YAML file; replaces the experiment's sites (repeatable).")
@SITE_DIR
@click.option("--out", "out_dir", type=click.Path(path_type=Path),  # checked below: one line, not usage
              help="Run directory to write (default: runs/<experiment name>).")
@click.option("--templates", "templates_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Template folder searched before the shipped templates.")
@click.option("--dry-run", is_flag=True, help="Validate and print the table; write nothing.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@format_option()
@click.option("--force", is_flag=True, help="Write into a run directory that holds another experiment's plan.")
@MAX_POINTS
def generate(experiment: str, sites: tuple[str, ...], site_dirs: tuple[Path, ...], out_dir: Path | None,
             templates_dir: Path | None, dry_run: bool, strict: bool, fmt: str, force: bool, max_points: int) -> None:
    """Validate EXPERIMENT (a YAML file or a shipped experiment's name) and write plan.json and
    one sbatch script per job."""
    from slurmkit.atomic import check_output_path
    from slurmkit.plan.make import make_plan
    from slurmkit.plan.render import render_plan, write_plan
    from slurmkit.plan.runid import check_run_dir

    plan = make_plan(experiment, list(sites) or None, strict=strict, site_dirs=list(site_dirs) or None,
                     max_points=max_points)
    if not dry_run:  # before any output: the run directory's paths must fit the file system
        check_run_dir(str(out_dir or Path("runs") / plan.experiment), [job.run_id for job in plan.jobs])
    render_plan(plan, templates_dir)  # also in a dry run: a template error is found before submit day
    for problem in plan.warnings:
        click.echo(f"warning: {problem}", err=True)
    _print_jobs(plan.jobs, fmt, plan.axes)
    if dry_run:
        click.echo(f"dry run: {len(plan.jobs)} jobs, nothing written", err=True)
    else:
        out = check_output_path(out_dir or Path("runs") / plan.experiment, folder=True, option="--out")
        click.echo(write_plan(plan, out, force=force).describe(), err=True)
    for name, path in plan.site_files.items():  # which copy of each site config: --site-dir, checkout, shipped
        click.echo(f"site {name}: {path}", err=True)


def _print_jobs(jobs: list[JobPlan], fmt: str, axes: tuple[str, ...] = ()) -> None:
    if fmt == "json":
        click.echo(json.dumps([{"run_id": j.run_id, "script": j.script, "params": j.params} for j in jobs],
                              indent=1, sort_keys=True))
        return
    shown = ("site", "nodes", "gpus", "tp", "pp", "dp", "gbs")
    extra = tuple(a for a in axes if a not in shown)  # the sweep's other axes, one column each
    head = ("run_id", "site", "nodes", "gpus", "tp/pp/dp", "gbs", *extra, "mem_gib")
    rows = [(j.run_id, j.params["site"], j.params["nodes"], j.params["gpus"],
             f"{j.params['tp']}/{j.params['pp']}/{j.params['dp']}", j.params["gbs"],
             *(j.params.get(a) for a in extra), j.params["mem_estimate_gib"]) for j in jobs]
    print_rows(head, rows, fmt, shown={"mem_gib": "{:.1f}".format})


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--site", "sites", multiple=True, help="Site name or file replacing an experiment's sites.")
@SITE_DIR
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@MAX_POINTS
def validate(paths: tuple[str, ...], sites: tuple[str, ...], site_dirs: tuple[Path, ...], strict: bool,
             max_points: int) -> None:
    """Check experiments and site configs (files or site names); report every problem."""
    from slurmkit.config.site import load_site
    from slurmkit.config.yamlsource import load_yaml
    from slurmkit.errors import ConfigError
    from slurmkit.plan.make import make_plan

    problems = []
    for path in paths:
        try:
            if _is_site(path, load_yaml) :
                load_site(path, list(site_dirs) or None)
                click.echo(f"ok: {path} (site)")
            else:
                plan = make_plan(path, list(sites) or None, strict=strict, site_dirs=list(site_dirs) or None,
                                 max_points=max_points)
                for problem in plan.warnings:
                    click.echo(f"warning: {problem}", err=True)
                click.echo(f"ok: {path} ({len(plan.jobs)} jobs)")
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError("invalid configuration", problems=problems)


def _is_site(path: str, load_yaml: Callable[[str], Document]) -> bool:
    """A site is a site name, or a YAML mapping with a `scheduler` key; other names are
    shipped experiments."""
    from slurmkit.config.limits import path_problem
    from slurmkit.errors import ConfigError, Location

    problem = path_problem(path if path.endswith((".yaml", ".yml")) else f"{path}.yaml")
    if problem:  # before Path.exists, which raises OSError for it
        raise ConfigError(problem, location=Location(path[:80]), hint="use a shorter path or name")
    if not Path(path).exists() and not path.endswith((".yaml", ".yml")):
        from slurmkit.config.experiment import shipped_experiments

        return path not in shipped_experiments()
    data = load_yaml(path).data
    return isinstance(data, dict) and "scheduler" in data


@click.group()
def sites() -> None:
    """List or show site configs."""


@sites.command("list")
@SITE_DIR
@format_option()
def sites_list(site_dirs: tuple[Path, ...], fmt: str) -> None:
    """List every known site (user folders first, then the shipped ones)."""
    from slurmkit.config.site import list_site_names, load_site

    rows = []
    for name in list_site_names(list(site_dirs) or None):
        site, _ = load_site(name, list(site_dirs) or None)
        a = site.network.adapters
        rows.append((site.name, site.nodes.count, site.gpu.model, site.gpu.count_per_node,
                     f"{a.count}x {a.model} {a.rate_gbps:g}G" if a else None, site.network.fabric,
                     site.description))
    print_rows(("site", "nodes", "gpu", "gpus/node", "adapters", "fabric", "description"), rows, fmt)


@sites.command("show")
@click.argument("name")
@SITE_DIR
@click.option("--format", "fmt", type=click.Choice(["json", "yaml"]), default="json", show_default=True)
def sites_show(name: str, site_dirs: tuple[Path, ...], fmt: str) -> None:
    """Print a site's resolved config (defaults filled in) as JSON or YAML; the file it came
    from goes to stderr, so the output stays valid."""
    from slurmkit.config.site import find_site_file, load_site

    site, _ = load_site(name, list(site_dirs) or None)
    click.echo(f"site {site.name}: {find_site_file(name, list(site_dirs) or None)}", err=True)
    if fmt == "yaml":
        import yaml

        click.echo(yaml.safe_dump(site.model_dump(mode="json"), sort_keys=False), nl=False)
        return
    click.echo(json.dumps(site.model_dump(mode="json"), indent=2))


@click.command()
@click.option("--models-file", type=click.Path(dir_okay=False, exists=True), help="A YAML file of extra models.")
@format_option()
def models(models_file: str | None, fmt: str) -> None:
    """List the model catalogue with parameter counts computed from the architecture."""
    from slurmkit.config.catalog import catalogue, load_models

    table = catalogue(load_models(models_file) if models_file else None)
    rows = [(name, m.params(), m.layers, m.hidden, m.ffn_hidden, m.heads, m.kv_heads, m.vocab, m.max_seq_len)
            for name, m in table.items()]
    print_rows(("model", "params", "layers", "hidden", "ffn", "heads", "kv_heads", "vocab", "max_seq"), rows, fmt,
               shown={"params": _params_text})


def _params_text(count: int) -> str:
    return f"{count / 1e9:.2f}B" if count >= 1e8 else f"{count:,}"


@click.command()
@click.argument("kind", type=click.Choice(["site", "experiment", "models"]))
def schema(kind: str) -> None:
    """Print the JSON Schema of site, experiment or model files (for editors)."""
    from slurmkit.config.schema import json_schema

    if kind == "site":
        from slurmkit.config.site import Site

        body = json_schema(Site)
    elif kind == "experiment":
        from slurmkit.config.experiment import experiment_json_schema

        body = experiment_json_schema()
    else:
        from slurmkit.config.catalog import ModelFile

        body = json_schema(ModelFile)
    click.echo(json.dumps(body, indent=2, sort_keys=True))
