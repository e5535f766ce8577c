"""How a field value and a compared variant read in every table, chart and finding.

Plain functions with no plotting library, so findings and tables use them without loading
matplotlib.
"""
from __future__ import annotations


def value_text(value: object) -> str:
    """A field value as text: 4.0 (a float column with nulls) reads '4'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def variant_label(field_name: str, value: object) -> str:
    """'8 adapters' for adapters_per_node=8, the value itself for a site, else 'field=value'."""
    value = value_text(value)
    if field_name == "adapters_per_node":
        return f"{value} adapters"
    if field_name in ("site", "model", "gpu_model", "node_model", "storage_type", "fabric"):
        return str(value)
    return f"{field_name}={value}"
