"""Experiments: a workload, a launcher, a model, sites, and job fields any of which may be
swept under ``matrix:``. Loading gives the experiment's fixed settings and its sweep points."""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationError, model_validator

from slurmkit.config.schema import (
    MAX_TEXT,
    Line,
    Model,
    Name,
    NonNegative,
    Positive,
    PositiveFloat,
    SchemaVersion,
    Text,
    json_schema,
)
from slurmkit.config.site import EnvName
from slurmkit.config.sweep import MAX_POINTS, Combination, Value, check_size, expand
from slurmkit.config.yamlsource import Document, load_yaml, validation_problems, value_hint
from slurmkit.errors import ConfigError, Problem
from slurmkit.resources import shipped_dir

DATASET_NAMES = ("synthetic", "dolly", "alpaca")


class Program(Model):
    """What torchrun launches: a module (``python -m``) or a script, with its arguments."""

    module: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$", max_length=MAX_TEXT)] | None = None
    script: Text | None = None
    args: list[Line] | None = None  # None: the example trainer's arguments (docs/contracts.md)

    @model_validator(mode="after")
    def _one_target(self) -> Program:
        if (self.module is None) == (self.script is None):
            raise ValueError("give exactly one of `module` or `script`")
        return self


class JobSpec(Model):
    """One sweep point: every field here may appear at the top level or under ``matrix:``."""

    site: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]  # a name or a YAML path
    model: Name  # a catalogue name: part of run ids
    workload: Literal["pretrain", "sft", "lora", "ptuning"]
    launcher: Literal["nemo", "megatron", "torchrun", "megatron-bridge", "nemo2"]
    nodes: Positive
    steps: Positive
    warmup_steps: NonNegative = 10
    precision: Literal["bf16", "fp8"] = "bf16"
    tp: Positive = 1
    pp: Positive = 1
    cp: Positive = 1
    vpp: Positive | None = None
    sequence_parallel: bool = False
    mbs: Positive = 1
    gbs: Positive
    seq_len: Positive
    dataset: Text = "synthetic"
    recompute: Literal["none", "selective", "full"] = "selective"
    parallel: Literal["ddp", "fsdp"] = "fsdp"  # torchrun only
    checkpoint_interval: Positive | None = None  # steps; None: no checkpoints
    time_limit_min: Positive | None = None  # None: the site's default
    lr: PositiveFloat = 3e-4
    container_image: Text | None = None  # None: the site's software.container.image
    # Per point like any field (top level, a matrix axis or an include entry); run parameters too.
    extra_args: list[Line] = []  # appended verbatim (quoted) to the launcher's command line
    env: dict[EnvName, Line] = {}  # exported in the job, after the site's and network's variables


POINT_FIELDS = frozenset(JobSpec.model_fields)


class Experiment(Model):
    """The fixed (non-swept) settings of an experiment file."""

    schema_version: SchemaVersion
    name: Name
    description: Line = ""
    sites: Annotated[list[Text], Field(min_length=1)]
    repeats: Positive = 1
    models_file: Text | None = None
    checkpoint_dir: Text | None = None  # default: <checkpoints mount>/<experiment>/<run_id>
    base_checkpoint: Text | None = None  # fine-tuning; default <checkpoints mount>/<model>.nemo
    program: Program | None = None


@dataclass
class LoadedExperiment:
    experiment: Experiment
    doc: Document
    points: list[Combination]  # field -> Value(value, origin path)

    @property
    def file(self) -> str:
        return self.doc.file

    @functools.cached_property
    def settings_json(self) -> str:
        """The experiment-wide settings that shape every job's script (part of each run_id)."""
        e = self.experiment
        return json.dumps([e.checkpoint_dir, e.base_checkpoint,
                           e.program.model_dump() if e.program else None], sort_keys=True)


def shipped_experiments() -> list[str]:
    return sorted(p.stem for p in shipped_dir("experiments").glob("*.yaml"))


def find_experiment_file(name_or_file: Path | str) -> Path:
    """An experiment is a YAML path, or the name of a shipped one (``llama2-7b-pretrain``)."""
    path = Path(name_or_file)
    if path.is_file() or path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        return path  # load_yaml reports a missing file
    shipped = shipped_dir("experiments") / f"{path.name}.yaml"
    if shipped.is_file():
        return shipped
    raise ConfigError(f"no experiment file or shipped experiment named {str(name_or_file)!r}",
                      hint=f"shipped experiments: {', '.join(shipped_experiments())}")


def load_experiment(path: Path | str, sites: list[str] | None = None, display: str | None = None,
                    max_points: int = MAX_POINTS) -> LoadedExperiment:
    """Load and expand an experiment; ``sites`` (from --site) replaces the file's ``sites``;
    a sweep of more than ``max_points`` jobs is refused before it is expanded."""
    path = find_experiment_file(path)
    doc = load_yaml(path, display=display or str(path))
    data = doc.data
    if not isinstance(data, dict):
        raise ConfigError("an experiment must be a YAML mapping", location=doc.location())
    meta = {k: v for k, v in data.items() if k not in POINT_FIELDS and k != "matrix"}
    problems: list[Problem] = []
    try:
        experiment = Experiment.model_validate(meta)
    except ValidationError as exc:
        problems += validation_problems(exc, doc)
        experiment = None
    if "site" in data:
        problems.append(Problem("site: use `sites:` (a list) to name the sites", doc.location(("site",), key=True)))
    axes, include, exclude = _matrix(doc, problems)
    site_names = sites or (experiment.sites if experiment else ["?"])
    site_axis = [Value(s, ("sites",) + ((i,) if not sites else ())) for i, s in enumerate(site_names)]
    base = {k: Value(v, (k,)) for k, v in data.items() if k in POINT_FIELDS}
    check_size(doc, [("site", site_axis), *axes], include, exclude,  # before expanding: bounded work
               experiment.repeats if experiment else 1, max_points)
    combos = expand([("site", site_axis), *axes], include, exclude)
    points = [{**base, **combo} for combo in combos]
    if problems or experiment is None:
        # report the job fields' type errors too, so one run shows every problem
        for point in points:
            problems += [p for p in _point_spec(doc, point)[1] if "required field" not in p.message]
        raise ConfigError("invalid experiment", problems=list(dict.fromkeys(problems)))
    return LoadedExperiment(experiment, doc, points)


