"""Benchmark: ``simdomain fit`` on a simulation of about 100,000 people.

The shipped social e-commerce scenario, with its channel spend, initial pool and
addressable market scaled so that one replication holds about 100,000 people over the
year. Times each stage of :func:`simdomain.models.pipeline.fit_simulation` (simulate +
panel, fit both estimators on 4 targets, evaluate on held-out people, cohort model and
channel value table) and prints one JSON line.

    python benchmarks/models.py [--scale 0.3] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from simdomain.models.pipeline import fit_simulation
from simdomain.scenario import read_yaml, validate_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "social_ecommerce.yaml"


def scaled(scale: float):
    raw = read_yaml(SCENARIO)
    for channel in raw["channels"].values():
        spend = channel["monthly_spend_cny"]
        channel["monthly_spend_cny"] = ([s * scale for s in spend] if isinstance(spend, list)
                                        else spend * scale)
    for stage in list(raw["initial_pool"]):
        raw["initial_pool"][stage] = int(raw["initial_pool"][stage] * scale)
    if raw.get("referral"):
        raw["referral"]["addressable_market"] = int(raw["referral"]["addressable_market"] * scale)
    raw["name"] = f"social_ecommerce_x{scale:g}"
    return validate_scenario(raw, str(SCENARIO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scenario = scaled(args.scale)
    start = time.perf_counter()
    fit = fit_simulation(scenario, seed=args.seed, reps=1)
    total = time.perf_counter() - start
    people = int(fit.cohort.adds_.sum()) + scenario.initial_pool.total
    churn = fit.evaluation.wide().set_index(["target", "estimator"])["roc_auc"]
    print(json.dumps({
        "benchmark": "models.fit_simulation", "scenario": scenario.name, "people": people,
        "panel_rows": fit.rows["panel"], "seconds": fit.seconds,
        "fit_seconds": round(sum(v for k, v in fit.seconds.items() if k != "simulate"), 2),
        "total_seconds": round(total, 2),
        "churn_roc_auc": {e: round(float(churn[("churn_30d", e)]), 4) for e in ("gbm", "logistic")},
        "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
