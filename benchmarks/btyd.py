"""Benchmark: the twin's order summary, Pareto/NBD fit and BG/NBD baseline at scale.

Synthetic Pareto/NBD customers (CDNOW-like parameters in days, whole-day histories
observed for 30 to 540 days). Each case runs in a fresh process, which reports its wall
time and its peak resident memory above what it held before the case (the kernel's
peak counter is reset through ``/proc/self/clear_refs``). One JSON line per case; the
reference is a numpy sort of 10 million int64, timed in the same process (``ratio`` =
case seconds / reference seconds, steadier than seconds on a shared machine).

    python benchmarks/btyd.py [--customers 100000 2000000] [--orders 20000000]
                              [--pymc] [--cases summary pareto_nbd bgnbd]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import time

import numpy as np
import pandas as pd

PARAMS = (0.55, 74.0, 0.61, 82.0)


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def customers(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whole-day Pareto/NBD histories of ``n`` customers."""
    rng = np.random.default_rng(seed)
    r, alpha, s, beta = PARAMS
    T = np.floor(rng.uniform(30, 540, n))
    lam, mu = rng.gamma(r, 1 / alpha, n), rng.gamma(s, 1 / beta, n)
    seen = np.minimum(rng.exponential(1 / mu), T)
    x = rng.poisson(lam * seen).astype(float)
    t_x = np.floor(np.where(x > 0, seen * rng.random(n) ** (1 / np.maximum(x, 1)), 0.0))
    return x, t_x, T


def order_log(rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` orders of ``rows // 10`` customers over 540 days, with times of day."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00:00", "s")
    return pd.DataFrame({
        "customer_id": rng.integers(0, rows // 10, rows),
        "ordered_at": start + rng.integers(0, 540 * 86400, rows).astype("timedelta64[s]"),
        "amount": rng.gamma(2.0, 60.0, rows),
    })


def _case(kind: str, n: int, queue: mp.Queue) -> None:
    from simdomain.twin.baseline import bgnbd_baseline
    from simdomain.twin.btyd import fit_pareto_nbd, rfm_summary

    ref_keys = np.random.default_rng(1).integers(0, 2**62, 10_000_000)
    t = time.perf_counter()
    np.sort(ref_keys)
    reference = time.perf_counter() - t
    del ref_keys
    extra: dict = {}
    if kind == "summary":
        data = order_log(n)
    else:
        x, t_x, T = customers(n)
    before = _rss_mb("VmRSS")
    _reset_peak()
    t = time.perf_counter()
    if kind == "summary":
        out = rfm_summary(data, "2025-06-23")
        extra = {"customers": len(out)}
    elif kind == "pareto_nbd":
        fit = fit_pareto_nbd(x, t_x, T)
        extra = {"params": [round(float(v), 4) for v in fit.params],
                 "distinct_rows": int(np.unique(np.column_stack([x, t_x, T]), axis=0).shape[0])}
    else:
        rfm = pd.DataFrame({"x": x, "t_x": t_x, "T": T})
        base = bgnbd_baseline(rfm, 180.0, method="pymc" if kind == "bgnbd_pymc" else "simdomain")
        extra = {"method": base.method, "fit_seconds": round(base.fit_seconds, 2),
                 "params": [round(float(v), 4) for v in base.params]}
    seconds = time.perf_counter() - t
    queue.put({"benchmark": f"twin.{kind}", "rows": n, "seconds": round(seconds, 2),
               "reference_sort_seconds": round(reference, 3),
               "ratio": round(seconds / reference, 1),
               "peak_mb_above_start": round(_rss_mb("VmHWM") - before, 1), **extra})


def run(kind: str, n: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_case, args=(kind, n, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000, 2_000_000])
    parser.add_argument("--orders", type=int, default=20_000_000)
    parser.add_argument("--cases", nargs="+", default=["summary", "pareto_nbd", "bgnbd"],
                        choices=["summary", "pareto_nbd", "bgnbd"])
    parser.add_argument("--pymc", action="store_true",
                        help="also time PyMC-Marketing's BetaGeoModel MAP (the btyd extra)")
    args = parser.parse_args()
    env = {"cpus": os.cpu_count(), "load_average": [round(v, 2) for v in os.getloadavg()],
           "python": platform.python_version()}
    if "summary" in args.cases:
        print(json.dumps({**run("summary", args.orders), **env}), flush=True)
    for n in args.customers:
        for kind in args.cases:
            if kind == "summary":
                continue
            print(json.dumps({**run(kind, n), **env}), flush=True)
            if kind == "bgnbd" and args.pymc:
                print(json.dumps({**run("bgnbd_pymc", n), **env}), flush=True)


if __name__ == "__main__":
    main()
