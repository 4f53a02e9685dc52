"""Benchmark: calibrating a twin on a large data bundle, against loading it alone.

Writes (once, into ``--dir`` or a temporary folder) the bundle of ``benchmarks/data.py``
(orders over customers, contacts), then, each in a fresh process, times loading it and
loading plus calibrating (people's timelines, the Pareto/NBD, the lifecycle hazards, the
deletion frailty, seasons, the model-error holdout, 200 draws), and reports CPU seconds,
wall seconds and peak resident memory, and the ratio of the two CPU times. Prints one
JSON line.

    python benchmarks/twin.py [--rows 20000000] [--customers 2000000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = """
import json, resource, sys, time
from simdomain.data import load_bundle
start, cpu = time.perf_counter(), time.process_time()
bundle = load_bundle(sys.argv[1])
if sys.argv[2] == "calibrate":
    from simdomain.twin.calibrate import calibrate
    from simdomain.twin.history import build_history
    as_of = bundle.span[1].date()
    history = build_history(bundle.orders, as_of, contacts=bundle.contacts,
                            members=bundle.members, referrals=bundle.referrals)
    calibrate(history, spend=bundle.spend, referrals=bundle.referrals, draws=200)
print(json.dumps({"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(folder: Path, what: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(folder), what], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--customers", type=int, default=2_000_000)
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("data_benchmark", HERE / "data.py")
    data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(data)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp) / "bundle"
        if not (folder / "orders.csv").exists():
            data.generate(folder, args.rows, args.customers)
        load = run(folder, "load")
        both = run(folder, "calibrate")
    print(json.dumps({"rows": args.rows, "customers": args.customers, "load": load,
                      "load_and_calibrate": both,
                      "calibrate_cpu_over_load_cpu": both["cpu_s"] / load["cpu_s"],
                      "python": platform.python_version()}))


if __name__ == "__main__":
    main()
