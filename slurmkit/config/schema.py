"""The base of the config models (pydantic v2) and the value types they share.

Models are frozen, refuse unknown keys and are strict: a YAML ``true`` is not a number, ``1`` is
not a boolean, a number is not a string. The one lax coercion is the one YAML needs: PyYAML reads
``1e-4`` and ``1e3`` as strings, so number fields accept numeric text (and integer fields integral
floats such as ``2.0``). Numbers are finite (``.inf`` and ``.nan`` are refused).

Bounds (issue 11): a value that cannot work is refused here, with its file:line:col, rather than
failing later on the cluster.
- names that become file names and run-id parts: at most ``MAX_NAME`` characters (the file
  system's limit is 255 bytes per name, and a run id joins several names);
- every other string (paths, command-line words, setup lines): at most ``MAX_TEXT`` characters
  (PATH_MAX; the kernel refuses one argument above 128 KiB, and arguments and environment
  together above ~2 MiB);
- integers at most ``MAX_INT`` (Slurm's counts and time limits are 32-bit).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, StringConstraints
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

MAX_NAME = 64
MAX_TEXT = 4096
MAX_INT = 2**31 - 1

# Values that end up in #SBATCH lines, file names or run ids: no spaces, quotes or shell syntax.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
ONE_LINE_PATTERN = r"^[^\n\r\x00]*$"  # pydantic's regex engine reads `$` as the end of the text


class Model(BaseModel):
    """Base of the config models: frozen, keyword-only, unknown keys refused, strict types."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _int_from_text(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    if isinstance(value, str) and len(value) <= 32:  # longer text: pydantic reports it unparsed
        for parse in (int, float):  # "12" exactly; "1e3" -> 1000.0, which the int check accepts
            try:
                return parse(value)
            except ValueError:
                pass
    return value


def _float_not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("float_type", "Input should be a valid number")
    return value  # numeric text is parsed by pydantic's lax float


def _version_not_bool(value: Any) -> Any:
    if isinstance(value, bool):  # Literal[1] alone takes `true` for 1
        raise PydanticCustomError("literal_error", "Input should be 1")
    return value


# A number type is Annotated[int | float, bounds, LAX, INT_TEXT | FLOAT_TEXT]: bounds come first
# (before the validator, pydantic's JSON Schema shows them as minimum/maximum).
LAX, INT_TEXT, FLOAT_TEXT = Strict(False), BeforeValidator(_int_from_text), BeforeValidator(_float_not_bool)
Positive = Annotated[int, Field(gt=0, le=MAX_INT), LAX, INT_TEXT]
NonNegative = Annotated[int, Field(ge=0, le=MAX_INT), LAX, INT_TEXT]
PositiveFloat = Annotated[float, Field(gt=0), LAX, FLOAT_TEXT]
NonNegativeFloat = Annotated[float, Field(ge=0), LAX, FLOAT_TEXT]
SchemaVersion = Annotated[Literal[1], BeforeValidator(_version_not_bool)]

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=MAX_NAME)]
Line = Annotated[str, StringConstraints(pattern=ONE_LINE_PATTERN, max_length=MAX_TEXT)]  # may be empty
Text = Annotated[str, StringConstraints(pattern=ONE_LINE_PATTERN, min_length=1, max_length=MAX_TEXT)]


class _Schema(GenerateJsonSchema):
    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        # pydantic writes a key pattern as patternProperties, which lets any other key through
        body = super().dict_schema(schema)
        if "patternProperties" in body:
            body.setdefault("additionalProperties", False)
        return body


def json_schema(model: type[Model]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a model, for editors; nested models go under ``$defs``."""
    body = model.model_json_schema(schema_generator=_Schema)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **body}
