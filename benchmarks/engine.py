"""Speed of the vectorized engine against the naive reference simulator, and the cost of
full-size runs.

Runs, on one generated scenario with every mechanism on (two channels, 1:1, group and
moments posts, referral with fraud and tiers, a campaign, three segments):

1. the reference (one SimPy process per consumer) and the engine at the same small size;
2. both at 100,000 consumers (the engine's rate against the reference's; goal >= 1,000x:
   the reference's rate falls as its people grow, so it is measured at that size too);
3. the engine at 1,000,000 consumers x 365 days in a fresh subprocess, for a clean wall
   time and peak resident memory (the process's own high-water mark; goal <= 3 s);
4. in another fresh subprocess, a twin-like run: the same scenario with its initial
   pool replaced by 1,000,000 known people (stage, source, tenure, order history,
   dormancy) carrying their own order, dormancy and deletion multipliers (gamma, heavy
   tailed), and new joiners drawing theirs; its time as a ratio to the plain run;
5. the twin-like run with 10,000,000 known people x 365 days (goal <= 60 s and
   <= 2 GB peak, the known people's arrays included, as a twin holds them);
6. :func:`report_sharded`: the big run split into 2 shards on a local Dask cluster of 2
   worker processes against the same run in one process (``simulate``, merge included),
   each in a fresh subprocess: wall time and peak memory of the process and of each
   worker (``--sharded-only`` runs just this).

Speed is in agent-days per second: the people in the pool summed over the days
simulated, divided by the wall time of one replication (the best of ``--repeats`` for
the engine). CPU seconds are shown too: on a shared machine they move less than wall
time, and the machine's load is printed at the start and the end. Ratios are what to
compare across machines; the goals are for a quiet 2-core machine.

Usage::

    python benchmarks/engine.py            # the full benchmark (several minutes)
    python benchmarks/engine.py --quick    # small sizes, seconds
    python benchmarks/engine.py --sharded-only [--quick]   # item 6 alone
    python benchmarks/engine.py --against REVISION [--twin]  # before and after a change

``--against`` runs the engine of another git revision and this tree's alternately, at
``--big-consumers`` x ``--big-days`` in fresh subprocesses (the best of ``--repeats``
each, ``--pairs`` times): a shared machine's speed drifts by more over a day than most
changes gain, so a change is measured against the code before it in the same minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simdomain.scenario.io import validate_scenario
from simdomain.scenario.model import Scenario
from simdomain.sim.engine import Replication, run_replication
from simdomain.sim.population import NEVER, InitialPeople
from simdomain.sim.reference import run_reference_replication

START = dt.date(2026, 1, 1)


def build_scenario(consumers: int, days: int) -> Scenario:
    """A scenario with ``consumers`` people in the initial pool and every mechanism on.

    Channels and referral are scaled with the pool, so each brings about 0.1 % of it a
    day and the shape of the run does not change with its size.
    """
    n = consumers
    pool = {"fan": n // 2, "customer": n * 3 // 10, "member": n * 3 // 20}
    pool["koc"] = n - sum(pool.values())
    campaign_day = START + dt.timedelta(days=min(10, days - 1))
    raw: dict[str, Any] = {
        "name": f"benchmark_{n}x{days}",
        "start_date": START.isoformat(),
        "horizon_days": days,
        "initial_pool": pool,
        "segments": {
            "mass": {"share": 0.6, "order_value_cny": 90},
            "premium": {"share": 0.3, "order_value_cny": 260,
                        "propensity": {"join": 1.5, "repeat_order": 1.4, "deletion": 0.7}},
            "bargain": {"share": 0.1, "order_value_cny": 45,
                        "propensity": {"add": 1.5, "join": 0.6, "dormancy": 1.5}},
        },
        "channels": {
            "sms": {"monthly_spend_cny": 0.15 * n, "cost_per_contact_cny": 0.05,
                    "funnel": {"click": 0.03, "add": 0.2}, "saturation_contacts": 10 * n,
                    "staff": {"accounts": n // 20_000 + 1, "adds_per_account_per_day": 100}},
            "parcel": {"monthly_spend_cny": 0.06 * n, "cost_per_contact_cny": 0.5,
                       "funnel": {"scan": 0.05, "add": 0.5}, "max_contacts_per_month": n},
        },
        "touch_policy": {
            "one_to_one": {"per_week": 2, "reach": 0.8, "uplift": 0.1, "fatigue": 0.2},
            "group": {"posts_per_day": 4, "view_rate": 0.2, "content": {
                "marketing": {"share": 0.4, "uplift": 0.05, "fatigue": 0.05},
                "care": {"share": 0.4, "uplift": 0.01, "fatigue": -0.02},
                "chat": {"share": 0.2}}},
            "moments": {"posts_per_day": 3, "view_rate": 0.2, "content": {
                "activity": {"share": 0.5, "uplift": 0.02},
                "product": {"share": 0.5, "uplift": 0.02, "fatigue": 0.01}}},
            "fatigue_tolerance": 0.5, "fatigue_sensitivity": 2.0,
        },
        "lifecycle": {
            "first_order": 0.02, "new_user_multiplier": 3, "repeat_order": 0.01,
            "member_order_multiplier": 2, "join": 0.01, "koc": 0.002, "dormancy": 0.005,
            "wake": 0.01, "deletion": {"fan": 0.003, "customer": 0.002, "member": 0.001,
                                       "koc": 0.0005},
        },
        "referral": {"addressable_market": n, "external_rate": 0.00001,
                     "word_of_mouth": {"member": 0.002, "koc": 0.01},
                     "gift_per_invitee_cny": 5, "fraud_share": 0.05,
                     "reward_tiers": [{"invites": 5, "gift_cny": 30}]},
        "campaigns": [{"name": "sale", "start": campaign_day.isoformat(), "days": 5,
                       "cost_cny": 0.01 * n, "channels": ["sms"],
                       "multipliers": {"adds": 1.5, "first_order": 2}}],
    }
    return validate_scenario(raw, "benchmark")


SHAPES = {"order_shape": 0.5, "dormancy_shape": 1.0, "deletion_shape": 0.7}
"""Gamma shapes of the twin-like run's multipliers (0.5: the largest of a million is
about 25 times the mean)."""


def build_twin(consumers: int, days: int) -> tuple[Scenario, InitialPeople]:
    """:func:`build_scenario` with per-person heterogeneity, and ``consumers`` known people
    in place of its initial pool: the pool's stage mix, every source, up to two years of
    tenure and order history, a fifth of the buyers dormant, and their own multipliers."""
    plain = build_scenario(consumers, days)
    raw = plain.model_dump(mode="json")
    raw["name"] = f"twin_{consumers}x{days}"
    raw["lifecycle"]["heterogeneity"] = SHAPES
    scenario = validate_scenario(raw, "benchmark")
    rng = np.random.default_rng(2026)
    n = consumers
    pool = plain.initial_pool
    # compact dtypes, as a twin holds them: codes in int8, days and counts in int32
    stage = rng.permutation(np.repeat(np.arange(4, dtype=np.int8),
                                      [pool.fan, pool.customer, pool.member, pool.koc]))
    join = (-rng.integers(1, 731, size=n)).astype(np.int32)
    buyer = stage >= 1
    orders = np.where(buyer, rng.geometric(0.3, size=n), 0).astype(np.int32)
    first = np.where(buyer, np.minimum(join + rng.integers(0, 60, size=n), -1),
                     NEVER).astype(np.int32)
    last = np.where(buyer, np.minimum(first + rng.integers(0, 365, size=n), -1),
                    NEVER).astype(np.int32)
    member = np.where(stage >= 2, np.minimum(first + 10, -1), NEVER).astype(np.int32)
    shares = np.array([seg.share for seg in plain.segments.values()])
    people = InitialPeople(
        stage=stage, segment=rng.choice(len(shares), size=n, p=shares).astype(np.int8),
        source=pd.Categorical.from_codes(
            rng.integers(0, len(plain.channels) + 3, size=n, dtype=np.int8),
            [*plain.channels, "initial", "organic", "referral"]),
        join_day=join, orders=orders, gmv_cny=orders * 120.0, first_order_day=first,
        last_order_day=last, member_day=member,
        koc_day=np.where(stage == 3, np.minimum(member + 10, -1), NEVER).astype(np.int32),
        dormant=buyer & (rng.random(n) < 0.2), in_group=rng.random(n) < 0.5,
        **{f"{name.split('_')[0]}_multiplier": rng.gamma(shape, 1 / shape, n).astype(np.float32)
           for name, shape in SHAPES.items()})
    return scenario, people


Runner = Callable[..., Replication]


def measure(run: Runner, consumers: int, days: int, repeats: int = 1,
            twin: bool = False) -> dict[str, float]:
    """Best wall time (and its CPU time) of ``repeats`` replications, and agent-days per
    second of wall time; of the twin-like run if ``twin``."""
    if twin:
        scenario, people = build_twin(consumers, days)
        run = functools.partial(run, initial=people)
    else:
        scenario = build_scenario(consumers, days)
    best, cpu, agent_days = float("inf"), 0.0, 0
    for i in range(repeats):
        begin, begin_cpu = time.perf_counter(), time.process_time()
        result = run(scenario, np.random.SeedSequence(i), keep_agents=False)
        if time.perf_counter() - begin < best:
            best, cpu = time.perf_counter() - begin, time.process_time() - begin_cpu
        agent_days = int(result.daily["pool"].sum())
    return {"consumers": consumers, "days": days, "agent_days": agent_days,
            "seconds": best, "cpu": cpu, "rate": agent_days / best}


def peak_mib() -> float:
    """This process's peak resident memory, MiB: the high-water mark of its own memory
    (``VmHWM``, Linux). ``ru_maxrss`` would also count, after a fork and exec, the
    parent's memory at the fork; it is the fallback elsewhere (KiB on Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(consumers: int, days: int, twin: bool, repeats: int = 1) -> None:
    """Run the engine (the best of ``repeats``; the twin-like run if ``twin``) and print
    its times and peak memory as JSON; the twin-like run's known people are built first
    and count in the peak, as a twin holds them."""
    baseline = peak_mib()
    result = measure(run_replication, consumers, days, repeats, twin=twin)
    print(json.dumps({**result, "peak_mb": peak_mib(), "baseline_mb": baseline}))


