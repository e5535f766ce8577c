"""Material for ``slurmkit demo``: real public logs (``public/``, sources in public/SOURCES.md)
and the generator of clearly labelled SYNTHETIC logs (:mod:`slurmkit.samples.synthetic`)."""
from pathlib import Path

PUBLIC_LOGS_DIR = Path(__file__).resolve().parent / "public"
