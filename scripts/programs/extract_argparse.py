#!/usr/bin/env python3
"""Write a program's argparse flag set (``kind: argparse``, see slurmkit/plan/launch/programs.py) from
its source at a tag: ``git show TAG:PATH`` of a local clone or bare mirror, read with ``ast``.
Nothing is imported or run, so the program's own dependencies (torch, ...) are not needed.

Each ``--source PATH[:ENTRY]`` names a file and, optionally, the function that builds the
parser there: then only ``add_argument`` calls inside ENTRY and the same-file functions it calls
(by name, transitively) count, as Megatron-LM's ``parse_args`` calls its ``_add_*_args`` groups.
Without ENTRY every ``add_argument`` call in the file counts.

Example (the Megatron-LM flag set slurmkit ships):

    scripts/programs/extract_argparse.py --git-dir /work/.mirror/NVIDIA+Megatron-LM/repo \\
        --repo NVIDIA/Megatron-LM --tag core_v0.7.0 --program "Megatron-LM pretrain_gpt.py" \\
        --source megatron/training/arguments.py:parse_args --source pretrain_gpt.py \\
        --out slurmkit/data/programs/megatron-pretrain_gpt-core_v0.7.0.json

Each flag records what a parser needs to accept or refuse a command line the way the program
does: ``dest``, ``nargs``, ``action``, ``choices``, ``type`` (the name as written: int, float,
str, bool, or a function's name), ``const`` and ``required`` when given, and the ``line`` of its
``add_argument`` call; and its ``default`` when the source gives a literal one (else the
expression as text, ``default_expr``). A custom Action class is recorded by name;
``--action-as NAME=BUILTIN`` records which built-in action it behaves like (``acts_as``), read
by you from its source.
``argparse.BooleanOptionalAction`` becomes two flags, ``--x`` (store_true) and ``--no-x``
(store_false). Values that are not literals are kept as source text under ``unresolved`` and
reported on stderr, so nothing is silently dropped; so is every call that hands the parser to
code the file does not define (an ``extra_args_provider``, a factory that adds flags from a
dataclass, as Megatron-LM does from core_v0.16), since flags added there are not read. The
warnings are also kept in the JSON (``warnings``).

Other helpers import this file: ``flag_set(...)`` returns the JSON-ready dict and
``dump_flag_set(data)`` its deterministic text.
"""
from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUILTIN_ACTIONS = ("store", "store_const", "store_true", "store_false", "append", "append_const",
                   "extend", "count", "help", "version")
# argparse's own constants, by the names sources use for them
ARGPARSE_CONSTANTS = {"REMAINDER": argparse.REMAINDER, "SUPPRESS": argparse.SUPPRESS,
                      "OPTIONAL": argparse.OPTIONAL, "ZERO_OR_MORE": argparse.ZERO_OR_MORE,
                      "ONE_OR_MORE": argparse.ONE_OR_MORE}


class ExtractError(Exception):
    """The source cannot be read as argparse calls (a duplicate flag, a missing entry)."""


@dataclass
class Extracted:
    """What one source file declares."""

    flags: dict[str, dict[str, Any]] = field(default_factory=dict)
    positionals: list[dict[str, Any]] = field(default_factory=list)
    allow_abbrev: bool | None = None  # None: no ArgumentParser(...) call in the scanned code
    warnings: list[str] = field(default_factory=list)


def git_show(git_dir: Path | str, tag: str, path: str) -> str:
    return subprocess.run(["git", "-C", str(git_dir), "show", f"{tag}:{path}"], check=True,
                          capture_output=True, text=True).stdout


def literal_default(node: ast.AST | None) -> Any:
    """A default as JSON: the literal when it is one, else None (computed in code)."""
    if node is None:
        return None
    try:
        value = ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return None
    return value if isinstance(value, (str, int, float, bool, type(None), list)) else None


def git_commit(git_dir: Path | str, tag: str) -> str:
    return subprocess.run(["git", "-C", str(git_dir), "rev-parse", f"{tag}^{{commit}}"], check=True,
                          capture_output=True, text=True).stdout.strip()


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _value(node: ast.AST) -> tuple[bool, Any]:
    """(True, value) for a literal, ``range(...)`` of literals or an argparse constant."""
    try:
        return True, ast.literal_eval(node)
    except ValueError:
        pass
    name = _dotted(node) or ""
    if name.removeprefix("argparse.") in ARGPARSE_CONSTANTS:
        return True, ARGPARSE_CONSTANTS[name.removeprefix("argparse.")]
    if isinstance(node, ast.Call) and _dotted(node.func) == "range" and not node.keywords:
        ok, args = _value(ast.Tuple(elts=node.args, ctx=ast.Load()))
        if ok and all(isinstance(a, int) for a in args):
            return True, list(range(*args))
    return False, None


