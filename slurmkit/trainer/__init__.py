"""The example trainer: a tiny GPT-style model on synthetic tokens (`python -m slurmkit.trainer`).

It is the one part of slurmkit that imports torch; the rest of the package never imports it, but
reads ``train.py``'s bytes (``slurmkit.plan.launch.torchrun``) to copy them into a run directory, where
the job runs the file itself. So ``train.py`` is self-contained: standard library and PyTorch only.
"""
