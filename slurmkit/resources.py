"""Where the shipped templates, site configs and experiments live.

Installed wheels carry them under ``slurmkit/_data``; a source checkout keeps them at the top
level (the design card's layout). Both are searched, installed copy first.
"""
from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    """Return the folder of shipped data ``name`` (templates, site-configs, experiments)."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"shipped folder {name!r} not found under {_PACKAGE_DIR}")