def _name_of(node: ast.AST) -> str:
    """A type or action as written: ``int``, ``str.lower``, ``argparse.BooleanOptionalAction``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return _dotted(node) or ("lambda" if isinstance(node, ast.Lambda) else ast.unparse(node))


def _entry_functions(tree: ast.Module, entry: str) -> list[ast.AST]:
    """ENTRY and the module-level functions it calls by name, transitively."""
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if entry not in defs:
        raise ExtractError(f"no function {entry!r} at module level")
    seen, todo = [], [entry]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.append(name)
        for call in ast.walk(defs[name]):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in defs:
                todo.append(call.func.id)
    return [defs[name] for name in seen]


def _dest(options: list[str], explicit: str | None) -> str:
    if explicit:
        return explicit
    longs = [o for o in options if o.startswith("--")]
    return (longs or options)[0].lstrip("-").replace("-", "_")


def _flag(call: ast.Call, options: list[str], action_as: dict[str, str], where: str,
          warnings: list[str]) -> dict[str, Any]:
    kw = {k.arg: k.value for k in call.keywords if k.arg}
    entry: dict[str, Any] = {"dest": None, "nargs": None, "action": None, "choices": None, "type": None}
    unresolved: dict[str, str] = {}
    for name in ("nargs", "choices", "const", "required", "dest"):
        if name in kw:
            ok, value = _value(kw[name])
            if ok:
                entry[name] = value
            else:
                unresolved[name] = ast.unparse(kw[name])
    for name in ("action", "type"):
        if name in kw:
            entry[name] = _name_of(kw[name])
    entry["dest"] = _dest(options, entry["dest"])
    if "default" in kw:  # a fact worth keeping, but one that never decides acceptance: no warning
        ok, value = _value(kw["default"])
        entry["default" if ok else "default_expr"] = value if ok else ast.unparse(kw["default"])
    action = entry["action"]
    if action and action not in BUILTIN_ACTIONS and not action.endswith("BooleanOptionalAction"):
        if action in action_as:
            entry["acts_as"] = action_as[action]
        else:
            warnings.append(f"{where}: {options[0]}: custom action {action!r}; give --action-as {action}=BUILTIN")
    if isinstance(entry["choices"], (tuple, set, frozenset)):
        entry["choices"] = sorted(entry["choices"]) if isinstance(entry["choices"], (set, frozenset)) \
            else list(entry["choices"])
    if unresolved:
        entry["unresolved"] = unresolved
        warnings.append(f"{where}: {options[0]}: not a literal: {unresolved}")
    if entry.get("required") is False:
        del entry["required"]
    return entry


def extract(source: str, path: str, entry: str | None = None, action_as: dict[str, str] | None = None
            ) -> Extracted:
    """The ``add_argument`` calls of one file (of ENTRY and what it calls, when given)."""
    tree = ast.parse(source, filename=path)
    scopes = _entry_functions(tree, entry) if entry else [tree]
    local_defs = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    out = Extracted()
    calls = sorted({id(c): c for scope in scopes for c in ast.walk(scope) if isinstance(c, ast.Call)}.values(),
                   key=lambda c: (c.lineno, c.col_offset))
    for call in calls:
        func = _dotted(call.func) or ""
        if func.split(".")[-1] == "ArgumentParser":
            abbrev = next((k.value for k in call.keywords if k.arg == "allow_abbrev"), None)
            out.allow_abbrev = True if abbrev is None else _value(abbrev)[1]
        if not (isinstance(call.func, ast.Attribute) and call.func.attr == "add_argument"):
            _note_hidden_flags(call, func, local_defs, path, out.warnings)
            continue
        where = f"{path}:{call.lineno}"
        names = [_value(a) for a in call.args]
        if not names or not all(ok and isinstance(v, str) for ok, v in names):
            out.warnings.append(f"{where}: option names are not literals: {ast.unparse(call)[:120]}")
            continue
        options = [v for _, v in names]
        spec = _flag(call, options, action_as or {}, where, out.warnings)
        spec["line"] = call.lineno
        if not options[0].startswith("-"):
            out.positionals.append({"name": options[0], **spec})
            continue
        _add_options(out, options, spec, where)
    return out


_PARSER_METHODS = {"add_argument_group", "add_mutually_exclusive_group", "parse_args", "parse_known_args",
                   "set_defaults", "add_subparsers", "error", "print_help"}


def _note_hidden_flags(call: ast.Call, func: str, local_defs: set[str], path: str,
                       warnings: list[str]) -> None:
    """Warn when the parser is handed to code this file does not define (a provider passed in, a
    factory that adds flags from a dataclass): flags added there are not read here."""
    if func in local_defs or func.split(".")[-1] in _PARSER_METHODS:
        return
    if any(isinstance(a, ast.Name) and a.id in ("parser", "group") for a in [*call.args, *(k.value for k in
                                                                              call.keywords)]):
        warnings.append(f"{path}:{call.lineno}: {ast.unparse(call)[:80]} may add flags this extractor does"
                        " not read; check that code (and extract it too if it does)")


def _add_options(out: Extracted, options: list[str], spec: dict[str, Any], where: str) -> None:
    pairs = [(o, spec) for o in options]
    if (spec["action"] or "").endswith("BooleanOptionalAction"):
        # argparse adds --no-<flag> for each long option; record both as the plain actions they act as
        positive = {**spec, "action": "store_true", "declared_action": spec["action"]}
        negative = {**spec, "action": "store_false", "declared_action": spec["action"]}
        pairs = [(o, positive) for o in options]
        pairs += [(f"--no-{o[2:]}", negative) for o in options if o.startswith("--")]
    for option, value in pairs:
        if option in out.flags:
            raise ExtractError(f"{where}: {option} is declared twice (lines {out.flags[option]['line']}"
                               f" and {value['line']}); argparse would refuse it")
        out.flags[option] = value


def flag_set(git_dir: Path | str, repo: str, tag: str, sources: list[tuple[str, str | None]],
             program: str, version: str | None = None, action_as: dict[str, str] | None = None
             ) -> tuple[dict[str, Any], list[str]]:
    """The ``kind: argparse`` description of ``program`` at ``tag`` and the extractor's warnings."""
    commit = git_commit(git_dir, tag)
    flags: dict[str, dict[str, Any]] = {}
    positionals: list[dict[str, Any]] = []
    source_list, warnings, abbrev = [], [], None
    for path, entry in sources:
        found = extract(git_show(git_dir, commit, path), path, entry, action_as)
        for option, spec in found.flags.items():
            if option in flags:
                raise ExtractError(f"{option} is declared in two sources ({path} and an earlier one)")
            flags[option] = {**spec, "path": path}
        positionals += [{**p, "path": path} for p in found.positionals]
        warnings += found.warnings
        abbrev = found.allow_abbrev if found.allow_abbrev is not None else abbrev
        source_list.append({"repo": repo, "tag": tag, "path": path, "commit": commit, "entry": entry,
                            "flag_count": len(found.flags)})
    data: dict[str, Any] = {"kind": "argparse", "program": program, "version": version or tag,
                            "sources": source_list, "allow_abbrev": abbrev,
                            "flags": dict(sorted(flags.items()))}
    if positionals:
        data["positionals"] = positionals
    if warnings:  # kept with the facts: what was not read, for whoever trusts the file
        data["warnings"] = warnings
    return data, warnings


