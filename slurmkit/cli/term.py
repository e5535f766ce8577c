"""Terminal manners for the commands: progress bars, colour and in-place redraws only where a
person watches a terminal; plain text into pipes and files, never colour with ``NO_COLOR`` set
(https://no-color.org: present and not empty) or on a ``TERM=dumb`` terminal."""
from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import click

PROGRESS_MIN = 3  # fewer items than this finish before a bar is worth drawing


def is_terminal(stream: IO[Any] | None = None) -> bool:
    stream = sys.stdout if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def colour_on(stream: IO[Any] | None = None) -> bool:
    return (is_terminal(stream) and not os.environ.get("NO_COLOR")
            and os.environ.get("TERM") != "dumb")


def paint(text: str, fg: str | None, stream: IO[Any] | None = None) -> str:
    """``text`` in colour ``fg`` when ``stream`` (stdout) shows colour, else unchanged."""
    return click.style(text, fg=fg) if fg and colour_on(stream) else text


_PREFIX_COLOURS = {"error:": "red", "warning:": "yellow"}


def paint_prefix(line: str, stream: IO[Any] | None = None) -> str:
    """An ``error:`` or ``warning:`` line with its first word coloured."""
    head, sep, rest = line.partition(" ")
    fg = _PREFIX_COLOURS.get(head)
    return paint(head, fg, stream) + sep + rest if fg else line


class _Silent:
    def update(self, n_steps: int, current_item: Any = None) -> None:
        pass


@contextmanager
def progress(length: int, label: str) -> Iterator[Any]:
    """A progress bar on stderr when it is a terminal and there is enough to wait for; else
    an object whose ``update`` does nothing (no bar text in logs and pipes)."""
    if length < PROGRESS_MIN or not is_terminal(sys.stderr):
        yield _Silent()
        return
    with click.progressbar(length=length, label=label, file=sys.stderr, show_pos=True) as bar:
        yield bar


class Screen:
    """Shows a block of text again and again (``status --watch``): on a terminal each block
    replaces the last in place (cursor up over its rows, clear to the end); elsewhere a block
    is printed as plain lines, and only when it differs from the last one."""

    def __init__(self, stream: IO[Any] | None = None) -> None:
        self.stream = sys.stdout if stream is None else stream
        self.live = is_terminal(self.stream)
        self.last: str | None = None
        self.rows = 0

    def show(self, text: str) -> None:
        if not self.live:
            if text != self.last:
                click.echo(text, file=self.stream)
            self.last = text
            return
        up = f"\x1b[{self.rows}F\x1b[J" if self.rows else ""  # to the block's first row, clear below
        click.echo(up + text, file=self.stream, color=True)
        self.rows = _rows(text, shutil.get_terminal_size().columns)
        self.last = text


def _rows(text: str, columns: int) -> int:
    """Terminal rows ``text`` takes: long lines wrap."""
    width = max(columns, 1)
    return sum(max(1, -(-len(click.unstyle(line)) // width)) for line in text.split("\n"))
