"""One number lexer for every log format.

Handles what real logs print: ``9e+3``, ``1.000000E-04``, ``nan``, ``nan.0`` (NeMo 1 bar),
``NaN``, ``inf``, thousands separators ``10,050``, SI suffixes ``14.2K`` / ``75.2M`` / ``1.2G``,
percents ``13.99%`` and durations ``9:07:58``, ``1-07:27:33``, ``3h 7m 39s``, ``00:00.004``.
NaN and inf are values (they are the signal of a diverged run), not parse errors. Anything else
unreadable is None (null), never zero.

Columns are converted in bulk with Arrow (fast path); only a column holding an unusual spelling
falls back to the Python lexer, value by value.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

_SI = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "B": 1e9}
_NUMBER = re.compile(
    r"^\s*(?P<sign>[-+]?)(?:(?P<nan>nan(?:\.0*)?)|(?P<inf>inf(?:inity)?)|"
    r"(?P<num>(?:\d{1,3}(?:,\d{3})+|\d*)(?:\.\d*)?(?:[eE][-+]?\d+)?))"
    r"\s*(?P<suffix>[kKMGTB%]?)\s*$", re.IGNORECASE)
# (digit counts bounded: int() refuses more than 4300 digits, and no duration has them)
_HMS = re.compile(r"^\s*(?:(?P<d>\d{1,9})-)?(?:(?P<h>\d{1,9}):)?(?P<m>\d{1,9}):(?P<s>\d{1,9}(?:\.\d*)?)\s*$")
_UNITS = re.compile(r"(\d+(?:\.\d*)?)\s*(d|h|m|s|ms)\b")
_UNIT_S = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_number(text: str | bytes | None) -> float | None:
    """A float from one log token, or None when it is not a number. ``13.99%`` -> 13.99."""
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    m = _NUMBER.match(text)
    if not m:
        return None
    sign = -1.0 if m["sign"] == "-" else 1.0
    if m["nan"]:
        return math.nan
    if m["inf"]:
        return sign * math.inf
    num = m["num"].replace(",", "")
    if num in ("", ".") or num[0] in "eE" or num.startswith(".e"):
        return None
    try:
        value = float(num)
    except ValueError:
        return None
    return sign * value * _SI.get(m["suffix"], 1.0)


def parse_duration_s(text: str | None) -> float | None:
    """Seconds from ``[D-]HH:MM:SS``, ``MM:SS(.fff)`` or ``3h 7m 39s``; None when unreadable."""
    if not text:
        return None
    m = _HMS.match(text)
    if m:
        return (int(m["d"] or 0) * 86400 + int(m["h"] or 0) * 3600 + int(m["m"]) * 60
                + float(m["s"]))
    parts = _UNITS.findall(text)
    if parts and _UNITS.sub("", text).strip() == "":
        return sum(float(v) * _UNIT_S[u] for v, u in parts)
    return None


def text_array(values: Iterable[bytes | str | None] | pa.Array) -> pa.Array:
    """Tokens as an Arrow string array; empty strings (absent optional fields) become null and
    invalid UTF-8 is replaced rather than raised."""
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = list(values)
        try:
            values = pa.array(values, pa.binary())
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # str among the tokens
            values = pa.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                               for v in values], pa.string())
    if pa.types.is_binary(values.type):
        try:
            values = values.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # invalid UTF-8
            values = pa.array([v.decode("utf-8", "replace") if v is not None else None
                               for v in values.to_pylist()], pa.string())
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)


def _direct_cast(values: Iterable[bytes | str | None] | pa.Array, dtype: pa.DataType) -> pa.Array | None:
    """The common case in one Arrow call: a string array of plain numbers. None otherwise."""
    if not isinstance(values, pa.Array) or not pa.types.is_string(values.type):
        return None
    try:
        return pc.cast(values, dtype)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def float_array(values: Iterable[bytes | str | None] | pa.Array) -> pa.Array:
    """A float64 Arrow array from raw tokens: Arrow's parser first, the lexer where it fails."""
    direct = _direct_cast(values, pa.float64())
    if direct is not None:
        return direct
    text = text_array(values)
    try:
        return pc.cast(text, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([parse_number(v) for v in text.to_pylist()], pa.float64())


def int_array(values: Iterable[bytes | str | None] | pa.Array) -> pa.Array:
    """An int64 array from tokens (``9e+3`` and ``794.0`` included); NaN/inf and magnitudes
    of INT_LIMIT or more become null."""
    direct = _direct_cast(values, pa.int64())
    if direct is not None:
        return within_int_limit(direct)
    floats = float_array(values)
    finite = pc.and_(pc.is_finite(floats), pc.less(pc.abs(floats), float(INT_LIMIT)))
    cleaned = pc.if_else(finite, floats, pa.scalar(None, pa.float64()))
    return pc.cast(pc.round(cleaned), pa.int64())


# No counter a log prints (steps, samples, tokens, times in ms) comes near this; below it, the
# +1 of a 0-based step and the sums of the metrics cannot overflow int64.
INT_LIMIT = 2**62


def within_int_limit(values: pa.Array) -> pa.Array:
    """An int64 array with every magnitude of INT_LIMIT or more made null."""
    if len(values) == 0 or values.null_count == len(values):
        return values
    big = pc.or_(pc.greater_equal(values, INT_LIMIT), pc.less_equal(values, -INT_LIMIT))
    return pc.if_else(big, pa.scalar(None, values.type), values)


def fit_int(value: int) -> int | None:
    """A Python int as the store holds it: None when its magnitude is INT_LIMIT or more."""
    return value if -INT_LIMIT < value < INT_LIMIT else None


def fit_float(value: float | int) -> float | None:
    """A number as a float column holds it: finite, else None (an int too big for a float,
    ``inf``, ``nan``)."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
