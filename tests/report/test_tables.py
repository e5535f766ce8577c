"""Display tables: number formats and the four text renderings of `slurmkit compare`."""
from __future__ import annotations

import math

from slurmkit.report.tables import Table, fmt_metric, fmt_number, fmt_plain, fmt_text, to_text

T = Table("Title", ["Name", "Value"], [["a|b", "1,234"], ["c", "5"]], [False, True])


def test_formats():
    assert fmt_number(1234567) == "1,234,567" and fmt_number(None) == "–" and fmt_number(math.nan) == "–"
    assert fmt_metric("mfu", 0.4712) == "47.1%" and fmt_metric("step_time_mean_s", 5.91234) == "5.912"
    assert fmt_metric("time_to_target_s", 2955.2) == "2,955" and fmt_metric("cost_to_target_usd", 3.3) == "$3.30"
    assert fmt_plain(989.0) == "989" and fmt_plain(79.6) == "79.6" and fmt_text(4.0) == "4"


def test_text_renderings():
    assert to_text(T, "table").splitlines() == ["Title", "Name  Value", "----  -----", "a|b   1,234", "c         5"]
    assert to_text(T, "markdown").splitlines()[2:] == ["| Name | Value |", "|---|---:|", "| a\\|b | 1,234 |", "| c | 5 |"]
    assert to_text(T, "csv").splitlines() == ["Name,Value", 'a|b,"1,234"', "c,5"]
    assert '"Value": "1,234"' in to_text(T, "json")
