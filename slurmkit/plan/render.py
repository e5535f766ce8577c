"""Render sbatch scripts from Jinja2 templates and write a run directory.

One Environment per template search path, built once; each template is compiled once and reused
for every job. ``StrictUndefined`` turns a missing value into an error, and the ``q`` filter
shell-quotes every value, so hostile strings come out inert.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import gc
import os
import shlex
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from slurmkit.atomic import remove_stale_temporaries, temporary_name, write_bytes_atomic, write_text_atomic
from slurmkit.errors import ConfigError, Location, RunDirError, SlurmkitError
from slurmkit.plan.runfile import RunFile, run_files
from slurmkit.resources import shipped_dir
from slurmkit.rundir import LOGS_DIR, PLAN_FILE, SCRIPTS_DIR, read_manifest, read_plan, write_plan_file

if TYPE_CHECKING:
    from slurmkit.plan.make import Plan


@functools.lru_cache(maxsize=65536)
def _quote_str(text: str) -> str:
    quoted = shlex.quote(text)
    # shlex leaves a leading "=" bare; `export X==a` is legal bash but reads as a typo to shellcheck
    return f"'{quoted}'" if quoted.startswith("=") else quoted


def shell_quote(value: Any) -> str:
    """Quote for POSIX shells; booleans as lower-case words; None is refused (never an empty word).
    A file the run directory carries becomes its absolute path when the job runs."""
    if type(value) is RunFile:
        return f'"$SLURM_SUBMIT_DIR"/{_quote_str(str(value))}'
    if value is None:
        raise jinja2.UndefinedError("cannot shell-quote None")
    if isinstance(value, bool):
        return "true" if value else "false"
    return _quote_str(str(value))


@functools.lru_cache(maxsize=65536)
def _quote_group(group: tuple[Any, ...]) -> str:
    return " ".join(shell_quote(a) for a in group)


def shell_command(groups: list[list[Any]]) -> str:
    """A quoted command line, one group (an option and its values) per continued line.

    Most groups repeat from job to job of a sweep (``--bf16``, ``trainer.devices=8``), so each
    group's quoted text is cached.
    """
    return " \\\n    ".join([_quote_group(tuple(group)) for group in groups])


@functools.lru_cache(maxsize=8)
def _environment(user_dir: str | None) -> jinja2.Environment:
    search = ([user_dir] if user_dir else []) + [str(shipped_dir("templates"))]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search), undefined=jinja2.StrictUndefined, autoescape=False,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, auto_reload=False,
        cache_size=-1)
    env.filters["q"] = shell_quote
    env.filters["qcommand"] = shell_command
    return env


class Renderer:
    """Renders job contexts with ``<launcher>.sbatch.j2`` from the search path."""

    def __init__(self, templates_dir: Path | str | None = None) -> None:
        if templates_dir is not None and not Path(templates_dir).is_dir():
            raise ConfigError(f"templates folder not found: {templates_dir}", location=Location(str(templates_dir)))
        self.env = _environment(str(templates_dir) if templates_dir else None)
        self._templates: dict[str, jinja2.Template] = {}

    def template(self, launcher: str) -> jinja2.Template:
        name = f"{launcher}.sbatch.j2"
        if name not in self._templates:
            try:
                self._templates[name] = self.env.get_template(name)
            except jinja2.TemplateSyntaxError as exc:
                raise ConfigError(f"template syntax error: {exc.message}",
                                  location=Location(exc.filename or name, exc.lineno)) from None
            except jinja2.TemplateNotFound as exc:
                raise ConfigError(f"template not found: {exc.name}",
                                  hint="templates are named <launcher>.sbatch.j2") from None
        return self._templates[name]

    def render(self, context: dict[str, Any]) -> str:
        template = self.template(context["launcher"])
        try:
            return template.render(context)
        except jinja2.UndefinedError as exc:
            raise ConfigError(f"template {template.name}: {exc.message}",
                              location=Location(template.filename or template.name or "?"),
                              hint="a user template used a value the plan does not provide") from None
        except jinja2.TemplateSyntaxError as exc:  # a template it extends or includes
            raise ConfigError(f"template syntax error: {exc.message}",
                              location=Location(exc.filename or exc.name or "?", exc.lineno)) from None
        except jinja2.TemplateNotFound as exc:
            raise ConfigError(f"template {template.name}: cannot find {exc.name}",
                              location=Location(template.filename or template.name or "?")) from None


def render_plan(plan: Plan, templates_dir: Path | str | None = None) -> Plan:
    """Fill in every job's script (after validation, so nothing is half-done); returns the plan."""
    renderer = Renderer(templates_dir)
    for job in plan.jobs:
        job.text = renderer.render(job.context)
    return plan


@dataclass
class WriteSummary:
    out_dir: Path
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)  # scripts of runs no longer in the plan
    kept: list[Path] = field(default_factory=list)  # ... except those already submitted (manifest)

    def describe(self) -> str:
        text = f"wrote {len(self.written)} files, {len(self.unchanged)} unchanged"
        if self.removed:
            text += f", removed {_scripts(len(self.removed))} of runs no longer in the plan"
        if self.kept:
            text += f", kept {_scripts(len(self.kept))} of submitted runs no longer in the plan"
        return f"{text}, in {self.out_dir}"


def _scripts(count: int) -> str:
    return f"{count} script" + ("" if count == 1 else "s")


