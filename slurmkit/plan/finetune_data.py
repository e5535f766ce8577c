"""Fine-tuning data the generated NeMo jobs read: Dolly and Alpaca records turned into JSONL.

``megatron_gpt_finetuning.py`` reads JSONL files, one JSON object per line, and builds each
training sequence from ``FINETUNE_PROMPT_TEMPLATE`` ("{input} {output}") filled from the keys
``FINETUNE_INPUT_KEY`` and ``FINETUNE_OUTPUT_KEY``; the loss covers the output only. The
generated overrides name the same keys and template (``slurmkit.plan.launch.nemo1``), and the jobs look
for ``<datasets mount>/<dolly|alpaca>/{training,validation}.jsonl``.

Published schemas of the inputs:
- databricks-dolly-15k (``databricks-dolly-15k.jsonl``): one object per line with ``instruction``,
  ``context`` (may be empty), ``response`` and ``category`` (dataset card on Hugging Face).
- Stanford Alpaca (``alpaca_data.json``): one JSON array of objects with ``instruction``,
  ``input`` (empty for about 60% of them) and ``output`` (tatsu-lab/stanford_alpaca README.md).

The prompt (the "input" value) is, with the context part left out when a record has none::

    Instruction: <instruction>

    Context: <context, or Alpaca's input>

    Response:

and the response (Alpaca's ``output``) is the "output" value, so the template reads
"... Response: <response>". Fields are stripped of surrounding whitespace; a record whose
response is empty is dropped and counted. The validation split is chosen by a seeded hash of
each record's position, so the same file and seed give the same bytes on any machine.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from slurmkit.atomic import write_text_atomic
from slurmkit.errors import Location, SlurmkitError
from slurmkit.plan.launch.nemo1 import FINETUNE_INPUT_KEY, FINETUNE_OUTPUT_KEY

TRAINING_FILE = "training.jsonl"
VALIDATION_FILE = "validation.jsonl"
DEFAULT_VALIDATION_FRACTION = 0.05
DEFAULT_SEED = 1234


@dataclass(frozen=True)
class Source:
    """A published data set: how its file is laid out and which fields hold what."""

    name: str
    layout: str  # "jsonl": one object per line; "array": one JSON array of objects
    instruction: str
    context: str
    response: str
    file_name: str  # the published file, for hints

    @property
    def fields(self) -> tuple[str, str, str]:
        return (self.instruction, self.context, self.response)


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("dolly", "jsonl", "instruction", "context", "response", "databricks-dolly-15k.jsonl"),
    Source("alpaca", "array", "instruction", "input", "output", "alpaca_data.json"),
)}


@dataclass(frozen=True)
class Prepared:
    """The examples of one data set, split; ``dropped_empty``: records without a response."""

    training: list[dict[str, str]]
    validation: list[dict[str, str]]
    records: int
    dropped_empty: int


def prompt_text(instruction: str, context: str) -> str:
    """The prompt the model sees before the response (format in the module docstring)."""
    parts = [f"Instruction: {instruction}"]
    if context:
        parts.append(f"Context: {context}")
    return "\n\n".join([*parts, "Response:"])


def to_example(source: Source, record: dict) -> dict[str, str] | None:
    """One JSONL object from a checked record; None when its response is empty."""
    instruction, context, response = (record[f].strip() for f in source.fields)
    if not response:
        return None
    return {FINETUNE_INPUT_KEY: prompt_text(instruction, context), FINETUNE_OUTPUT_KEY: response}


def read_records(source: Source, path: Path | str) -> list[tuple[Location, dict]]:
    """(where, record) for every record of ``path``, each checked against the published schema;
    the first problem raises SlurmkitError at its file:line:col."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise SlurmkitError(f"no such file: {path}", hint=f"download {source.file_name} first") from None
    except UnicodeDecodeError as exc:
        raise SlurmkitError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", location=Location(str(path)),
                            hint=f"give the published {source.file_name}") from None
    found = _jsonl(text, path, source) if source.layout == "jsonl" else _array(text, path, source)
    for where, record in found:
        _check(source, record, where)
    return found


def _jsonl(text: str, path: Path, source: Source) -> list[tuple[Location, dict]]:
    found = []
    for number, line in enumerate(text.split("\n"), start=1):  # JSON strings may hold U+2028
        if not line.strip():
            continue
        try:
            found.append((Location(str(path), number, 1), json.loads(line)))
        except json.JSONDecodeError as exc:
            hint = ("this looks like a JSON array: use `slurmkit prepare-data alpaca`" if line.lstrip()[:1] == "["
                    else f"{source.name} is JSON Lines: one record object per line")
            raise SlurmkitError(f"not JSON: {exc.msg}", location=Location(str(path), number, exc.colno),
                                hint=hint) from None
    return found


