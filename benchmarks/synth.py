"""Benchmark: ``simdomain synth`` on the DTC scenario (two years of history).

Times generating each process's bundle, adding the dirt and writing it (CSV), and,
as the reference in the same process, writing the clean orders frame with plain
``DataFrame.to_csv``; prints one JSON line with customers, rows and the seconds.

    python benchmarks/synth.py [--history-days 730] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from simdomain.scenario import load_scenario
from simdomain.sim.world import stream
from simdomain.synth import PROCESS_NAMES, make_messy, synthesize, write_bundle

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "dtc.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history-days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scenario = load_scenario(SCENARIO)
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for process in PROCESS_NAMES:
            start = time.perf_counter()
            bundle = synthesize(scenario, process=process, seed=args.seed,
                                history_days=args.history_days)
            generated = time.perf_counter()
            messy = make_messy(bundle, stream(np.random.SeedSequence(args.seed), "messy"))
            dirtied = time.perf_counter()
            write_bundle(messy, Path(scratch) / process)
            written = time.perf_counter()
            bundle.orders.to_csv(Path(scratch) / "reference.csv", index=False)
            reference = time.perf_counter() - written
            results[process] = {
                "customers": len(set(bundle.orders["customer_id"])
                                 | set(bundle.contacts["customer_id"])),
                "order_rows": len(messy.orders), "contact_rows": len(messy.contacts),
                "generate_s": round(generated - start, 2), "messy_s": round(dirtied - generated, 2),
                "write_s": round(written - dirtied, 2),
                "write_vs_orders_to_csv": round((written - dirtied) / reference, 2),
            }
    print(json.dumps({
        "benchmark": "synth", "scenario": scenario.name, "history_days": args.history_days,
        "results": results, "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
