"""Which program versions a container image ships, so each launcher's arguments are checked
against the program at that version (``slurmkit.plan.launch.programs``).

Versions come from NVIDIA's published component tables; each entry names its source. An image
not listed here is unknown: a launcher whose arguments must be proven refuses it (``check``).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContainerSoftware:
    """Versions as the program repositories tag them (``git show TAG:path`` reads that source)."""

    image: str
    label: str  # how reports name it, e.g. "NeMo 24.05"
    source: str  # where the versions were read
    nemo: str | None = None  # NVIDIA/NeMo tag
    megatron_core: str | None = None  # NVIDIA/Megatron-LM tag
    megatron_bridge: str | None = None  # NVIDIA-NeMo/Megatron-Bridge tag
    pytorch: str | None = None  # upstream release the NGC PyTorch build is based on
    nemo_run: str | None = None  # NVIDIA-NeMo/Run tag


_COMPONENTS_24_09 = "https://docs.nvidia.com/nemo-framework/user-guide/24.09/softwarecomponentversions.html"
_COMPONENTS_BRIDGE = ("NVIDIA-NeMo/Megatron-Bridge@v0.6.0:docs/releases/software-versions.md"
                      " (NeMo Framework 26.04 table)")

CONTAINERS: dict[str, ContainerSoftware] = {c.image: c for c in (
    # NeMo Framework 24.05: NeMo 2.0.0rc0, Megatron Core 0.7.0, PyTorch 2.3.0a0, Lightning 2.2.4
    ContainerSoftware("nvcr.io/nvidia/nemo:24.05", "NeMo 24.05", _COMPONENTS_24_09,
                      nemo="v2.0.0rc0", megatron_core="core_v0.7.0", pytorch="v2.3.0"),
    # NeMo Framework 26.04: Megatron-Bridge 0.4.0, Megatron Core 0.17.0, PyTorch 2.11.0a0, no NeMo.
    # The tag with its patch suffix is the one NVIDIA's dgxc-benchmarking v26.05 Llama 3.1 recipe
    # pulls (llama3.1/metadata.yaml: 'nvcr.io#nvidia/nemo:26.04.00').
    ContainerSoftware("nvcr.io/nvidia/nemo:26.04.00", "NeMo 26.04", _COMPONENTS_BRIDGE,
                      megatron_core="core_v0.17.0", megatron_bridge="v0.4.0", pytorch="v2.11.0"),
    # NeMo Framework 25.09: NeMo 2.5.0, NeMo Run 0.6.0, Megatron Core 0.14.0, PyTorch 2.8.0a0 (the
    # same table). The patch-suffixed tag is the one dgxc-benchmarking v25.10.02 pulls
    # (llama3.1/metadata.yaml). slurmkit has no key set for its Megatron-Bridge (0.1.0rc3), so
    # the megatron-bridge launcher refuses this image and says why.
    ContainerSoftware("nvcr.io/nvidia/nemo:25.09.00", "NeMo 25.09", _COMPONENTS_BRIDGE.replace("26.04", "25.09"),
                      nemo="v2.5.0", megatron_core="core_v0.14.0", megatron_bridge="v0.1.0rc3", pytorch="v2.8.0",
                      nemo_run="v0.6.0"),
    # NGC PyTorch 25.12: "based on 2.10.0a0+b4e4ee81d3", Python 3.12 (NVIDIA's release notes)
    ContainerSoftware("nvcr.io/nvidia/pytorch:25.12-py3", "PyTorch 25.12",
                      "https://docs.nvidia.com/deeplearning/frameworks/pytorch-release-notes/rel-25-12.html",
                      pytorch="v2.10.0"),
)}


def container_software(image: str | None) -> ContainerSoftware | None:
    """The known versions of ``image`` (``None`` for no image or an image slurmkit does not know)."""
    return CONTAINERS.get(image) if image else None
