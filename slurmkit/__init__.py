"""slurmkit: benchmark LLM training on Slurm clusters, from site configs to reports."""

__version__ = "0.1.0"
