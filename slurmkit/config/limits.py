"""Bounds on config input, checked before a file is parsed, so a hostile or broken file is
refused in milliseconds with its file:line:col instead of exhausting time or memory (issue 11).

- a file is at most ``MAX_FILE_BYTES`` (read no further than that: a 48 MB file, a pipe or a
  device costs one bounded read);
- its text is printable (YAML 1.1's set: no NUL or other control characters);
- its YAML, with every alias expanded, has at most ``MAX_VALUES`` nodes (keys, items, scalars)
  and nests at most ``MAX_DEPTH`` levels: counted on the parser's events, before anything is
  composed, so a "billion laughs" alias bomb stops at the alias that crosses the bound, and the
  composer, constructor, sweep and models only ever see a structure of bounded size;
- a path or name the file system stores fits its limits (``NAME_MAX`` bytes per component,
  ``PATH_MAX`` for the whole), so an over-long name is a message, not ``OSError``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from slurmkit.errors import ConfigError, Location

MAX_FILE_BYTES = 4 * 1024 * 1024  # hand-written configs are a few kB; the largest shipped is 6 kB
MAX_VALUES = 100_000  # nodes after alias expansion; a site has ~100, a large sweep a few thousand
MAX_DEPTH = 64  # nesting levels; configs use 5 (libyaml's own limit is 1,000, Python's stack ~1,000)
MAX_NUMBER_CHARS = 64  # an integer's text; 2**64 has 20 digits, Python refuses 4,300
NAME_MAX = 255  # bytes in one path component (Linux, and every file system Slurm clusters use)
PATH_MAX = 4096  # bytes in a path given to the kernel, the terminating NUL included

# Characters YAML 1.1 allows in a stream (PyYAML's reader refuses the rest, without a line)
_NOT_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CHAR_NAMES = {0: "NUL", 0x1b: "ESC", 0x7f: "DEL", 0xfeff: "BOM"}


def read_config(path: Path | str, name: str) -> str:
    """The text of a config file, or ConfigError: missing, too long a name, too large or not
    UTF-8 (with the file:line:col that shows it)."""
    problem = path_problem(str(path))
    if problem:
        raise ConfigError(problem, location=Location(name), hint="use a shorter path")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)  # never more: the file may be huge, a pipe or a device
            size = Path(path).stat().st_size if len(raw) > MAX_FILE_BYTES else 0
    except FileNotFoundError:
        raise ConfigError(f"file not found: {path}", location=Location(name)) from None
    except OSError as exc:  # a directory, no permission...
        raise ConfigError(f"cannot read {path}: {exc.strerror}", location=Location(name)) from None
    if len(raw) > MAX_FILE_BYTES:
        line, column = _position(raw, MAX_FILE_BYTES)
        shown = f"{size / 2**20:.1f} MiB" if size > MAX_FILE_BYTES else "larger"
        raise ConfigError(f"the file is {shown}; a config file may be at most {MAX_FILE_BYTES // 2**20} MiB"
                          " (this line passes the limit)", location=Location(name, line, column),
                          hint="configs are written by hand: sweep with matrix: instead of listing every job,"
                               " and keep large data in the files the jobs read")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the file is not UTF-8 text: byte 0x{raw[exc.start]:02x} cannot be decoded",
                          location=Location(name, *_position(raw, exc.start)),
                          hint="save the file as UTF-8") from None
    return text  # parse_yaml checks its characters


def check_characters(text: str, name: str) -> None:
    """Refuse a control character (NUL, ESC, ...) at its line and column."""
    match = _NOT_PRINTABLE.search(text)
    if match is None:
        return
    code = ord(match.group())
    label = f"U+{code:04X}" + (f" ({_CHAR_NAMES[code]})" if code in _CHAR_NAMES else "")
    hint = ("a NUL byte means a binary file, or text saved as UTF-16: save it as UTF-8" if code == 0 else
            "delete it (an editor may show it as ^ and a letter, or not at all)")
    raise ConfigError(f"control character {label} is not allowed in a config file",
                      location=Location(name, *_position(text, match.start())), hint=hint)


def check_structure(loader: Any, name: str) -> None:
    """Walk ``loader``'s parser events (a fresh loader over the text, disposed of here) and refuse
    a document whose expansion exceeds ``MAX_VALUES`` nodes, that nests deeper than
    ``MAX_DEPTH``, or whose alias names a node that contains it. Expands nothing: about a
    microsecond per event."""
    expansion = _Expansion(name)
    try:
        while loader.check_event():
            expansion.add(loader.get_event())
    finally:
        loader.dispose()


class _Expansion:
    """The node count of a document with every alias expanded, kept event by event: an alias
    adds the expanded size of its anchor's node, known once that node has ended."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self.sizes: dict[str, int] = {}  # anchor -> expanded node count of the node it names
        self.open: list[tuple[str | None, int]] = []  # (anchor, count before it) of open collections

    def add(self, event: Any) -> None:
        kind = type(event)
        if kind is yaml.ScalarEvent:
            self.count += 1
            if event.anchor:
                self.sizes[event.anchor] = 1
        elif kind in (yaml.MappingStartEvent, yaml.SequenceStartEvent):
            self.open.append((event.anchor, self.count))
            self.count += 1
            if len(self.open) > MAX_DEPTH:
                raise self._refuse(f"the document nests more than {MAX_DEPTH} levels deep", event,
                                   "configs need a few levels; flatten the structure")
        elif kind in (yaml.MappingEndEvent, yaml.SequenceEndEvent):
            anchor, before = self.open.pop()
            if anchor:
                self.sizes[anchor] = self.count - before
        elif kind is yaml.AliasEvent:
            self._alias(event)
        if self.count > MAX_VALUES:
            raise self._refuse(f"the document has more than {MAX_VALUES:,} values (keys, items and scalars)",
                               event, "configs are written by hand: sweep with matrix: instead of listing"
                                      " every job")

    def _alias(self, event: Any) -> None:
        if any(anchor == event.anchor for anchor, _ in self.open):
            raise self._refuse(f"alias *{event.anchor} names a node that contains it (a recursive structure)",
                               event, "write the values out instead of the alias")
        self.count += self.sizes.get(event.anchor, 1)  # an undefined alias: the composer says so
        if self.count > MAX_VALUES:
            raise self._refuse(f"alias *{event.anchor} makes the document expand to more than {MAX_VALUES:,}"
                               " values (an alias repeats all its anchor holds)", event,
                               "use fewer or less nested aliases; a config needs a few hundred values")

    def _refuse(self, message: str, event: Any, hint: str) -> ConfigError:
        mark = event.start_mark
        return ConfigError(message, location=Location(self.name, mark.line + 1, mark.column + 1), hint=hint)


def path_problem(path: str, room: int = 0) -> str | None:
    """Why the kernel would refuse ``path`` (ENAMETOOLONG), or None; ``room``: bytes kept free
    for the names of files a program writes under it."""
    size = len(path.encode("utf-8", "surrogateescape"))
    if size >= PATH_MAX - room:
        what = " for a folder that files are written into" if room else ""
        return f"path of {size:,} bytes is too long (the file system takes at most {PATH_MAX - 1 - room:,}{what})"
    longest = max(path.split("/"), key=lambda part: len(part.encode("utf-8", "surrogateescape")))
    size = len(longest.encode("utf-8", "surrogateescape"))
    if size > NAME_MAX:
        return (f"name {longest[:24]}... of {size:,} bytes is too long for a file name"
                f" (the file system takes at most {NAME_MAX})")
    return None


def _position(text: str | bytes, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset`` (characters of a str, bytes of undecodable bytes)."""
    newline = "\n" if isinstance(text, str) else b"\n"
    start = text.rfind(newline, 0, offset) + 1  # type: ignore[arg-type]
    return text.count(newline, 0, offset) + 1, offset - start + 1  # type: ignore[arg-type]
