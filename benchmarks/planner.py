"""Planner benchmark: model build and solve, the planner's formulation against the
original one in the same process, and against the goal of 2 s.

Random problems shaped like the shipped scenarios (saturating curves with a contact
capacity; staff accounts on every channel, 80-120 adds a day each; a fixed cost and a
minimum spend on a tenth of the channels, so on/off binaries) of 10 and 200 channels x
12 months x 20 breakpoints, monthly adds and members targets. Each size is solved by
every solver PuLP finds, to the planner's relative gap of 1e-3, in two formulations:

- ``new``: the planner's (curves by segments, cost-envelope cuts; the relaxation solved
  in process by scipy's HiGHS and rounded, the solver's branch and bound only if that
  plan is not within the gap);
- ``old``: curves by chords, no cuts, the solver's branch and bound (as before).

Wall seconds depend on what else runs on the machine, so the CPU seconds of this
process and of the solver's process are reported too, with the load average; compare
formulations by their ratio::

    python benchmarks/planner.py [--repeat 3] [--gap 1e-3] [--sizes 10 200] [--solvers cbc]

``--chance`` runs the plan over parameter draws instead (issue 12): 50 channels x 12
months x 100 draws (lognormal draws of every curve and of members per add, Poisson
chance at the goals), each target met with probability 0.9, against the goal of 30 s
on 2 cores; build (draw set, sparse model) and solve by each method, and the cost
against the CVaR plan and the mean-curve (deterministic) plan::

    python benchmarks/planner.py --chance [--channels 50] [--draws 100] [--methods sets cvar]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

from simdomain.planner import milp
from simdomain.planner.robust import solve_chance
from simdomain.planner.synthetic import random_draws, random_problem

CHANCE_GOAL_SECONDS = 30.0
"""Build + solve of 50 channels x 12 months x 100 draws (issue 12)."""
GOAL_SECONDS = 2.0
"""Build + solve of 200 channels x 12 months (issue 14)."""
FORMULATIONS = {"new": {}, "old": {"curves": "chords", "envelope": False}}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(problem, solver: str, gap: float, formulation: dict) -> dict[str, float | str]:
    """Build and solve once; wall and CPU seconds (this process and the solver's)."""
    wall, cpu, child = time.perf_counter(), time.process_time(), children_cpu()
    model = milp.build(problem, **formulation)
    solution = milp.solve(model, problem, milp.make_solver(solver, gap=gap))
    return {"build": model.build_seconds, "solve": solution.solve_seconds,
            "wall": time.perf_counter() - wall,
            "cpu": time.process_time() - cpu + children_cpu() - child,
            "objective": solution.objective, "status": solution.status,
            "rows": len(model.lp.constraints), "vars": len(model.lp.variables())}


def chance(channels: int, draws: int, methods: list[str], repeat: int) -> None:
    """The chance-constrained plan over draws: build and solve seconds per method."""
    print(f"{'seed':>4} {'method':>6} {'draws s':>8} {'model s':>8} {'solve s':>8} "
          f"{'total s':>8} {'cpu s':>6} {'status':>10} {'cost':>14} {'vs mean plan':>12}")
    for seed in range(repeat):
        problem = random_problem(channels, 12, 20, seed=seed, switches=0.1, staff=1.0)
        mean = milp.optimize(problem, milp.make_solver("cbc", gap=1e-3)).objective
        for method in methods:
            wall, cpu = time.perf_counter(), time.process_time()
            drawn = random_draws(problem, draws, seed=seed, noise=True)
            built = time.perf_counter() - wall
            if method != "sets":  # the sets build their own models as they go
                drawn.model(method)
            modelled = time.perf_counter() - wall - built
            plan = solve_chance(drawn, 0.9, method=method, time_limit=120.0)
            total = time.perf_counter() - wall
            print(f"{seed:>4} {method:>6} {built:>8.2f} {modelled:>8.2f} "
                  f"{total - built - modelled:>8.2f} {total:>8.2f} "
                  f"{time.process_time() - cpu:>6.1f} {plan.status:>10} {plan.cost:>14,.0f} "
                  f"{plan.cost / mean:>11.2f}x")
    print(f"goal: {CHANCE_GOAL_SECONDS:.0f} s wall for build + solve on 2 cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chance", action="store_true", help="the plan over draws (issue 12)")
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--methods", nargs="+", default=["sets", "cvar"])
    parser.add_argument("--repeat", type=int, default=3, help="instances per size (seeds)")
    parser.add_argument("--gap", type=float, default=1e-3, help="relative MIP gap")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 200])
    parser.add_argument("--solvers", nargs="+", default=milp.available_solvers(),
                        choices=milp.SOLVERS, help="default: every one installed")
    args = parser.parse_args()
    if args.chance:
        print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        chance(args.channels, args.draws, args.methods, args.repeat)
        return
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores")
    print(f"{'channels':>8} {'solver':>7} {'form':>4} {'rows':>6} {'vars':>6} {'build s':>8} "
          f"{'solve s':>8} {'wall s':>7} {'cpu s':>6} {'status':>8} {'cost vs old':>11}")
    for channels in args.sizes:
        for solver in args.solvers:
            runs: dict[str, list] = {name: [] for name in FORMULATIONS}
            for seed in range(args.repeat):
                problem = random_problem(channels, 12, 20, seed=seed, switches=0.1, staff=1.0)
                for name, formulation in FORMULATIONS.items():
                    runs[name].append(run(problem, solver, args.gap, formulation))
            for name, results in runs.items():
                med = {k: statistics.median(r[k] for r in results)
                       for k in ("build", "solve", "wall", "cpu")}
                diff = max(abs(r["objective"] / o["objective"] - 1)
                           for r, o in zip(results, runs["old"]))
                statuses = "/".join(sorted({r["status"] for r in results}))
                print(f"{channels:>8} {solver:>7} {name:>4} {results[0]['rows']:>6} "
                      f"{results[0]['vars']:>6} {med['build']:>8.2f} {med['solve']:>8.2f} "
                      f"{med['wall']:>7.2f} {med['cpu']:>6.2f} {statuses:>8} {diff:>11.1e}")
            new, old = runs["new"], runs["old"]
            ratio_wall = statistics.median(o["wall"] / n["wall"] for n, o in zip(new, old))
            ratio_cpu = statistics.median(o["cpu"] / n["cpu"] for n, o in zip(new, old))
            line = (f"{'':>8} {solver:>7} new is {ratio_wall:.1f}x faster than old (wall), "
                    f"{ratio_cpu:.1f}x (cpu)")
            if channels == 200:
                cpu = statistics.median(n["cpu"] for n in new)
                line += (f"; goal {GOAL_SECONDS:.0f} s: cpu {cpu:.2f} s "
                         f"({'met' if cpu <= GOAL_SECONDS else 'not met'} on a quiet machine)")
            print(line)
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("medians over the seeds; solve time includes PuLP handing the model to the solver; "
          "'cost vs old': largest relative difference of the optimal cost (within the gap)")


if __name__ == "__main__":
    main()