def dump_flag_set(data: dict[str, Any]) -> str:
    """Deterministic JSON, one flag per line so a version bump reads as a short diff."""
    lines = ["{"]
    for key, value in data.items():
        if key == "flags":
            body = ",\n".join(f"    {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in value.items())
            lines.append(f'  "flags": {{\n{body}\n  }},')
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, sort_keys=True)},")
    lines[-1] = lines[-1].rstrip(",")
    return "\n".join(lines) + "\n}\n"


def _source_arg(text: str) -> tuple[str, str | None]:
    path, _, entry = text.partition(":")
    return path, entry or None


def _action_arg(text: str) -> tuple[str, str]:
    name, _, builtin = text.partition("=")
    if builtin not in BUILTIN_ACTIONS:
        raise argparse.ArgumentTypeError(f"{builtin!r} is not one of {', '.join(BUILTIN_ACTIONS)}")
    return name, builtin


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("--git-dir", required=True, help="a clone or bare mirror holding the tag")
    ap.add_argument("--repo", required=True, help="owner/name, recorded in the sources")
    ap.add_argument("--tag", required=True)
    ap.add_argument("--program", required=True, help="what the flags belong to, e.g. 'torchrun'")
    ap.add_argument("--version", help="recorded version (default: the tag)")
    ap.add_argument("--source", action="append", type=_source_arg, required=True, metavar="PATH[:ENTRY]")
    ap.add_argument("--action-as", action="append", type=_action_arg, default=[], metavar="NAME=BUILTIN")
    ap.add_argument("--out", type=Path, help="write here (default: stdout)")
    args = ap.parse_args(argv)
    try:
        data, warnings = flag_set(args.git_dir, args.repo, args.tag, args.source, args.program,
                                  args.version, dict(args.action_as))
    except (ExtractError, subprocess.CalledProcessError, SyntaxError) as exc:
        print(f"error: {getattr(exc, 'stderr', None) or exc}", file=sys.stderr)
        return 1
    return emit_flag_set(data, warnings, args.out, f"from {args.repo}@{args.tag}")


def emit_flag_set(data: dict[str, Any], warnings: list[str], out: Path | None, origin: str) -> int:
    """Print the warnings, then write the flag set to ``out`` (or stdout); the extractors' ending."""
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    text = dump_flag_set(data)
    if out:
        out.write_text(text, encoding="utf-8")
        print(f"{out}: {len(data['flags'])} flags {origin}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
