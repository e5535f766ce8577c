import subprocess
import sys

from slurmkit.report.labels import value_text, variant_label


def test_labels_read_as_people_write_them():
    assert value_text(4.0) == "4" and value_text(2.5) == "2.5" and value_text("a") == "a"
    assert variant_label("adapters_per_node", 8.0) == "8 adapters"
    assert variant_label("site", "xe9680-8cx7") == "xe9680-8cx7"
    assert variant_label("tp", 2) == "tp=2"


def test_findings_and_labels_load_no_plotting_library():
    code = ("import sys, slurmkit.report.findings, slurmkit.report.labels; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
