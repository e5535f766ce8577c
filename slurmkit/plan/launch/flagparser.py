"""An ``argparse`` parser rebuilt from a ``FlagSet``: it accepts or refuses a command line the way
the real program does (unknown flag, value outside ``choices``, a value that is not an int or
float, a missing or extra value), without importing the program. A parsed namespace carries the
program's literal defaults; one computed in code (``default_expr``) reads as None.

Abbreviations are always refused (``allow_abbrev=False``): slurmkit writes every flag in full,
and a prefix that one version accepts may be ambiguous in the next.
"""
from __future__ import annotations

import argparse
from typing import Any, NoReturn

from slurmkit.plan.launch.programs import FlagSet

TYPES = {"int": int, "float": float, "str": str, "bool": bool}  # as the sources spell them
_VALUE_ACTIONS = ("store", "append", "extend")


class FlagError(ValueError):
    """The command line is one the real program would refuse."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise FlagError(message)


def _kwargs(option: str, spec: dict[str, Any]) -> dict[str, Any]:
    action = spec.get("acts_as") or spec.get("action") or "store"
    if action in ("help", "version"):
        action = "store_true"  # parsed as a bare switch, never run
    if action not in (*_VALUE_ACTIONS, "store_true", "store_false", "store_const", "append_const", "count"):
        raise ValueError(f"{option}: custom action {action!r} has no acts_as; re-extract with --action-as")
    kwargs: dict[str, Any] = {"action": action, "dest": spec.get("dest") or option}
    if "default" in spec:  # the program's literal default, so a parsed namespace reads like its own
        kwargs["default"] = spec["default"]
    if action in ("store_const", "append_const"):
        kwargs["const"] = spec.get("const")
    if action in _VALUE_ACTIONS:
        if spec.get("nargs") is not None:
            kwargs["nargs"] = spec["nargs"]
        if spec.get("choices") is not None:
            kwargs["choices"] = spec["choices"]
        kwargs["type"] = TYPES.get(spec.get("type") or "str", str)
    return kwargs


def build_parser(flag_set: FlagSet) -> argparse.ArgumentParser:
    parser = _Parser(prog=flag_set.program, add_help=False, allow_abbrev=False)
    for option, spec in flag_set.flags.items():
        kwargs = _kwargs(option, spec)
        # one add_argument per spelling: aliases of one dest stay independent, as in the source
        parser.add_argument(option, **kwargs)
    return parser


def parse_flags(flag_set: FlagSet, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv`` (flags only, no program path); FlagError names what the program refuses."""
    return build_parser(flag_set).parse_args(argv)
