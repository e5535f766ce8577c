"""Config models: declared once, they validate plain YAML data and give the JSON Schema for editors.

A `Model` subclass is declared like a dataclass (annotations and defaults); its instances are
frozen and built with keywords. Constraints are `typing.Annotated` metadata (``Annotated[int, Gt(0)]``);
rules across fields are methods marked with `@check`. ``Model.validate(data)`` returns an
instance or raises `ValidationError` listing every problem of the data, each a dict
``{"loc", "type", "msg", "input"}`` in pydantic's words, which users and tests already know.

In-house rather than pydantic: importing pydantic and building its models took ~100 ms of the
150 ms that `slurmkit generate` may spend starting up. Coercions follow pydantic's lax mode
where YAML needs them (PyYAML reads ``1e-4`` as a string): numeric strings to numbers, integral
floats to int, int to float; a bool is never a number.
"""
from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

if TYPE_CHECKING:  # typing has both from 3.11; mypy reads typing_extensions' stubs for 3.10
    from typing_extensions import Self, dataclass_transform
elif hasattr(typing, "dataclass_transform"):
    from typing import dataclass_transform
else:  # Python 3.10 at run time: the decorator only informs type checkers
    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda cls: cls

_CACHE_MAX = 4096  # remembered values per scalar field (sweep points repeat the same few values)
_MISS = object()


class ValidationError(ValueError):
    """Every problem found in one piece of data; ``errors()`` lists them in field order."""

    def __init__(self, title: str, errors: list[dict]) -> None:
        self.title, self._errors = title, errors
        lines = [f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in errors]
        super().__init__(f"{len(errors)} validation error(s) for {title}\n  " + "\n  ".join(lines))

    def errors(self) -> list[dict]:
        return [dict(e) for e in self._errors]


class _Invalid(Exception):
    """Raised by a compiled validator; each error's ``loc`` is relative to the value validated."""

    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors

    def under(self, key: Any) -> list[dict]:
        return [{**e, "loc": (key, *e["loc"])} for e in self.errors]


def _fail(kind: str, msg: str, value: Any) -> typing.NoReturn:
    raise _Invalid([{"loc": (), "type": kind, "msg": msg, "input": value}])


# ---- constraints: Annotated metadata; each checks a validated value and names its JSON Schema keyword
# (plain classes: a dataclass costs about a millisecond of import time each)

def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class Constraint:
    def __init__(self, bound: Any) -> None:
        self.bound = bound

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.bound!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.bound == self.bound

    def __hash__(self) -> int:
        return hash((type(self), self.bound))


class Gt(Constraint):
    def check(self, value: Any) -> tuple[str, str] | None:
        return None if value > self.bound else ("greater_than", f"Input should be greater than {self.bound}")

    def json(self, kind: str) -> dict:
        return {"exclusiveMinimum": self.bound}


class Ge(Constraint):
    def check(self, value: Any) -> tuple[str, str] | None:
        return None if value >= self.bound else (
            "greater_than_equal", f"Input should be greater than or equal to {self.bound}")

    def json(self, kind: str) -> dict:
        return {"minimum": self.bound}


class Pattern(Constraint):
    def __init__(self, bound: str) -> None:
        super().__init__(bound)
        # JSON Schema (and pydantic's Rust regex) read a final `$` as the end of the text; Python's
        # also matches before a final newline, which would let "batch\n" into an #SBATCH line.
        body = bound[:-1] + r"\Z" if bound.endswith("$") and not bound.endswith(r"\$") else bound
        self._search = re.compile(body).search

    def check(self, value: str) -> tuple[str, str] | None:
        return None if self._search(value) else ("string_pattern_mismatch",
                                                 f"String should match pattern '{self.bound}'")

    def json(self, kind: str) -> dict:
        return {"pattern": self.bound}


class MinLen(Constraint):
    def check(self, value: Any) -> tuple[str, str] | None:
        return None if len(value) >= self.bound else _length_problem(value, "at least", self.bound, "short")

    def json(self, kind: str) -> dict:
        return {"minLength" if kind == "string" else "minItems": self.bound}


class MaxLen(Constraint):
    def check(self, value: Any) -> tuple[str, str] | None:
        return None if len(value) <= self.bound else _length_problem(value, "at most", self.bound, "long")

    def json(self, kind: str) -> dict:
        return {"maxLength" if kind == "string" else "maxItems": self.bound}


