"""The config validator itself (slurmkit.config.schema): coercions, messages, every error at once, JSON Schema."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import jsonschema
import pytest

from slurmkit.config.catalog import ModelFile
from slurmkit.config.experiment import experiment_json_schema
from slurmkit.config.schema import Ge, Gt, MaxLen, MinLen, Model, Pattern, ValidationError, check, json_schema
from slurmkit.config.site import Site
from slurmkit.config.yamlsource import load_yaml

ROOT = Path(__file__).parents[2]


class Inner(Model):
    size: Annotated[int, Ge(0)]
    label: str = "x"


class Outer(Model):
    count: Annotated[int, Gt(0)] = 1
    ratio: float = 0.5
    flag: bool = False
    name: Annotated[str, Pattern(r"^[a-z]+$"), MaxLen(4)] = "abc"
    mode: Literal["a", "b", "c"] = "a"
    version: Literal[1] = 1
    inner: Inner | None = None
    items: Annotated[list[int], MinLen(1)] = [1]
    table: dict[Annotated[str, Pattern(r"^k")], int] = {}
    anything: Any = None

    @check()
    def _ratio_below_count(self) -> None:
        if self.ratio > self.count:
            raise ValueError(f"ratio ({self.ratio}) must not exceed count ({self.count})")

    @check("items")
    def _no_sevens(cls, items: list[int]) -> None:
        if 7 in items:
            raise ValueError("7 is not allowed")


def errors_of(data: Any, model: type[Model] = Outer) -> list[tuple]:
    with pytest.raises(ValidationError) as err:
        model.validate(data)
    return [(e["loc"], e["type"], e["msg"]) for e in err.value.errors()]


def one_error(field: str, value: Any) -> tuple[str, str]:
    [(loc, kind, msg)] = errors_of({field: value})
    assert loc == (field,)
    return kind, msg


def test_defaults_and_fresh_mutable_defaults():
    a, b = Outer.validate({}), Outer.validate({})
    assert (a.count, a.ratio, a.flag, a.name, a.mode, a.inner, a.items, a.table) == (1, 0.5, False, "abc", "a", None, [1], {})
    assert a.items is not b.items and Outer().items is not Outer().items


@pytest.mark.parametrize("value, expected", [(3, 3), ("12", 12), (" 7 ", 7), ("3.0", 3), (4.0, 4), ("1e3", 1000)])
def test_int_accepts(value, expected):
    result = Outer.validate({"count": value}).count
    assert result == expected and type(result) is int


@pytest.mark.parametrize("value, kind, msg", [
    (0, "greater_than", "Input should be greater than 0"),
    (True, "int_type", "Input should be a valid integer"),  # a YAML `true` is not a number
    (None, "int_type", "Input should be a valid integer"),
    ([1], "int_type", "Input should be a valid integer"),
    ("two", "int_parsing", "Input should be a valid integer, unable to parse string as an integer"),
    (2.5, "int_from_float", "Input should be a valid integer, got a number with a fractional part"),
    (math.inf, "finite_number", "Input should be a finite number"),
])
def test_int_rejects(value, kind, msg):
    assert one_error("count", value) == (kind, msg)


@pytest.mark.parametrize("value, expected", [(0.25, 0.25), (0, 0.0), ("1e-4", 1e-4), ("2", 2.0)])
def test_float_accepts(value, expected):
    result = Outer.validate({"count": 5, "ratio": value}).ratio
    assert result == expected and type(result) is float


@pytest.mark.parametrize("value, kind, msg", [
    (False, "float_type", "Input should be a valid number"),
    ({}, "float_type", "Input should be a valid number"),
    (10 ** 400, "float_type", "Input should be a valid number"),
    ("fast", "float_parsing", "Input should be a valid number, unable to parse string as a number"),
])
def test_float_rejects(value, kind, msg):
    assert one_error("ratio", value) == (kind, msg)


def test_bool_str_literal_messages():
    assert Outer.validate({"flag": True}).flag is True
    assert one_error("flag", 1) == ("bool_type", "Input should be a valid boolean")
    assert one_error("flag", "yes") == ("bool_type", "Input should be a valid boolean")
    assert one_error("name", 5) == ("string_type", "Input should be a valid string")
    assert one_error("name", "ABC") == ("string_pattern_mismatch", "String should match pattern '^[a-z]+$'")
    assert one_error("name", "abc\n") == ("string_pattern_mismatch", "String should match pattern '^[a-z]+$'")
    assert one_error("name", "abcde") == ("string_too_long", "String should have at most 4 characters")
    assert one_error("mode", "d") == ("literal_error", "Input should be 'a', 'b' or 'c'")
    assert one_error("version", 2) == ("literal_error", "Input should be 1")
    assert one_error("version", True) == ("literal_error", "Input should be 1")
    assert Outer.validate({"anything": {"x": [1]}}).anything == {"x": [1]}


def test_list_and_dict():
    assert Outer.validate({"items": [1, "2"]}).items == [1, 2]
    assert one_error("items", "1") == ("list_type", "Input should be a valid list")
    assert one_error("items", []) == ("too_short", "List should have at least 1 item after validation, not 0")
    assert errors_of({"items": [1, "x", 2.5]}) == [
        (("items", 1), "int_parsing", "Input should be a valid integer, unable to parse string as an integer"),
        (("items", 2), "int_from_float", "Input should be a valid integer, got a number with a fractional part")]
    assert Outer.validate({"table": {"k1": "3"}}).table == {"k1": 3}
    assert one_error("table", [1]) == ("dict_type", "Input should be a valid dictionary")
    assert errors_of({"table": {"bad": 1, 5: "x"}}) == [  # key errors are located at the key
        (("table", "bad"), "string_pattern_mismatch", "String should match pattern '^k'"),
        (("table", 5), "string_type", "Input should be a valid string"),
        (("table", 5), "int_parsing", "Input should be a valid integer, unable to parse string as an integer")]


def test_nested_models_and_optional():
    outer = Outer.validate({"inner": {"size": "3"}})
    assert outer.inner == Inner(size=3, label="x") and isinstance(outer.inner, Inner)
    assert Outer.validate({"inner": None}).inner is None
    assert one_error("inner", 5) == ("model_type", "Input should be a valid dictionary or instance of Inner")
    assert errors_of({"inner": {"size": -1, "colour": "red"}}) == [
        (("inner", "size"), "greater_than_equal", "Input should be greater than or equal to 0"),
        (("inner", "colour"), "extra_forbidden", "Extra inputs are not permitted")]


def test_every_error_reported_together_in_field_order():
    with pytest.raises(ValidationError) as err:
        Outer.validate({"zzz": 1, "mode": "q", "count": 0, "inner": {}})
    errors = err.value.errors()
    assert [(e["loc"], e["type"]) for e in errors] == [
        (("count",), "greater_than"), (("mode",), "literal_error"), (("inner", "size"), "missing"),
        (("zzz",), "extra_forbidden")]
    assert errors[0]["input"] == 0 and errors[1]["input"] == "q" and errors[2]["msg"] == "Field required"
    assert errors_of([1]) == [((), "model_type", "Input should be a valid dictionary or instance of Outer")]


def test_rules_across_fields():
    assert errors_of({"count": 1, "ratio": 2}) == [
        ((), "value_error", "Value error, ratio (2.0) must not exceed count (1)")]
    assert errors_of({"items": [1, 7]}) == [(("items",), "value_error", "Value error, 7 is not allowed")]
    # a model rule runs only on valid fields, so it never sees a half-checked instance
    assert errors_of({"count": 0, "ratio": 2}) == [(("count",), "greater_than", "Input should be greater than 0")]


def test_remembered_values_keep_types_apart():
    for _ in range(2):  # the second round comes from the per-field memo
        assert Outer.validate({"count": 1.0}).count == 1 and type(Outer.validate({"count": 1}).count) is int
        assert one_error("count", True)[0] == "int_type"
        assert one_error("flag", 1)[0] == "bool_type" and Outer.validate({"flag": True}).flag is True


def test_instances_are_frozen_and_dump_to_plain_data():
    outer = Outer.validate({"inner": {"size": 2}, "table": {"k": 1}})
    with pytest.raises(AttributeError, match="Outer is frozen"):
        outer.count = 3
    assert outer == Outer.validate({"inner": {"size": 2}, "table": {"k": 1}}) != Outer()
    assert hash(Inner(size=1)) == hash(Inner.validate({"size": "1"})) and "Inner(size=1, label='x')" == repr(Inner(size=1))
    with pytest.raises(TypeError, match="missing fields"):
        Inner()
    with pytest.raises(TypeError, match="unknown fields"):
        Inner(size=1, colour="red")
    assert outer.to_dict() == {"count": 1, "ratio": 0.5, "flag": False, "name": "abc", "mode": "a", "version": 1,
                               "inner": {"size": 2, "label": "x"}, "items": [1], "table": {"k": 1},
                               "anything": None}
    assert Outer.field_names()[:3] == ("count", "ratio", "flag")
    assert Outer.validate(outer) is outer


def test_json_schema_of_a_small_model():
    schema = json_schema(Outer)
    assert schema["$defs"]["Inner"] == {
        "title": "Inner", "type": "object", "additionalProperties": False, "required": ["size"],
        "properties": {"size": {"title": "Size", "type": "integer", "minimum": 0},
                       "label": {"title": "Label", "type": "string", "default": "x"}}}
    props = schema["properties"]
    assert props["count"] == {"title": "Count", "type": "integer", "exclusiveMinimum": 0, "default": 1}
    assert props["name"] == {"title": "Name", "type": "string", "pattern": "^[a-z]+$", "maxLength": 4,
                             "default": "abc"}
    assert props["mode"]["enum"] == ["a", "b", "c"] and props["version"]["enum"] == [1]
    assert props["inner"]["anyOf"] == [{"$ref": "#/$defs/Inner"}, {"type": "null"}]
    assert props["items"] == {"title": "Items", "type": "array", "items": {"type": "integer"}, "minItems": 1,
                              "default": [1]}
    assert props["table"]["propertyNames"] == {"type": "string", "pattern": "^k"}
    assert schema["required"] == [] and schema["additionalProperties"] is False
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    assert validator.is_valid({"count": 2, "inner": {"size": 1}, "table": {"k1": 4}})
    assert not validator.is_valid({"count": 0}) and not validator.is_valid({"table": {"x": 1}})


@pytest.mark.parametrize("kind, files", [
    ("site", sorted((ROOT / "site-configs").glob("*.yaml"))),
    ("experiment", sorted((ROOT / "experiments").glob("*.yaml"))),
])
def test_shipped_configs_valid_against_emitted_schema(kind, files):
    schema = json_schema(Site) if kind == "site" else experiment_json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    assert files
    for path in files:
        errors = [e.message for e in validator.iter_errors(load_yaml(path).data)]
        assert not errors, f"{path.name}: {errors}"
    assert not validator.is_valid({**load_yaml(files[0]).data, "colour": "red"})


def test_model_file_schema_accepts_a_model_file():
    validator = jsonschema.Draft202012Validator(json_schema(ModelFile))
    good = {"schema_version": 1, "models": {"m-1": {"layers": 2, "hidden": 64, "ffn_hidden": 256, "heads": 4,
                                                    "kv_heads": 4, "vocab": 512, "max_seq_len": 256}}}
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "models": {"bad name": good["models"]["m-1"]}})
