"""Slurm: the one client that runs Slurm commands (slurmkit.slurm.client); submit, track, collect."""
