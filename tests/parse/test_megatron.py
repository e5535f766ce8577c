"""Megatron field extraction: the quick key-prefix path must give exactly what the per-field
regexes (FIELDS, the reference) give, on any record."""
from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from slurmkit.results.parsers.megatron import Megatron

KEYS = ["consumed samples:", "elapsed time per iteration (ms):", "elapsed time per iteration (s):",
        "throughput per GPU (TFLOP/s/GPU):", "learning rate:", "global batch size:", "lm loss:", "loss:",
        "loss scale:", "grad norm:", "TFLOPs:", "load_balancing_loss:", "number of skipped iterations:"]
FIELD_OF = {"elapsed time per iteration (s):": "elapsed time per iteration (ms):", "loss:": "lm loss:"}

space = st.sampled_from([" ", "  ", "\n ", "\t", "", "\v", "\u00a0"])
value = st.sampled_from(["", "1.0", "1.000000E-04", "9e+3", "nan", "10,050", "14.2K", "-", "x|y"])


@st.composite
def record(draw) -> str:
    keys = draw(st.lists(st.sampled_from(KEYS), max_size=8))
    seen, parts = set(), [f"iteration {draw(st.integers(0, 10**6))}/ {draw(st.integers(0, 10**6))}"]
    for key in keys:
        field = FIELD_OF.get(key, key)
        if field in seen:  # one field once per record (the quick path takes the first canonical key)
            continue
        seen.add(field)
        spelled = key.replace(" ", draw(space) or " ") if draw(st.booleans()) else key
        parts.append(f"{draw(space)}{spelled}{draw(space)}{draw(value)}{draw(space)}")
    return " |".join(parts) + " |"


@settings(max_examples=300, deadline=None)
@given(records=st.lists(record(), min_size=1, max_size=20))
def test_quick_fields_equal_the_regexes(records, quick_equals_regexes):
    quick_equals_regexes(Megatron(), records)


def test_quick_fields_of_a_plain_record():
    rec = (" iteration      100/    1000 | consumed samples:        12800 | elapsed time per iteration (ms):"
           " 3083.6 | throughput per GPU (TFLOP/s/GPU): 414.4 | learning rate: 1.485002E-04 | global batch"
           " size:   256 | lm loss: 1.962310E+00 | loss scale: 1.0 | grad norm: 0.785 |")
    got = {k: v[0].as_py() for k, v in _quick_path().extract_fields(pa.array([rec.strip()])).items()}
    assert got == {"step": "100", "total": "1000", "samples": "12800", "unit": "ms", "elapsed": "3083.6",
                   "tflops": "414.4", "lr": "1.485002E-04", "loss": "1.962310E+00", "grad": "0.785",
                   "ds_tflops": None}


def _quick_path() -> Megatron:
    fmt = Megatron()
    fmt.quick_min_records = 0
    return fmt


# The text before a record, as Megatron prints it and as it is mangled: the bracketed fast path
# of timestamps() must give what the regex gives, whatever the text.
stamp = st.builds(lambda y, mo, d, h, mi, s, sep: f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}",
                  st.integers(1990, 2100), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25),
                  st.integers(0, 61), st.integers(0, 61), st.sampled_from([" ", "T"]))
pre_text = st.one_of(
    st.builds(lambda lead, ts, frac, tail: f"{lead}[{ts}{frac}]{tail}".encode(), st.sampled_from(["", " ", "x "]),
              stamp, st.sampled_from(["", ".5", ",123"]), st.sampled_from([" ", "", "  ", "]"])),
    st.binary(max_size=30), st.none())


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(pre_text, max_size=12))
def test_bracketed_timestamps_equal_the_regex(texts):
    from slurmkit.results.parsers.base import timestamps

    pre = pa.array(texts, pa.binary())
    assert timestamps(pre, bracketed=True).to_pylist() == timestamps(pre).to_pylist()


def test_a_key_without_its_colon_is_not_a_field(quick_equals_regexes):
    """A piece that is a key's name alone ("lm loss", no ":") holds no value: the quick path
    must not read the next piece as one."""
    records = ["iteration 1/ 2 | lm loss| grad norm: 1.0 |", "iteration 2/ 2 | consumed samples|"]
    quick_equals_regexes(Megatron(), records)
    got = _quick_path().extract_fields(pa.array(records))
    assert got["loss"].to_pylist() == [None, None] and got["grad"].to_pylist() == ["1.0", None]