def in_subprocess(consumers: int, days: int, twin: bool = False, repeats: int = 1,
                  source: Path | None = None) -> dict[str, float]:
    """:func:`child` in a fresh interpreter, so its peak memory is its own; with the
    engine of the source tree ``source`` (first on the path) rather than this one."""
    command = [sys.executable, __file__, "--child", str(consumers), str(days),
               "--repeats", str(repeats)]
    env = {**os.environ, "PYTHONPATH": str(source)} if source else None
    done = subprocess.run(command + (["--twin"] if twin else []), env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def against(revision: str, consumers: int, days: int, twin: bool, repeats: int,
            pairs: int) -> None:
    """The engine of the git ``revision`` (in a temporary worktree) against this tree's,
    run alternately in fresh subprocesses on the same scenario: a machine whose speed
    drifts over the day compares them within minutes. Prints each pair's best CPU
    seconds and the ratio."""
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "before"
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", "--quiet",
                        str(tree), revision], check=True)
        try:
            runs = [(in_subprocess(consumers, days, twin, repeats, source=tree),
                     in_subprocess(consumers, days, twin, repeats)) for _ in range(pairs)]
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force",
                            str(tree)], check=True)
    kind = "twin-like " if twin else ""
    print(f"{kind}{consumers:,} x {days} days, best CPU s of {repeats}, {revision} (before) "
          f"and this tree (after), alternating; machine: {machine()}")
    for i, (before, after) in enumerate(runs, 1):
        print(f"  pair {i}: before {before['cpu']:.2f} s, after {after['cpu']:.2f} s "
              f"({after['cpu'] / before['cpu']:.3f}); peak {before['peak_mb']:,.0f} and "
              f"{after['peak_mb']:,.0f} MiB")
    ratios = [after["cpu"] / before["cpu"] for before, after in runs]
    print(f"after / before: {min(ratios):.3f} to {max(ratios):.3f} over {pairs} pairs")


