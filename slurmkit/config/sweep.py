"""Matrix expansion with GitHub Actions semantics.

The sweep is the cartesian product of the axes (in file order), minus every combination that
matches an ``exclude`` entry (all of the entry's keys equal), plus ``include`` entries: an entry
is merged into every combination whose *original* axis values it does not contradict (values it
added earlier may be overwritten); an entry that fits no combination becomes a new one.

Every value carries its origin (a key path in the YAML file) so later checks can point at the
line that set it.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

Origin = tuple  # key path in the experiment document


@dataclass(frozen=True)
class Value:
    value: Any
    origin: Origin


Combination = dict[str, Value]


def expand(axes: list[tuple[str, list[Value]]], include: list[Combination] | None = None,
           exclude: list[Combination] | None = None) -> list[Combination]:
    """Expand a matrix into combinations (dicts of key -> Value), deterministic order."""
    keys = [key for key, _ in axes]
    combos: list[Combination] = []
    if keys:
        for values in itertools.product(*(vals for _, vals in axes)):
            combo = dict(zip(keys, values))
            if not any(_matches(combo, entry) for entry in exclude or []):
                combos.append(combo)
    original = set(keys)
    added: list[Combination] = []
    for entry in include or []:
        merged = False
        for combo in combos:
            if all(combo[k].value == v.value for k, v in entry.items() if k in original):
                combo.update({k: v for k, v in entry.items() if k not in original})
                merged = True
        if not merged:
            added.append(dict(entry))
    result = combos + added
    return result if result or keys else [{}]


def _matches(combo: Combination, entry: Combination) -> bool:
    return all(k in combo and combo[k].value == v.value for k, v in entry.items())
