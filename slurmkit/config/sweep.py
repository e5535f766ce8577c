"""Matrix expansion with GitHub Actions semantics.

The sweep is the cartesian product of the axes (in file order), minus every combination that
matches an ``exclude`` entry (all of the entry's keys equal), plus ``include`` entries: an entry
is merged into every combination whose *original* axis values it does not contradict (values it
added earlier may be overwritten); an entry that fits no combination becomes a new one.

Every value carries its origin (a key path in the YAML file) so later checks can point at the
line that set it.

A sweep's size is known from its axis lengths before anything is expanded: `check_size` refuses
one above ``--max-points`` (or whose include/exclude matching would take too long), so a
485-byte matrix of 10^7 points or ``repeats: 1000000000`` costs microseconds, not gigabytes.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slurmkit.errors import ConfigError

if TYPE_CHECKING:
    from slurmkit.config.yamlsource import Document

Origin = tuple  # key path in the experiment document


@dataclass(frozen=True)
class Value:
    value: Any
    origin: Origin


Combination = dict[str, Value]
Axes = list[tuple[str, list[Value]]]

MAX_POINTS = 100_000  # the default of --max-points: jobs of one experiment
CHECKS_PER_POINT = 100  # include/exclude comparisons allowed per allowed point (each ~0.4 us)


def check_size(doc: Document, axes: Axes, include: list[Combination], exclude: list[Combination],
               repeats: int = 1, max_points: int = MAX_POINTS) -> None:
    """Refuse, before expanding, a sweep of more than ``max_points`` jobs: the product of the axis
    lengths plus the include entries, times ``repeats`` (an upper bound: exclude is not
    subtracted), or one whose include/exclude matching would take more than
    ``CHECKS_PER_POINT * max_points`` comparisons."""
    combos = math.prod(len(values) for _, values in axes)
    points = (combos + len(include)) * repeats
    where = doc.location(("repeats",) if repeats > max_points or not isinstance(doc.data.get("matrix"), dict)
                         else ("matrix",), key=True)
    if points > max_points:
        factors = " × ".join(f"{'sites' if key == 'site' else key} {len(values):,}" for key, values in axes)
        if include:
            factors = f"{factors} + include {len(include):,}"
        if repeats > 1:
            factors = f"({factors}) × repeats {repeats:,}" if include else f"{factors} × repeats {repeats:,}"
        raise ConfigError(f"the sweep has {points:,} points ({factors}), more than --max-points {max_points:,}",
                          location=where, hint="narrow the matrix or split the experiment (exclude entries are"
                                               " not subtracted); --max-points N raises the limit")
    checks = combos * (len(include) + len(exclude))
    if checks > CHECKS_PER_POINT * max_points:
        raise ConfigError(f"matching {combos:,} combinations with {len(include) + len(exclude):,} include/exclude"
                          f" entries takes {checks:,} comparisons, more than {CHECKS_PER_POINT} per point of"
                          f" --max-points {max_points:,}", location=where,
                          hint="use fewer include/exclude entries: an axis of their values often says the same")


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
