"""Launcher arguments and environment, decided here so the templates only format them.

One module per launcher builds its command line (NeMo 1.x Hydra overrides, Megatron-LM flags,
torchrun and the example trainer); ``common`` holds what they share. Network variables come
from the site's typed adapter fields: one HCA per adapter in ``NCCL_IB_HCA`` and ``UCX_NET_DEVICES``.
"""
