"""What the run directories' plan.json files add to a results folder's report: where each
site's price per node-hour comes from (the site config's ``cost_source``)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from slurmkit.rundir import PlanFile, RunDirError, read_plan, run_dir_of

NOT_RECORDED = "source not recorded"


def run_plans(runs: pd.DataFrame) -> list[PlanFile]:
    """The readable plans of the run directories the runs' logs lie in."""
    folders = {str(Path(f).parent): f for f in runs.get("source_file", pd.Series(dtype=object)).dropna()}
    plans = []
    for run_dir in sorted({d for f in folders.values() if (d := run_dir_of(f)) is not None}):
        try:
            plans.append(read_plan(run_dir))
        except RunDirError:
            continue  # a damaged plan: the parse of its logs already said so
    return plans


def price_sources(plans: list[PlanFile]) -> dict[str, str]:
    """Site name -> where its price comes from, for sites with a price."""
    out: dict[str, str] = {}
    for plan in plans:
        for name, site in plan.sites.items():
            if isinstance(site, dict) and site.get("cost_per_node_hour") is not None:
                out[str(site.get("name") or name)] = str(site.get("cost_source") or NOT_RECORDED)
    return out