def row(label: str, m: dict[str, float], extra: str = "") -> str:
    return (f"{label:<34}{m['consumers']:>11,}{m['days']:>6}{m['agent_days']:>14,}"
            f"{m['seconds']:>9.2f}{m['cpu']:>8.2f}{m['rate']:>14,.0f}  {extra}")


def machine() -> str:
    """Cores, load and memory of this machine (the benchmark's context)."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    return f"{os.cpu_count()} cores, load average {load}, {memory:.0f} GB memory"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: reference 1,000, engine 20,000, big runs 100,000 "
                             "and 200,000 x 60 days")
    parser.add_argument("--reference-consumers", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=30, help="days of the speed runs")
    parser.add_argument("--engine-consumers", type=int, default=100_000)
    parser.add_argument("--big-consumers", type=int, default=1_000_000)
    parser.add_argument("--huge-consumers", type=int, default=10_000_000,
                        help="people of the twin-like run at full size (0: skip it)")
    parser.add_argument("--big-days", type=int, default=365)
    parser.add_argument("--repeats", type=int, default=3, help="engine runs; the best counts")
    parser.add_argument("--against", metavar="REVISION",
                        help="compare this tree's engine with a git revision's instead, "
                             "alternately at --big-consumers x --big-days (--twin: twin-like)")
    parser.add_argument("--pairs", type=int, default=3, help="runs of each with --against")
    parser.add_argument("--child", nargs=2, type=int, metavar=("CONSUMERS", "DAYS"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--twin", action="store_true",
                        help="with --against: the twin-like run")
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child, twin=args.twin, repeats=args.repeats)
        return
    if args.against:
        against(args.against, args.big_consumers, args.big_days, args.twin, args.repeats,
                args.pairs)
        return
    if args.quick:
        args.reference_consumers, args.engine_consumers = 1_000, 20_000
        args.big_consumers, args.huge_consumers, args.big_days = 100_000, 200_000, 60

    print(f"machine at the start: {machine()}")
    small, days = args.reference_consumers, args.days
    reference = measure(run_reference_replication, small, days)
    reference_large = measure(run_reference_replication, args.engine_consumers, days)
    engine_small = measure(run_replication, small, days, args.repeats)
    engine_large = measure(run_replication, args.engine_consumers, days, args.repeats)
    big = in_subprocess(args.big_consumers, args.big_days)
    big_twin = in_subprocess(args.big_consumers, args.big_days, twin=True)
    huge = (in_subprocess(args.huge_consumers, args.big_days, twin=True)
            if args.huge_consumers else None)

    print(f"{'run':<34}{'consumers':>11}{'days':>6}{'agent-days':>14}{'wall s':>9}"
          f"{'cpu s':>8}{'agent-days/s':>14}")
    print(row("reference (a process per person)", reference))
    print(row("engine", engine_small, f"{engine_small['rate'] / reference['rate']:,.0f}x"))
    print(row("reference (a process per person)", reference_large))
    print(row("engine", engine_large, f"{engine_large['rate'] / reference_large['rate']:,.0f}x"))
    for label, m in [("engine, fresh subprocess", big), ("twin-like, fresh subprocess", big_twin),
                     *([("twin-like, fresh subprocess", huge)] if huge else [])]:
        print(row(label, m, f"peak RSS {m['peak_mb']:,.0f} MiB (at start {m['baseline_mb']:,.0f} MiB)"))
    print()

    def ratio(engine: dict[str, float], base: dict[str, float]) -> str:
        by_cpu = (engine["agent_days"] / engine["cpu"]) / (base["agent_days"] / base["cpu"])
        return f"{engine['rate'] / base['rate']:,.0f}x ({by_cpu:,.0f}x by CPU time)"

    print(f"engine / reference, both at {small:,} consumers: {ratio(engine_small, reference)}")
    print(f"engine / reference, both at {args.engine_consumers:,} consumers: "
          f"{ratio(engine_large, reference_large)}, goal >= 1,000x at 100,000; against the "
          f"reference at {small:,}: {ratio(engine_large, reference)}")
    print(f"{args.big_consumers:,} consumers x {args.big_days} days: "
          f"{big['seconds']:.1f} s wall, {big['cpu']:.1f} s CPU (goal <= 3 s), "
          f"peak RSS {big['peak_mb']:,.0f} MiB")
    print(f"twin-like / plain, {args.big_consumers:,} x {args.big_days}: "
          f"{big_twin['seconds'] / big['seconds']:.2f}x wall, "
          f"{big_twin['cpu'] / big['cpu']:.2f}x CPU")
    if huge:
        print(f"twin-like {args.huge_consumers:,} x {args.big_days}: {huge['seconds']:.1f} s "
              f"wall, {huge['cpu']:.1f} s CPU (goal <= 60 s), peak RSS {huge['peak_mb']:,.0f} MiB "
              f"= {huge['peak_mb'] * 2**20 / 1e9:.2f} GB (goal <= 2 GB)")
    report_sharded(args.big_consumers, args.big_days)
    print(f"machine at the end: {machine()}")


def sharded_child(consumers: int, days: int, shards: int) -> None:
    """One replication through ``simulate``: in this process (``shards == 0``), or split
    into ``shards`` on a local Dask cluster of as many worker processes; print wall time
    and peak memory (this process's and each worker's) as JSON."""
    from simdomain.simulation import simulate

    scenario = build_scenario(consumers, days)
    out: dict[str, Any] = {"consumers": consumers, "days": days, "shards": shards,
                           "start_mb": peak_mib()}
    if not shards:
        begin, begin_cpu = time.perf_counter(), time.process_time()
        result = simulate(scenario, seed=1, reps=1, keep_agents=False)
        out["seconds"] = time.perf_counter() - begin
        out["cpu"] = time.process_time() - begin_cpu
    else:
        from distributed import Client, LocalCluster

        from simdomain.workers import DaskCluster

        def peak_mb() -> float:  # peak_mib in a worker (sent by value: self-contained)
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) / 1024 for line in status
                            if line.startswith("VmHWM:"))

        import dask

        # Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536, which fixes
        # glibc's mmap threshold: every day's person-sized temporaries are then mapped
        # and unmapped anew (about 1.6x the CPU time); docs/sharding.md says how to unset it
        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})
        begin = time.perf_counter()
        with LocalCluster(n_workers=shards, threads_per_worker=1, processes=True,
                          memory_limit=0, dashboard_address=None) as local, \
                Client(local) as client:
            client.run(lambda: __import__("simdomain.simulation"))  # imports not timed
            out["startup_seconds"] = time.perf_counter() - begin
            out["worker_start_mb"] = sorted(client.run(peak_mb).values())
            cluster = DaskCluster(local.scheduler_address)
            cpu_before = client.run(time.process_time)
            begin, begin_cpu = time.perf_counter(), time.process_time()
            result = simulate(scenario, seed=1, reps=1, keep_agents=False, shards=shards,
                              cluster=cluster)
            out["seconds"] = time.perf_counter() - begin
            out["cpu"] = time.process_time() - begin_cpu  # the client's
            out["worker_cpu"] = sorted(after - cpu_before[worker] for worker, after
                                       in client.run(time.process_time).items())
            out["worker_peak_mb"] = sorted(client.run(peak_mb).values())
            cluster.close()
    out["peak_mb"] = peak_mib()
    out["agent_days"] = int(result.daily["pool"].sum())
    out["new_adds"] = int(result.daily["new_adds"].sum())
    out["orders"] = int(result.daily["orders"].sum())
    print(json.dumps(out))


def report_sharded(consumers: int, days: int, shards: int = 2) -> None:
    """Print the sharded run against the single process (each in a fresh subprocess)."""
    runs = []
    for count in (0, shards):
        done = subprocess.run([sys.executable, __file__, "--sharded-child", str(consumers),
                               str(days), str(count)], capture_output=True, text=True,
                              check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    single, split = runs
    print(f"\n{consumers:,} consumers x {days} days, one replication through simulate():")
    print(f"  one process:                  {single['seconds']:7.1f} s wall, "
          f"{single['cpu']:.1f} s CPU, "
          f"peak RSS {single['peak_mb']:,.0f} MiB (after imports {single['start_mb']:,.0f} MiB); "
          f"{single['new_adds']:,} adds, "
          f"{single['orders']:,} orders")
    workers = ", ".join(f"{mb:,.0f}" for mb in split["worker_peak_mb"])
    started = ", ".join(f"{mb:,.0f}" for mb in split["worker_start_mb"])
    cpus = ", ".join(f"{s:.1f}" for s in split["worker_cpu"])
    print(f"  {shards} shards on {shards} Dask workers: {split['seconds']:7.1f} s wall, CPU "
          f"{cpus} s per worker and {split['cpu']:.1f} s in the client "
          f"({single['seconds'] / split['seconds']:.2f}x by wall time; cluster start "
          f"{split['startup_seconds']:.1f} s not counted), peak RSS per worker {workers} MiB "
          f"(idle {started} MiB), client {split['peak_mb']:,.0f} MiB; {split['new_adds']:,} "
          f"adds, {split['orders']:,} orders")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--sharded-child":
        sharded_child(*(int(x) for x in sys.argv[2:]))
    elif "--sharded-only" in sys.argv:
        quick = "--quick" in sys.argv
        report_sharded(100_000 if quick else 1_000_000, 60 if quick else 365)
    else:
        main()
