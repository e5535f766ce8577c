"""What the real programs accept, read from their source at the tag a container ships.

Each file ``slurmkit/data/programs/<name>.json`` describes one program's command-line surface
at one version, with where it was read (repository, tag, path):

- ``kind: hydra``: a Hydra/OmegaConf config. ``keys`` maps every flattened YAML key to its
  default (leaves, plus empty mappings as ``{}``); ``code_keys`` maps keys the program reads from
  code with a default where the YAML lacks them (``cfg.get("context_parallel_size", 1)``), each
  with the file:line that reads it. An override of a YAML key is ``key=value``; of a code key
  ``+key=value`` (Hydra refuses a plain override of an absent key in struct mode).
- ``kind: fiddle``: a NeMo 2 recipe's Config tree (``slurmkit.plan.launch.nemo2``): ``keys`` as for
  hydra (every key is set with a plain ``key=value``), plus ``types`` (annotation per key).
- ``kind: argparse``: a program's flags (``flags`` maps ``--flag`` to ``{"nargs", "action",
  "choices"}``), for Megatron-LM, Megatron-Bridge scripts and torchrun.

The files are facts (names and defaults), written by the extractors in ``scripts/programs/`` from a
``git show TAG:path`` of the real repository; tests compose every generated override onto them.
"""
from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROGRAMS_DIR = Path(__file__).resolve().parents[2] / "data" / "programs"


@dataclass(frozen=True)
class Source:
    repo: str
    tag: str
    path: str

    def __str__(self) -> str:
        return f"{self.repo}@{self.tag}:{self.path}"


@dataclass(frozen=True)
class KeySet:
    """A Hydra config's keys at one version."""

    name: str
    program: str
    version: str
    sources: tuple[Source, ...]
    keys: dict[str, Any] = field(repr=False)
    code_keys: dict[str, Any] = field(repr=False)

    def prefix(self, key: str) -> str:
        """``""`` for a YAML key, ``"+"`` for a key read from code; KeyError for neither."""
        if key in self.keys:
            return ""
        if key in self.code_keys:
            return "+"
        raise KeyError(key)

    def override(self, key: str, value: str) -> str:
        """The override that sets ``key``, with the prefix Hydra needs for it."""
        return f"{self.prefix(key)}{key}={value}"

    def nearest(self, key: str) -> str | None:
        match = difflib.get_close_matches(key, [*self.keys, *self.code_keys], n=1, cutoff=0.6)
        return match[0] if match else None


@dataclass(frozen=True)
class FlagSet:
    """A program's argparse flags at one version."""

    name: str
    program: str
    version: str
    sources: tuple[Source, ...]
    flags: dict[str, dict[str, Any]] = field(repr=False)

    def nearest(self, flag: str) -> str | None:
        match = difflib.get_close_matches(flag, list(self.flags), n=1, cutoff=0.6)
        return match[0] if match else None


def _sources(data: dict[str, Any]) -> tuple[Source, ...]:
    return tuple(Source(s["repo"], s["tag"], s["path"]) for s in data["sources"])


@functools.cache
def load_program(name: str) -> KeySet | FlagSet:
    """The shipped description ``<name>.json`` (KeyError when slurmkit has none)."""
    path = PROGRAMS_DIR / f"{name}.json"
    if not path.is_file():
        raise KeyError(name)
    data = json.loads(path.read_text(encoding="utf-8"))
    head = (name, data["program"], data["version"], _sources(data))
    if data["kind"] in ("hydra", "fiddle"):  # fiddle: a NeMo-Run recipe's Config tree (key=value)
        return KeySet(*head, keys=data["keys"], code_keys=data.get("code_keys", {}))
    return FlagSet(*head, flags=data["flags"])


def keyset(name: str) -> KeySet:
    program = load_program(name)
    assert isinstance(program, KeySet), name
    return program


def flagset(name: str) -> FlagSet:
    program = load_program(name)
    assert isinstance(program, FlagSet), name
    return program


@functools.lru_cache(maxsize=1)
def shipped_programs() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in PROGRAMS_DIR.glob("*.json")))