def _matrix(doc: Document, problems: list[Problem]
            ) -> tuple[list[tuple[str, list[Value]]], list[Combination], list[Combination]]:
    matrix = doc.data.get("matrix")
    if matrix is None:
        return [], [], []
    if not isinstance(matrix, dict):
        problems.append(Problem("matrix: must be a mapping of field: [values]", doc.location(("matrix",))))
        return [], [], []
    axes = []
    for key, values in matrix.items():
        path = ("matrix", key)
        if key in ("include", "exclude"):
            continue
        if key not in POINT_FIELDS or key == "site":
            hint = "sweep sites by listing them under `sites:`" if key in ("site", "sites") else \
                f"sweepable fields: {', '.join(sorted(POINT_FIELDS - {'site'}))}"
            problems.append(Problem(f"matrix.{key}: not a sweepable field", doc.location(path, key=True), hint))
        elif not isinstance(values, list) or not values:
            problems.append(Problem(f"matrix.{key}: must be a non-empty list", doc.location(path)))
        else:
            axes.append((key, [Value(v, path + (i,)) for i, v in enumerate(values)]))
    axis_keys = {"site"} | {k for k, _ in axes}
    include = _entries(doc, "include", problems, allowed=POINT_FIELDS)
    exclude = _entries(doc, "exclude", problems, allowed=axis_keys)
    return axes, include, exclude


def _entries(doc: Document, name: str, problems: list[Problem], allowed: frozenset | set
             ) -> list[Combination]:
    raw = doc.data["matrix"].get(name)
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(Problem(f"matrix.{name}: must be a list of mappings", doc.location(("matrix", name))))
        return []
    entries = []
    for i, entry in enumerate(raw):
        path = ("matrix", name, i)
        if not isinstance(entry, dict) or not entry:
            problems.append(Problem(f"matrix.{name}[{i}]: must be a non-empty mapping", doc.location(path)))
            continue
        for key in entry:
            if key not in allowed:
                what = "a matrix axis" if name == "exclude" else "a sweepable field"
                problems.append(Problem(f"matrix.{name}[{i}].{key}: not {what}",
                                        doc.location(path + (key,), key=True)))
        entries.append({k: Value(v, path + (k,)) for k, v in entry.items()})
    return entries


def point_spec(loaded: LoadedExperiment, point: Combination) -> tuple[JobSpec | None, list[Problem]]:
    """Validate one point's fields; problems point at the YAML line each value came from."""
    return _point_spec(loaded.doc, point)


def _point_spec(doc: Document, point: Combination) -> tuple[JobSpec | None, list[Problem]]:
    if "site" not in point:  # an include entry that matched nothing became its own combination
        entry = next((v.origin[:3] for v in point.values() if v.origin[:2] == ("matrix", "include")), ())
        return None, [Problem("this include entry matches no combination, so it is a new job, but it names"
                              " no site", doc.location(entry),
                              "add `site: NAME` to it, or make its values match an existing combination")]
    values: dict[str, Any] = {k: v.value for k, v in point.items()}
    try:
        return JobSpec.model_validate(values), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = err["loc"][0] if err["loc"] else None
            if key not in POINT_FIELDS:
                continue  # unknown matrix keys are reported where the matrix is read
            # inside a list or mapping field (extra_args[3], env.NAME): the element's own line
            where = doc.location(point[key].origin + tuple(err["loc"][1:])) if key in point else doc.location()
            key = ".".join(map(str, err["loc"]))
            if err["type"] == "missing":
                problems.append(Problem(f"{key}: required field is missing", where,
                                        "set it at the top level or under matrix:"))
            else:
                problems.append(Problem(f"{key}: {err['msg']}", where, value_hint(err)))
        return None, problems


def experiment_json_schema() -> dict[str, Any]:
    """JSON Schema of an experiment file: the fixed settings, the job fields, and ``matrix``."""
    schema = json_schema(Experiment)
    job = json_schema(JobSpec)
    schema.setdefault("$defs", {}).update(job.pop("$defs", {}))
    for name, prop in job["properties"].items():
        if name != "site":
            schema["properties"][name] = prop
    entry = {"type": "object", "propertyNames": {"enum": sorted(POINT_FIELDS)}}
    axes = {name: {"type": "array", "minItems": 1, "items": job["properties"][name]}
            for name in sorted(POINT_FIELDS - {"site"})}
    schema["properties"]["matrix"] = {
        "type": "object", "additionalProperties": False,
        "properties": {**axes, "include": {"type": "array", "items": entry},
                       "exclude": {"type": "array", "items": entry}},
    }
    schema["title"] = "slurmkit experiment"
    return schema
