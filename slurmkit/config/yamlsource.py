"""Safe YAML loading that remembers where every value came from.

A `Document` holds the plain data and a map from each key path (``("gpu", "count_per_node")``)
to its line and column, so a validation error's ``loc`` can be reported as ``file:line:col``.
Only the safe loader is used; ``!!python/...`` tags are refused with a clear message. Size,
characters, aliases and nesting are bounded first (`slurmkit.config.limits`).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from slurmkit.config.limits import MAX_NUMBER_CHARS, check_characters, check_structure, read_config
from slurmkit.errors import ConfigError, Location, Problem

Path_ = tuple  # a key path: tuple of str keys and int indexes

try:  # libyaml's composer is much faster; positions are the same
    _Base = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pure-Python PyYAML
    _Base = yaml.SafeLoader


class _Loader(_Base):  # type: ignore[misc,valid-type]
    """The safe loader, refusing at their position the numbers and dates Python cannot hold."""

    def __init__(self, text: str, file: str = "") -> None:
        super().__init__(text)
        self.file = file


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    if len(node.value) > MAX_NUMBER_CHARS:  # int() refuses 4,300 digits with a ValueError
        raise ConfigError(f"a number of {len(node.value):,} characters is too long (at most {MAX_NUMBER_CHARS})",
                          location=Location(loader.file, *_pos(node)), hint="quote it if it is text")
    return yaml.SafeLoader.construct_yaml_int(loader, node)


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode) -> Any:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as exc:  # 2024-02-30: YAML's pattern matches, the calendar does not
        raise ConfigError(f"invalid date {node.value!r}: {exc}", location=Location(loader.file, *_pos(node)),
                          hint="quote it if it is text") from None


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


@dataclass
class Document:
    """Parsed YAML plus the position of every value (and of every mapping key)."""

    file: str
    data: Any
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def location(self, path: Path_ = (), *, key: bool = False) -> Location:
        """Location of ``path``, or of its nearest ancestor that exists in the file."""
        table = self.keys if key else self.values
        path = tuple(path)
        while path:
            if path in table:
                return Location(self.file, *table[path])
            if path in self.values:
                return Location(self.file, *self.values[path])
            path = path[:-1]
        return Location(self.file, *self.values.get((), (1, 1)))


def load_yaml(path: Path | str, *, display: str | None = None) -> Document:
    """Read a YAML file; raise ConfigError with the file position on any syntax problem."""
    name = display or str(path)
    return parse_yaml(read_config(path, name), name)


def parse_yaml(text: str, name: str) -> Document:
    """Parse YAML text (``name`` is used in messages)."""
    check_characters(text, name)
    loader = _Loader(text, name)
    try:
        check_structure(_Loader(text), name)  # bounds what the composer below may build
        node = loader.get_single_node()
        if node is None:
            return Document(name, None, {(): (1, 1)})
        doc = Document(name, None)
        _check_tags(node, doc)
        _walk(node, (), doc)
        doc.data = loader.construct_document(node)
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(name, mark.line + 1, mark.column + 1) if mark else Location(name)
        raise ConfigError(f"invalid YAML: {exc.problem or exc.context}", location=where,
                          hint="check indentation, colons and quoting") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {' '.join(str(exc).split())}", location=Location(name)) from None
    finally:
        loader.dispose()


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _check_tags(node: yaml.Node, doc: Document) -> None:
    """Refuse every non-standard tag before anything is constructed."""
    stack = [node]
    seen: set[int] = set()  # an alias shares its anchor's node: visit each node once
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        tag = item.tag or ""
        if tag.startswith("tag:yaml.org,2002:python/") or not (
                tag.startswith("tag:yaml.org,2002:") or tag in ("!", "?")):
            shown = tag.replace("tag:yaml.org,2002:", "!!")
            raise ConfigError(f"YAML tag {shown} is not allowed", location=Location(doc.file, *_pos(item)),
                              hint="slurmkit reads plain YAML only; remove the tag")
        if isinstance(item, yaml.MappingNode):
            for key, value in item.value:
                stack.extend((key, value))
        elif isinstance(item, yaml.SequenceNode):
            stack.extend(item.value)


def _walk(node: yaml.Node, path: Path_, doc: Document) -> None:
    """Record positions; refuse duplicate keys (PyYAML silently keeps the last one)."""
    doc.values[path] = _pos(node)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.start_mark)
            if key in seen:
                line, col = _pos(key_node)
                raise ConfigError(f"duplicate key {key!r} (first at line {seen[key][0]})",
                                  location=Location(doc.file, line, col), hint="remove one of them")
            seen[key] = _pos(key_node)
            doc.keys[path + (key,)] = _pos(key_node)
            _walk(value_node, path + (key,), doc)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, path + (index,), doc)


def validation_problems(exc: Any, doc: Document, prefix: Path_ = ()) -> list[Problem]:
    """Turn a `pydantic.ValidationError` into Problems at the YAML positions of each ``loc``."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = prefix + tuple(err["loc"])
        kind = err["type"]
        at_key = loc[-1:] == ("[key]",)  # pydantic's mark for a bad mapping key
        loc = loc[:-1] if at_key else loc
        dotted = ".".join(_shortened(str(p)) for p in loc) or "(top level)"
        if kind == "extra_forbidden":
            message, hint = f"{dotted}: unknown key", "check the spelling; `slurmkit schema` lists the keys"
            where = doc.location(loc, key=True)
        elif kind == "missing":
            message, hint = f"{dotted}: required key is missing", None
            where = doc.location(loc[:-1])
        else:
            message, hint = f"{dotted}{' (key)' if at_key else ''}: {err['msg']}", value_hint(err)
            where = doc.location(loc, key=at_key)
        problems.append(Problem(message, where, hint))
    return problems


_HINT_MAX = 60  # characters of a bad value shown in a hint (a 100 kB value stays one short line)


def value_hint(err: Mapping[str, Any]) -> str | None:
    """``got <the value>`` for a pydantic error dict, shortened; None where the message says it."""
    value = err.get("input")
    if err["type"] == "literal_error" or isinstance(value, (dict, list)) or "input" not in err:
        return None  # a literal's message lists the choices; a mapping or list is not worth showing
    size = f"{len(value)} characters" if isinstance(value, str) else f"{len(repr(value))} digits"
    return f"got {_shortened(repr(value), size)}"


def _shortened(text: str, size: str = "") -> str:
    if len(text) <= _HINT_MAX:
        return text
    return f"{text[:_HINT_MAX - 20]}... ({size or f'{len(text)} characters'})"
