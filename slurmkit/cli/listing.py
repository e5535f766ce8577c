"""The one ``--format table|json|csv`` option of every listing command, and the one printer.

A table is for people (values formatted, "-" for none); JSON (a list of objects keyed by the
column names) and CSV (a header row) are for programs and carry the raw values.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click

FORMATS = ("table", "json", "csv")
F = TypeVar("F", bound=Callable[..., Any])


def format_option(*extra: str) -> Callable[[F], F]:
    """``--format``: table, json or csv (plus ``extra`` formats a command also writes)."""
    return click.option("--format", "fmt", type=click.Choice([*FORMATS, *extra]), default="table",
                        show_default=True, help="table for people; json and csv (raw values) for programs.")


def print_rows(head: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str,
               shown: Mapping[str, Callable[[Any], str]] | None = None) -> None:
    """Print ``rows`` (raw values, one per column of ``head``) as ``fmt``; ``shown`` formats a
    column's values for the table only."""
    if fmt == "json":
        click.echo(json.dumps([dict(zip(head, row)) for row in rows], indent=1))
        return
    if fmt == "csv":
        import csv
        import io

        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([head, *rows])
        click.echo(buffer.getvalue(), nl=False)
        return
    formats = [(shown or {}).get(name, str) for name in head]
    cells = [tuple(head)] + [tuple("-" if v is None else f(v) for f, v in zip(formats, row)) for row in rows]
    widths = [max(len(c) for c in col) for col in zip(*cells)]
    click.echo("\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells))