def _length_problem(value: Any, how: str, bound: int, too: str) -> tuple[str, str]:
    if isinstance(value, str):
        return f"string_too_{too}", f"String should have {how} {_plural(bound, 'character')}"
    return f"too_{too}", f"List should have {how} {_plural(bound, 'item')} after validation, not {len(value)}"


def check(field: str | None = None) -> Callable:
    """Mark a rule across fields: ``@check()`` runs ``rule(self)`` on a valid instance (errors at
    the model), ``@check("name")`` runs ``rule(cls, value)`` on that field's valid value (errors
    at the field). A rule raises ValueError with the message for the user."""

    def mark(rule: Callable) -> Callable:
        rule.__dict__["__schema_check__"] = (field,)
        return rule

    return mark


# ---- validators of plain values: each returns the (coerced) value or raises _Invalid

def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        if not math.isfinite(value):
            _fail("finite_number", "Input should be a finite number", value)
        _fail("int_from_float", "Input should be a valid integer, got a number with a fractional part", value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
        try:
            number = float(value)  # "3.0", "1e3"
        except ValueError:
            number = math.nan
        if number.is_integer():
            return int(number)
        _fail("int_parsing", "Input should be a valid integer, unable to parse string as an integer", value)
    _fail("int_type", "Input should be a valid integer", value)


def _float(value: Any) -> float:
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            pass
    elif isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            _fail("float_parsing", "Input should be a valid number, unable to parse string as a number", value)
    _fail("float_type", "Input should be a valid number", value)


def _str(value: Any) -> str:
    if isinstance(value, str):
        return value
    _fail("string_type", "Input should be a valid string", value)


def _bool(value: Any) -> bool:
    if value is True or value is False:
        return value
    _fail("bool_type", "Input should be a valid boolean", value)


_PLAIN: dict[Any, Callable[[Any], Any]] = {int: _int, float: _float, str: _str, bool: _bool, Any: lambda v: v}
_JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean"}


def _literal(choices: tuple) -> Callable[[Any], Any]:
    shown = [repr(c) for c in choices]
    msg = "Input should be " + (shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}")

    def literal(value: Any) -> Any:
        for choice in choices:  # by type too: True is not 1
            if choice.__class__ is value.__class__ and choice == value:
                return choice
        _fail("literal_error", msg, value)

    return literal


def _optional(tp: Any) -> Any:
    """The X of ``X | None``; None for any other type. Other unions are not supported."""
    if typing.get_origin(tp) not in (Union, types.UnionType):
        return None
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if len(args) != 1:
        raise TypeError(f"unsupported union {tp}: only `X | None`")
    return args[0]


def _compile(tp: Any) -> Callable[[Any], Any]:
    """A validator for a type annotation."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        return _constrained(_compile(args[0]), tp.__metadata__)
    if (inner := _optional(tp)) is not None:
        check_inner = _compile(inner)
        return lambda value: None if value is None else check_inner(value)
    if origin is Literal:
        return _literal(args)
    if origin is list:
        return _list(_compile(args[0]))
    if origin is dict:
        return _dict(_compile(args[0]), _compile(args[1]))
    if isinstance(tp, type) and issubclass(tp, Model):
        return lambda value: tp._validator()(value)
    if tp in _PLAIN:
        return _PLAIN[tp]
    raise TypeError(f"unsupported field type {tp!r}")


def _constrained(base: Callable[[Any], Any], constraints: tuple) -> Callable[[Any], Any]:
    def constrained(value: Any) -> Any:
        result = base(value)
        for constraint in constraints:
            problem = constraint.check(result)
            if problem:
                kind, msg = problem
                _fail(kind, msg, value)
        return result

    return constrained


def _list(item: Callable[[Any], Any]) -> Callable[[Any], list]:
    def list_(value: Any) -> list:
        if not isinstance(value, (list, tuple)):
            _fail("list_type", "Input should be a valid list", value)
        out, errors = [], []
        for index, element in enumerate(value):
            try:
                out.append(item(element))
            except _Invalid as exc:
                errors += exc.under(index)
        if errors:
            raise _Invalid(errors)
        return out

    return list_


def _dict(key: Callable[[Any], Any], item: Callable[[Any], Any]) -> Callable[[Any], dict]:
    def dict_(value: Any) -> dict:
        if not isinstance(value, dict):
            _fail("dict_type", "Input should be a valid dictionary", value)
        out, errors = {}, []
        for k, v in value.items():
            try:  # a bad key is reported at that key, like a bad value
                k = key(k)
            except _Invalid as exc:
                errors += exc.under(k)
            try:
                out[k] = item(v)
            except _Invalid as exc:
                errors += exc.under(k)
        if errors:
            raise _Invalid(errors)
        return out

    return dict_


def _is_scalar(tp: Any) -> bool:
    """Whether a field's valid values are immutable scalars (safe to remember by input value)."""
    if typing.get_origin(tp) is Annotated:
        return _is_scalar(typing.get_args(tp)[0])
    if (inner := _optional(tp)) is not None:
        return _is_scalar(inner)
    return typing.get_origin(tp) is Literal or tp in _JSON_TYPES


# ---- models

@dataclass_transform(kw_only_default=True, frozen_default=True, eq_default=True)
class Model:
    """Base of config models: frozen, keyword-only, unknown keys refused.

    Generic methods here rather than a dataclass per model: generating each dataclass's methods
    cost ~1 ms of import time, ~15 ms for the config models.
    """

    _fields: ClassVar[dict[str, Any]] = {}  # name -> default (_REQUIRED: none), in declared order, bases first
    _compiled: ClassVar[Callable[[Any], Any] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = {name: cls.__dict__.get(name, _REQUIRED) for name in cls.__dict__.get("__annotations__", {})}
        cls._fields = {**cls._fields, **own}
        cls._compiled = None

    def __init__(self, **values: Any) -> None:
        """From Python values, as given (like a dataclass); `validate` is for user data."""
        name = type(self).__name__
        if unknown := values.keys() - self._fields.keys():
            raise TypeError(f"{name}: unknown fields {sorted(unknown)}")
        if missing := [k for k, d in self._fields.items() if d is _REQUIRED and k not in values]:
            raise TypeError(f"{name}: missing fields {missing}")
        fields = {k: values[k] if k in values else _fresh(d) for k, d in self._fields.items()}
        object.__setattr__(self, "__dict__", fields)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.__dict__ == self.__dict__

    def __hash__(self) -> int:
        return hash((type(self), *(getattr(self, k) for k in self._fields)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in self._fields)})"

    @classmethod
    def validate(cls, data: Any) -> Self:
        """An instance from plain data (YAML), or ValidationError listing every problem."""
        try:
            return cls._validator()(data)
        except _Invalid as exc:
            raise ValidationError(cls.__name__, exc.errors) from None

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(cls._fields)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what JSON can hold), defaults included."""
        return {k: _plain(getattr(self, k)) for k in self._fields}

    @classmethod
    def _validator(cls) -> Callable[[Any], Any]:
        # compiled on first use: annotations are strings until the module has defined every name
        if cls._compiled is None:
            cls._compiled = _compile_model(cls)
        return cls._compiled


_REQUIRED = object()


def _fresh(default: Any) -> Any:
    """A default for one instance: lists and dicts are copied, never shared."""
    return default.copy() if isinstance(default, (list, dict)) else default


def _plain(value: Any) -> Any:
    if isinstance(value, Model):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _rules(cls: type) -> dict[str | None, list[Callable]]:
    """The @check rules of a class and its bases, by field (None: the whole model)."""
    rules: dict[str | None, list[Callable]] = {}
    for klass in reversed(cls.__mro__):
        for member in vars(klass).values():
            mark = getattr(member, "__schema_check__", None)
            if mark:
                rules.setdefault(mark[0], []).append(member)
    return rules


def _with_rules(cls: type, validate: Callable[[Any], Any], rules: list[Callable]) -> Callable[[Any], Any]:
    def checked(value: Any) -> Any:
        result = validate(value)
        for rule in rules:
            try:
                rule(cls, result)
            except ValueError as exc:
                _fail("value_error", f"Value error, {exc}", value)
        return result

    return checked


def _compile_model(cls: type[Model]) -> Callable[[Any], Any]:
    """The validator of one model class: fields in declared order, then unknown keys."""
    hints = typing.get_type_hints(cls, include_extras=True)
    rules = _rules(cls)
    # name -> (validator, cache of input -> valid scalar, or None where values are not scalars)
    table: dict[str, tuple[Callable[[Any], Any], dict[Any, Any] | None]] = {name: (_with_rules(cls, _compile(hints[name]), rules[name]) if name in rules
                    else _compile(hints[name]), {} if _is_scalar(hints[name]) else None) for name in cls._fields}
    defaults = {k: d for k, d in cls._fields.items() if d is not _REQUIRED and not isinstance(d, (list, dict))}
    factories = [(k, d.copy) for k, d in cls._fields.items() if isinstance(d, (list, dict))]  # one copy each
    required = frozenset(k for k, d in cls._fields.items() if d is _REQUIRED)
    order = {name: i for i, name in enumerate(table)}
    model_rules = rules.get(None, [])
    kind = f"Input should be a valid dictionary or instance of {cls.__name__}"

    def model(data: Any) -> Any:
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            _fail("model_type", kind, data)
        values, errors = dict(defaults), []
        for name, value in data.items():
            entry = table.get(name)
            if entry is None:
                errors.append({"loc": (name,), "type": "extra_forbidden", "msg": "Extra inputs are not permitted",
                               "input": value})
                continue
            validate, cache = entry
            if cache is not None:
                try:
                    hit = cache.get(value, _MISS)
                except TypeError:  # unhashable: not a scalar, validation reports it
                    hit = _MISS
                # an equal input of another type (1 and True, 80 and 80.0) may validate differently
                if hit.__class__ is value.__class__:
                    values[name] = hit
                    continue
            try:
                values[name] = result = validate(value)
            except _Invalid as exc:
                errors += exc.under(name)
                continue
            if cache is not None and len(cache) < _CACHE_MAX:
                cache[value] = result
        for name, make in factories:
            if name not in data:
                values[name] = make()
        if not data.keys() >= required:
            errors += [{"loc": (name,), "type": "missing", "msg": "Field required", "input": data}
                       for name in required - data.keys()]
        if errors:
            raise _Invalid(sorted(errors, key=lambda e: order.get(e["loc"][0], len(order))))
        instance: Model = object.__new__(cls)
        object.__setattr__(instance, "__dict__", values)
        for rule in model_rules:
            try:
                rule(instance)
            except ValueError as exc:
                _fail("value_error", f"Value error, {exc}", data)
        return instance

    return model


# ---- JSON Schema (draft 2020-12) from the same declarations

def json_schema(cls: type[Model]) -> dict[str, Any]:
    """The JSON Schema of a model; nested models go under ``$defs``."""
    defs: dict[str, Any] = {}
    body = {"$schema": "https://json-schema.org/draft/2020-12/schema", **_model_schema(cls, defs)}
    if defs:
        body["$defs"] = defs
    return body


def _model_schema(cls: type[Model], defs: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls, include_extras=True)
    properties, required = {}, []
    for name, default in cls._fields.items():
        prop = {"title": name.replace("_", " ").title(), **_type_schema(hints[name], defs)}
        if default is _REQUIRED:
            required.append(name)
        else:
            prop["default"] = _plain(default)
        properties[name] = prop
    return {"title": cls.__name__, "type": "object", "properties": properties, "required": required,
            "additionalProperties": False}


def _type_schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        schema = _type_schema(args[0], defs)
        for constraint in tp.__metadata__:
            schema.update(constraint.json(schema.get("type", "")))
        return schema
    if (inner := _optional(tp)) is not None:
        return {"anyOf": [_type_schema(inner, defs), {"type": "null"}]}
    if origin is Literal:
        kinds = {_JSON_TYPES.get(type(a)) for a in args}
        return {"enum": list(args), **({"type": kinds.pop()} if len(kinds) == 1 and None not in kinds else {})}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0], defs)}
    if origin is dict:
        keys = _type_schema(args[0], defs)
        names = {"propertyNames": keys} if keys != {"type": "string"} else {}
        return {"type": "object", "additionalProperties": _type_schema(args[1], defs), **names}
    if isinstance(tp, type) and issubclass(tp, Model):
        if tp.__name__ not in defs:
            defs[tp.__name__] = {}  # reserved first: a model may refer to itself
            defs[tp.__name__] = _model_schema(tp, defs)
        return {"$ref": f"#/$defs/{tp.__name__}"}
    return {"type": _JSON_TYPES[tp]} if tp in _JSON_TYPES else {}