def _array(text: str, path: Path, source: Source) -> list[tuple[Location, dict]]:
    """The elements of one JSON array with the line each starts on (json.loads gives no lines)."""
    decoder, lines, i = json.JSONDecoder(), _Lines(path, text), _skip_space(text, 0)
    if not text.startswith("[", i):
        hint = ("this looks like JSON Lines: use `slurmkit prepare-data dolly`" if text.startswith("{", i)
                else f"{source.file_name} is one JSON array of record objects")
        raise SlurmkitError("expected a JSON array of records", location=_where(path, text, i), hint=hint)
    found: list[tuple[Location, dict]] = []
    i = _skip_space(text, i + 1)
    while not text.startswith("]", i):
        try:
            record, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            raise SlurmkitError(f"not JSON: {exc.msg}", location=_where(path, text, exc.pos),
                                hint=f"give the published {source.file_name} unchanged") from None
        found.append((lines.at(i), record))
        i = _skip_space(text, end)
        if text.startswith(",", i):
            i = _skip_space(text, i + 1)
        elif not text.startswith("]", i):
            raise SlurmkitError("expected ',' or ']' after a record", location=_where(path, text, i),
                                hint=f"give the published {source.file_name} unchanged")
    end = _skip_space(text, i + 1)
    if end < len(text):
        raise SlurmkitError("unexpected text after the array", location=_where(path, text, end),
                            hint=f"give the published {source.file_name} unchanged")
    return found


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


class _Lines:
    """Locations of increasing positions in one text, counting each newline once (a 50,000-record
    array would take minutes if each record counted from the start)."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text, self.pos, self.line, self.line_start = str(path), text, 0, 1, 0

    def at(self, pos: int) -> Location:
        newlines = self.text.count("\n", self.pos, pos)
        if newlines:
            self.line += newlines
            self.line_start = self.text.rfind("\n", self.pos, pos) + 1
        self.pos = pos
        return Location(self.path, self.line, pos - self.line_start + 1)


def _where(path: Path, text: str, pos: int) -> Location:
    line_start = text.rfind("\n", 0, pos) + 1
    return Location(str(path), text.count("\n", 0, pos) + 1, pos - line_start + 1)


def _check(source: Source, record: object, where: Location) -> None:
    schema = ", ".join(source.fields)
    if not isinstance(record, dict):
        hint = ("this looks like a JSON array: use `slurmkit prepare-data alpaca`"
                if source.layout == "jsonl" and isinstance(record, list)
                else f"{source.name} records are objects with {schema}")
        raise SlurmkitError(f"a record must be a JSON object, not {type(record).__name__}", location=where,
                            hint=hint)
    for name in source.fields:
        if name not in record:
            raise SlurmkitError(f"record has no field {name!r}", location=where,
                                hint=f"{source.name} records need {schema} (its published schema)")
        if not isinstance(record[name], str):
            raise SlurmkitError(f"field {name!r} is {type(record[name]).__name__}, not a string",
                                location=where, hint=f"{source.name} records hold text in {schema}")


def split(examples: list[dict[str, str]], fraction: float, seed: int) -> tuple[list, list]:
    """(training, validation): the validation share is the ``fraction`` of positions whose seeded
    SHA-256 is smallest (at least one, never all); both keep the input order."""
    if len(examples) < 2:
        raise SlurmkitError(f"{len(examples)} record(s) with a response: too few to split",
                            hint="give the whole data set (training and validation both need records)")
    count = min(max(1, round(len(examples) * fraction)), len(examples) - 1)
    ranked = sorted(range(len(examples)), key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).digest())
    chosen = set(ranked[:count])
    training = [e for i, e in enumerate(examples) if i not in chosen]
    return training, [e for i, e in enumerate(examples) if i in chosen]


def prepare(name: str, path: Path | str, fraction: float = DEFAULT_VALIDATION_FRACTION,
            seed: int = DEFAULT_SEED) -> Prepared:
    """Read, convert and split one data set file (nothing is written)."""
    source = SOURCES[name]
    records = read_records(source, path)
    examples = [e for e in (to_example(source, r) for _, r in records) if e is not None]
    training, validation = split(examples, fraction, seed)
    return Prepared(training, validation, len(records), len(records) - len(examples))


def jsonl_text(examples: list[dict[str, str]]) -> str:
    """One compact JSON object per line, UTF-8 text kept as is."""
    return "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples)


def write_prepared(prepared: Prepared, out_dir: Path | str) -> tuple[Path, Path]:
    """DIR/training.jsonl and DIR/validation.jsonl, each written atomically with the permissions
    the umask gives a new file (a temporary file alone would be private to the user)."""
    out_dir = Path(out_dir)
    mode = 0o666 & ~_umask()
    training, validation = out_dir / TRAINING_FILE, out_dir / VALIDATION_FILE
    for path, examples in ((training, prepared.training), (validation, prepared.validation)):
        write_text_atomic(path, jsonl_text(examples), mode=mode)
    return training, validation


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current
