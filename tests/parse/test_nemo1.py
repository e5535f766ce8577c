"""NeMo 1.x field extraction: the quick key-prefix path must give exactly what the per-field
regexes (FIELDS, the reference) give, on any bar state."""
from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from slurmkit.results.parsers.nemo1 import NeMo1

KEYS = ["reduced_train_loss=", "consumed_samples=", "train_step_timing in s=", "global_step=",
        "val_loss=", "v_num=", "train_step_timing  in s=", "reduced_train_loss ="]
space = st.sampled_from(["", " ", "  ", "\t"])
value = st.sampled_from(["", "2.590", "nan.0", "2.56e+7", "1.23e+5", "0.615", "x=y", "95nc"])


@st.composite
def bar_state(draw) -> str:
    n, total = draw(st.integers(0, 10**6)), draw(st.integers(1, 10**6))
    parts = [f"| {n}/{total} [6:28:43<94:39:17, 1.37it/s"]
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=6, unique=True)):
        parts.append(f"{draw(space)}{key}{draw(value)}")
    return ",".join(parts)


@settings(max_examples=300, deadline=None)
@given(states=st.lists(bar_state(), min_size=1, max_size=20))
def test_quick_fields_equal_the_regexes(states, quick_equals_regexes):
    quick_equals_regexes(NeMo1(), states)


def test_quick_fields_of_a_plain_bar_state():
    state = ("| 32040/500150 [6:28:43<94:39:17, 1.37it/s, v_num=95nc, reduced_train_loss=2.590, "
             "global_step=3.2e+4, consumed_samples=2.56e+7, train_step_timing in s=0.615, val_loss=7.040")
    got = {k: v[0].as_py() for k, v in _quick_path().extract_fields(pa.array([state])).items()}
    assert got == {"step": "32040", "total": "500150", "loss": "2.590", "samples": "2.56e+7",
                   "step_time": "0.615"}


def _quick_path() -> NeMo1:
    fmt = NeMo1()
    fmt.quick_min_records = 0
    return fmt
