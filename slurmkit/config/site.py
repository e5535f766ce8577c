"""Site configs: one YAML file describes one cluster variant (scheduler, nodes, GPU, network,
storage, software), validated by these models (pydantic, base and value types in
`slurmkit.config.schema`)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, ValidationError, field_validator

from slurmkit.config.schema import (
    INT_TEXT,
    LAX,
    MAX_TEXT,
    Line,
    Model,
    Name,
    NonNegative,
    NonNegativeFloat,
    Positive,
    PositiveFloat,
    SchemaVersion,
    Text,
)
from slurmkit.config.yamlsource import Document, load_yaml, validation_problems
from slurmkit.errors import ConfigError
from slurmkit.resources import shipped_dir

SCHEMA_VERSION = 1
MAX_ADAPTERS = 64  # per node; each becomes a device name in NCCL_IB_HCA (servers carry up to ~16)

# Values that end up in #SBATCH lines, srun or NCCL arguments: no spaces, quotes or shell syntax.
SBATCH_VALUE_PATTERN = r"^[A-Za-z0-9_.,:=+/@%-]+$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _word(pattern: str) -> StringConstraints:
    """A non-empty string of ``pattern`` that fits on a command line."""
    return StringConstraints(pattern=pattern, min_length=1, max_length=MAX_TEXT)


SbatchValue = Annotated[str, _word(SBATCH_VALUE_PATTERN)]
EnvName = Annotated[str, _word(ENV_NAME_PATTERN)]


class Scheduler(Model):
    partition: SbatchValue
    account: SbatchValue | None = None
    qos: SbatchValue | None = None
    time_limit_min: Positive = 60
    max_time_limit_min: Positive | None = None
    exclusive: bool = True
    gpu_request: Literal["gpus-per-node", "gres"] = "gpus-per-node"
    gres_name: SbatchValue = "gpu"
    mpi: SbatchValue | None = "pmix"
    # extra `#SBATCH --key=value` lines (value null: a bare flag) and extra srun arguments
    sbatch_args: dict[Annotated[str, _word(r"^[a-z][a-z0-9-]*$")], SbatchValue | None] = {}
    srun_args: list[SbatchValue] = []


class Nodes(Model):
    count: Positive
    model: Text
    cpus: Positive
    mem_gib: PositiveFloat


class Gpu(Model):
    model: Text
    count_per_node: Positive
    mem_gib: PositiveFloat
    peak_tflops_bf16: PositiveFloat
    peak_tflops_fp8: PositiveFloat | None = None  # None: the GPU has no FP8
    link: Text = "NVLink"
    link_gbytes_per_s: NonNegativeFloat = 0.0  # intra-node, per direction
    reserved_gib: NonNegativeFloat = 3.0  # not available to tensors: CUDA context, NCCL buffers


class NetworkAdapter(Model):
    count: Annotated[int, Field(ge=0, le=MAX_ADAPTERS), LAX, INT_TEXT]
    model: Text
    rate_gbps: PositiveFloat
    hca_names: list[Annotated[str, _word(r"^[A-Za-z0-9_.:-]+$")]] | None = None
    hca_prefix: Annotated[str, _word(r"^[A-Za-z0-9_.-]+$")] | None = None
    gpudirect_rdma: bool = True


class Network(Model):
    fabric: Literal["infiniband", "roce", "ethernet"]
    adapters: NetworkAdapter | None = None
    socket_interface: Annotated[str, _word(r"^[A-Za-z0-9_.,^=-]+$")] | None = None
    gid_index: NonNegative | None = None  # RoCE only; NCCL_IB_GID_INDEX, an index into the port's GID table


class StorageMount(Model):
    path: Text
    type: Literal["nfs", "lustre", "gpfs", "local"]
    read_gbytes_per_s: PositiveFloat | None = None
    write_gbytes_per_s: PositiveFloat | None = None


class Container(Model):
    image: Text
    mounts: list[Text] = []
    workdir: Text | None = None
    mount_home: bool = False
    writable: bool = False


class Software(Model):
    container: Container | None = None
    setup: list[Line] = []  # shell lines run before launch (module loads, venv); copied verbatim
    python: SbatchValue = "python3"
    nemo_dir: Text = "/opt/NeMo"
    megatron_dir: Text = "/opt/megatron-lm"


class Site(Model):
    schema_version: SchemaVersion
    name: Name
    description: Line = ""
    scheduler: Scheduler
    nodes: Nodes
    gpu: Gpu
    network: Network
    storage: dict[Literal["datasets", "checkpoints", "results"], StorageMount] = {}
    software: Software = Software()
    env: dict[EnvName, Line] = {}
    cost_per_node_hour: NonNegativeFloat | None = None
    cost_source: Line | None = None  # where the price comes from ("illustrative", a quote): the report says it

    @field_validator("network")
    @classmethod
    def _adapters_have_names(cls, network: Network) -> Network:
        a = network.adapters
        if a and a.hca_names is not None and len(a.hca_names) != a.count:
            raise ValueError(f"adapters.hca_names lists {len(a.hca_names)} devices but count is {a.count}")
        return network

    def peak_tflops(self, precision: str) -> float | None:
        return self.gpu.peak_tflops_fp8 if precision == "fp8" else self.gpu.peak_tflops_bf16

    def hca_devices(self) -> list[str]:
        """HCA device names, from the explicit list or prefix + index (mlx5_0, mlx5_1, ...)."""
        a = self.network.adapters
        if not a or self.network.fabric == "ethernet":
            return []
        if a.hca_names is not None:
            return list(a.hca_names)
        prefix = a.hca_prefix or "mlx5_"
        return [f"{prefix}{i}" for i in range(a.count)]


SITE_FOLDER = "site-configs"


def site_dirs(extra: list[Path] | None = None, base_dir: Path | None = None) -> list[Path]:
    """Folders searched for site names, first match wins: ``--site-dir`` folders, then a
    ``site-configs/`` folder beside the experiment (``base_dir``, its folder) or beside that
    folder (a checkout's layout: experiments/ and site-configs/ side by side), then one in the
    working directory, then the shipped ones. Users edit the copy they see, not the installed one."""
    near = [base_dir / SITE_FOLDER, base_dir.parent / SITE_FOLDER] if base_dir is not None else []
    found: dict[Path, None] = {}
    for folder in (*(extra or []), *near, Path(SITE_FOLDER), shipped_dir(SITE_FOLDER)):
        if folder.is_dir() or folder in (extra or []):
            found.setdefault(_same(folder, found), None)
    return list(found)


def _same(folder: Path, seen: dict[Path, None]) -> Path:
    """``folder``, or the entry of ``seen`` naming the same directory (a checkout's own
    site-configs/ is both the working directory's and the shipped one)."""
    resolved = folder.resolve()
    return next((s for s in seen if s.resolve() == resolved), folder)


def find_site_file(name_or_file: str, extra_dirs: list[Path] | None = None,
                   base_dir: Path | None = None) -> Path:
    """A site is a YAML path (relative ones also tried from ``base_dir``, the experiment's
    folder), or a name looked up as ``<dir>/<name>.yaml`` in :func:`site_dirs`."""
    candidate = Path(name_or_file)
    if candidate.suffix in (".yaml", ".yml") or "/" in name_or_file:
        for path in (candidate, *([base_dir / candidate] if base_dir and not candidate.is_absolute() else [])):
            if path.is_file():
                return path
        raise ConfigError(f"site file not found: {name_or_file}", hint="a relative path is read from the"
                          " working directory or the experiment's folder")
    folders = site_dirs(extra_dirs, base_dir)
    for folder in folders:
        path = folder / f"{name_or_file}.yaml"
        if path.is_file():
            return path
    known = ", ".join(sorted(list_site_names(extra_dirs, base_dir)))
    raise ConfigError(f"unknown site {name_or_file!r}",
                      hint=f"known sites: {known}; searched {', '.join(_display(f) for f in folders)}")


def list_site_names(extra_dirs: list[Path] | None = None, base_dir: Path | None = None) -> list[str]:
    names: set[str] = set()
    for folder in site_dirs(extra_dirs, base_dir):
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.yaml"))
    return sorted(names)


def parse_site(doc: Document) -> Site:
    """Validate a loaded document as a Site; every problem reported together."""
    if not isinstance(doc.data, dict):
        raise ConfigError("a site config must be a YAML mapping", location=doc.location())
    try:
        return Site.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError("invalid site config", problems=validation_problems(exc, doc)) from None


def load_site(name_or_file: str, extra_dirs: list[Path] | None = None,
              base_dir: Path | None = None) -> tuple[Site, Document]:
    path = find_site_file(name_or_file, extra_dirs, base_dir)
    doc = load_yaml(path, display=_display(path))
    return parse_site(doc), doc


def _display(path: Path) -> str:
    """Paths in messages: relative to the working directory when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
