"""What every launcher shares: resolved paths, the network environment, argument grouping."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from slurmkit.config.catalog import ModelArch
from slurmkit.config.experiment import Experiment, JobSpec
from slurmkit.config.site import Site
from slurmkit.plan.launch.programs import FlagSet, KeySet, load_program
from slurmkit.plan.launch.software import container_software


@dataclass(frozen=True)
class Paths:
    """Resolved data and checkpoint locations of one job (None when not used)."""

    data: str | None  # dataset folder or Megatron data prefix; None for synthetic
    checkpoint_dir: str | None
    base_checkpoint: str | None  # fine-tuning only
    # where the program writes its own logs and settings (NeMo's exp_manager / NeMoLogger): the
    # run's folder under the checkpoint root on shared storage, not the container's working
    # directory, which a read-only container (enroot's default) cannot write. None without a
    # checkpoints mount or checkpoint_dir.
    output_dir: str | None = None


@dataclass(frozen=True)
class Job:
    """Everything a launcher module needs to build one job's command line."""

    run_id: str
    spec: JobSpec
    model: ModelArch
    site: Site
    experiment: Experiment
    paths: Paths


def container_image(spec: JobSpec, site: Site) -> str | None:
    """The image the job runs in: the point's ``container_image``, else the site's (None: none)."""
    if spec.container_image is not None:
        return spec.container_image
    return site.software.container.image if site.software.container else None


def versioned_program(spec: JobSpec, site: Site, component: str, name: Callable[[str], str]
                      ) -> KeySet | FlagSet | None:
    """The shipped description ``name(version)`` of the program at the version of ``component``
    (a ContainerSoftware field) that the job's image ships; None when the image is unknown, lacks
    the component, or slurmkit has no description at that version."""
    software = container_software(container_image(spec, site))
    version = getattr(software, component) if software else None
    if not version:
        return None
    try:
        return load_program(name(version))
    except KeyError:
        return None


def network_env(site: Site, launcher: str) -> dict[str, str]:
    """NCCL/UCX/Gloo variables derived from the site's network description."""
    net, env = site.network, {"NCCL_DEBUG": "VERSION"}
    hcas = site.hca_devices()
    if hcas:
        env["NCCL_IB_HCA"] = "=" + ",".join(hcas)
        env["UCX_NET_DEVICES"] = ",".join(f"{h}:1" for h in hcas)
        if net.fabric == "roce":
            env["NCCL_IB_GID_INDEX"] = str(3 if net.gid_index is None else net.gid_index)
        if net.adapters and not net.adapters.gpudirect_rdma:
            env["NCCL_NET_GDR_LEVEL"] = "LOC"
    else:
        env["NCCL_IB_DISABLE"] = "1"
    if net.socket_interface:
        env["NCCL_SOCKET_IFNAME"] = net.socket_interface
        env["GLOO_SOCKET_IFNAME"] = net.socket_interface
    if launcher in ("nemo", "megatron"):
        env["CUDA_DEVICE_MAX_CONNECTIONS"] = "1"  # Megatron's TP/SP communication overlap needs it
    return env


def resolve_paths(spec: JobSpec, site: Site, experiment: Experiment, run_id: str) -> Paths:
    datasets = site.storage.get("datasets")
    checkpoints = site.storage.get("checkpoints")
    if spec.dataset == "synthetic":
        data = None
    elif spec.dataset in ("dolly", "alpaca") and datasets:
        data = f"{datasets.path.rstrip('/')}/{spec.dataset}"
    else:
        data = spec.dataset
    root = experiment.checkpoint_dir or (
        f"{checkpoints.path.rstrip('/')}/{experiment.name}" if checkpoints else "checkpoints")
    run_dir = f"{root.rstrip('/')}/{run_id}"
    checkpoint_dir = run_dir if spec.checkpoint_interval else None
    output_dir = run_dir if experiment.checkpoint_dir or checkpoints else None
    base = None
    if spec.workload != "pretrain":
        base = experiment.base_checkpoint or (
            f"{checkpoints.path.rstrip('/')}/{spec.model}.nemo" if checkpoints else f"{spec.model}.nemo")
    return Paths(data, checkpoint_dir, base, output_dir)


def group_args(args: list[str]) -> list[list[str]]:
    """Split a command line into readable lines: each option with the values that follow it."""
    groups: list[list[str]] = []
    for arg in args:
        if not groups or arg.startswith("-") or groups[-1][0][:1] != "-":
            groups.append([arg])
        else:
            groups[-1].append(arg)
    return groups