def write_plan(plan: Any, out_dir: Path | str, *, force: bool = False) -> WriteSummary:
    """Write the files the scripts run (``trainer/...``, ``runfile.RunFile``), then
    ``scripts/<run_id>.sbatch``, then ``plan.json``, each atomically; identical files stay.
    Then remove the scripts of runs the plan no longer has, unless the manifest shows them
    submitted (their record and log belong to the directory's history).

    A directory that holds another experiment's plan is refused unless ``force``: two experiments
    in one run directory would mix their runs in status, collect and parse.

    A fresh ``scripts/`` folder appears in one rename; into an existing one each changed script
    is renamed into place. Either way a reader never sees half a script, no per-script fsync is
    paid (10,000 fsyncs take seconds), and ``plan.json``, the run directory's index, is written
    (durably) last. After a crash, regenerating rewrites whatever did not reach the disk and
    removes the temporaries the crashed run left. Two generates into one directory take turns
    (a lock on the directory), so neither takes the other's files for leftovers.
    """
    if any(not job.text for job in plan.jobs):  # a caller's slip, not a user's: never write empty scripts
        raise ValueError("write_plan needs a rendered plan: call render_plan(plan) first")
    enabled = gc.isenabled()
    gc.disable()  # as in make_plan: a large plan makes every cyclic collection rescan it
    try:
        return _write_plan(plan, Path(out_dir), force)
    except SlurmkitError:
        raise
    except OSError as exc:
        raise SlurmkitError(f"cannot write the run directory: {exc.strerror}: {exc.filename}",
                            location=Location(str(out_dir)), hint="choose another --out") from None
    finally:
        if enabled:
            gc.enable()


def _write_plan(plan: Any, out: Path, force: bool) -> WriteSummary:
    summary = WriteSummary(out)
    out.mkdir(parents=True, exist_ok=True)  # a no-op where the check below can refuse
    with _locked(out) as locked_since:
        if not force:
            _refuse_other_experiment(plan.experiment, out)
        files = run_files(job.context["command"] for job in plan.jobs)
        _remove_leftovers(out, {(out / name).parent for name in files}, locked_since)
        (out / LOGS_DIR).mkdir(exist_ok=True)
        # before the scripts, so no script is ever on disk without the files it names
        _write_run_files(files, out, summary)
        scripts = out / SCRIPTS_DIR
        if not scripts.exists():
            summary.written += _write_scripts_staged(plan.jobs, out)
        else:
            for job in plan.jobs:
                path = out / job.script
                changed = write_text_atomic(path, job.text, mode=_EXECUTABLE, durable=False)
                (summary.written if changed else summary.unchanged).append(path)
        (summary.written if write_plan_file(out, plan.to_json()) else summary.unchanged).append(out / PLAN_FILE)
        _remove_stale_scripts(plan.jobs, out, summary)  # after plan.json: it never names a removed script
    return summary


_EXECUTABLE = 0o777  # less the umask, as a compiler's output: 0755 with umask 022, 0750 with 027


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[float | None]:
    """Hold an exclusive lock on the run directory itself (no lock file to leave behind);
    yields when it was acquired, or None where the file system has no such locks (then only
    temporaries of processes gone from this machine count as leftovers)."""
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released by the kernel if this process is killed
        except OSError:
            yield None
            return
        yield time.time()
    finally:
        os.close(fd)


def _remove_leftovers(out: Path, run_file_folders: set[Path], locked_since: float | None) -> None:
    """Remove what a killed generate left: a staging folder and plan.json's temporary in the run
    directory, temporaries of scripts and of carried files. Only generate writes these names."""
    remove_stale_temporaries(out, owned=lambda name: name in (PLAN_FILE, SCRIPTS_DIR), locked_since=locked_since)
    for folder in sorted({out / SCRIPTS_DIR} | run_file_folders):
        remove_stale_temporaries(folder, locked_since=locked_since)


def _refuse_other_experiment(experiment: str, out: Path) -> None:
    if not (out / PLAN_FILE).is_file():
        return  # a new directory (or one that cannot be made: the write says why)
    try:
        existing = read_plan(out).experiment
    except RunDirError as exc:
        raise SlurmkitError(f"cannot read the run directory's plan: {exc}", location=exc.location,
                            hint="choose another --out, or pass --force to replace it") from None
    if existing != experiment:
        raise SlurmkitError(f"the run directory holds experiment {existing!r}, not {experiment!r}",
                            location=Location(str(out / PLAN_FILE)),
                            hint="choose another --out, or pass --force to replace its plan (the manifest"
                                 " of submitted runs is kept)")


def _remove_stale_scripts(jobs: list[Any], out: Path, summary: WriteSummary) -> None:
    planned = {Path(job.script).name for job in jobs}
    stale = sorted(p for p in (out / SCRIPTS_DIR).glob("*.sbatch") if p.name not in planned)
    if not stale:
        return
    submitted = set(read_manifest(out))
    for path in stale:
        if path.stem in submitted:
            summary.kept.append(path)
        else:
            path.unlink(missing_ok=True)
            summary.removed.append(path)


def _write_run_files(files: dict[str, RunFile], out: Path, summary: WriteSummary) -> None:
    """Each carried file once (its name is its content's hash), with the mode its creator would
    get from the user's umask, as the scripts do."""
    for name in sorted(files):
        path = out / name
        changed = write_bytes_atomic(path, files[name].data, mode=files[name].mode, durable=False)
        (summary.written if changed else summary.unchanged).append(path)


def _write_scripts_staged(jobs: list[Any], out: Path) -> list[Path]:
    """A fresh ``scripts/``: write every file into a hidden staging folder, then rename the
    folder into place in one step (atomic for the whole set, and half the file-system work of
    a temporary file and a rename per script)."""
    staging = out / temporary_name(SCRIPTS_DIR)
    staging.mkdir()
    try:
        for job in jobs:
            fd = os.open(staging / Path(job.script).name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _EXECUTABLE)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(job.text)
        os.rename(staging, out / SCRIPTS_DIR)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [out / job.script for job in jobs]
