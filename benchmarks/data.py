"""Benchmark: loading and cleaning a large data bundle.

Writes (once, into ``--dir`` or a temporary folder) an orders file of ``--rows`` rows
over ``--customers`` customers (order lines sharing ids, refunds, rows without order id,
repeated rows) and a contacts file with one row per contact and person added by two
staff accounts, then times :func:`simdomain.data.load_bundle` in a fresh process and
reports its peak resident memory, against the floor of reading the same CSV files with
``pyarrow.csv.read_csv`` (the ratio is the figure to watch; on a shared machine, CPU seconds say more than wall
seconds). Prints one JSON line.

    python benchmarks/data.py [--rows 20000000] [--customers 2000000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

START = np.datetime64("2023-01-01T00:00:00", "s")
SECONDS = 2 * 365 * 86400


def generate(folder: Path, rows: int, customers: int, seed: int = 0) -> None:
    """Write orders.csv and contacts.csv in chunks of a million rows."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    channels = np.array(["mall", "tmall", "jd", "douyin", "pos"])
    with pcsv.CSVWriter(folder / "orders.csv", _schema(("customer_id", "ordered_at", "amount",
                                                         "order_id", "channel", "items"))) as out:
        done = 0
        while done < rows:
            n = min(1_000_000, rows - done)
            customer = rng.integers(0, customers, n)
            when = START + rng.integers(0, SECONDS, n).astype("timedelta64[s]")
            amount = np.round(rng.lognormal(4.5, 0.8, n), 2)
            order = np.arange(done, done + n)
            line = rng.random(n)
            order[1:][line[1:] < 0.05] = order[:-1][line[1:] < 0.05]  # 5%: a second line
            customer[1:][line[1:] < 0.05] = customer[:-1][line[1:] < 0.05]
            refund = (line >= 0.05) & (line < 0.07)  # 2%: a refund of the previous row
            refund[0] = False
            previous = np.flatnonzero(refund) - 1
            amount[refund] = -np.round(amount[previous] * 0.5, 2)
            customer[refund] = customer[previous]
            order[refund] = order[previous]
            when[refund] = when[previous] + np.timedelta64(86400, "s")
            order_text = pc.binary_join_element_wise("O", pa.array(order.astype(str)), "")
            no_id = line > 0.99
            order_text = pc.if_else(pa.array(no_id), None, order_text)
            table = pa.table({
                "customer_id": pc.binary_join_element_wise("C", pa.array(customer.astype(str)),
                                                           ""),
                "ordered_at": pc.cast(pa.array(when), pa.string()),
                "amount": pa.array(amount).cast(pa.string()),
                "order_id": order_text,
                "channel": pa.array(channels[rng.integers(0, 5, n)]),
                "items": pa.array(rng.integers(1, 4, n).astype(str))})
            out.write_table(table)
            done += n
    contacts = rng.permutation(customers)[: int(customers * 0.7)]
    twice = contacts[: len(contacts) // 20]
    person = np.concatenate([contacts, twice])
    added = START + rng.integers(-SECONDS // 2, SECONDS, len(person)).astype("timedelta64[s]")
    deleted = added + rng.integers(0, SECONDS, len(person)).astype("timedelta64[s]")
    deleted_text = pc.if_else(pa.array(rng.random(len(person)) < 0.2),
                              pc.cast(pa.array(deleted), pa.string()), None)
    pcsv.write_csv(pa.table({
        "customer_id": pc.binary_join_element_wise("C", pa.array(person.astype(str)), ""),
        "added_at": pc.cast(pa.array(added), pa.string()),
        "channel": pa.array(np.array(["qr_store", "parcel", "sms", "ads"])[
            rng.integers(0, 4, len(person))]),
        "staff_id": pa.array(np.char.add("s", rng.integers(0, 300, len(person)).astype(str))),
        "deleted_at": deleted_text}), folder / "contacts.csv")


def _schema(names) -> pa.Schema:
    return pa.schema([(name, pa.string()) for name in names])


def measure(folder: Path) -> dict:
    """Load the bundle (peak memory measured then), then time the pyarrow floor."""
    from simdomain.data import load_bundle

    start, cpu = time.perf_counter(), _cpu()
    bundle = load_bundle(folder, as_of="2024-12-31")
    seconds, load_cpu = time.perf_counter() - start, _cpu() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    held = sum(f.memory_usage(deep=True).sum() for f in (bundle.orders, bundle.contacts))
    start, cpu = time.perf_counter(), _cpu()
    for name in ("orders.csv", "contacts.csv"):
        pcsv.read_csv(folder / name)
    floor, floor_cpu = time.perf_counter() - start, _cpu() - cpu
    return {"load_seconds": round(seconds, 1), "load_cpu_seconds": round(load_cpu, 1),
            "pyarrow_read_seconds": round(floor, 1), "pyarrow_read_cpu_seconds": round(floor_cpu, 1),
            "ratio_to_pyarrow_read": round(seconds / floor, 2),
            "cpu_ratio_to_pyarrow_read": round(load_cpu / floor_cpu, 2),
            "peak_rss_gib": round(peak, 2), "clean_frames_gib": round(held / 2**30, 2),
            "orders_kept": len(bundle.orders), "contacts_kept": len(bundle.contacts),
            "customers": len(bundle.customers),
            "warnings": {k: int(c) for k, c in bundle.report.warnings.groupby("kind")["count"]
                         .sum().items()}}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--customers", type=int, default=2_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="where the bundle is (kept)")
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    folder = args.dir or Path(tempfile.mkdtemp(prefix="simdomain-bench-data-"))
    start = time.perf_counter()
    if not (folder / "orders.csv").exists():
        generate(folder, args.rows, args.customers)
    written = time.perf_counter() - start
    child = subprocess.run([sys.executable, __file__, "--measure", str(folder)],
                           capture_output=True, text=True, check=True)
    result = json.loads(child.stdout.strip().splitlines()[-1])
    size = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
    print(json.dumps({
        "benchmark": "data.load_bundle", "rows": args.rows, "customers": args.customers,
        "bundle_mib": round(size), "write_seconds": round(written, 1), **result,
        "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(), "pyarrow": pa.__version__}))


if __name__ == "__main__":
    main()
