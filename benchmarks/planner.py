"""Planner benchmark: model build time and solve time, separately.

Random problems shaped like the shipped scenarios (saturating curves with a contact
capacity; staff accounts on every channel, 80-120 adds a day each; a fixed cost and a
minimum spend on a tenth of the channels, so on/off binaries) of 10 and 200 channels x
12 months x 20 breakpoints, monthly adds and members targets. Each size is solved by
every solver PuLP finds, to the planner's relative gap of 1e-3::

    python benchmarks/planner.py [--repeat 3] [--gap 1e-3]
"""

from __future__ import annotations

import argparse
import statistics

from simdomain.planner import milp
from simdomain.planner.synthetic import random_problem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="instances per size (seeds)")
    parser.add_argument("--gap", type=float, default=1e-3, help="relative MIP gap")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 200])
    args = parser.parse_args()
    print(f"{'channels':>8} {'solver':>7} {'rows':>7} {'vars':>6} {'integer':>7} "
          f"{'build s':>8} {'solve s':>8} {'status':>9}")
    for channels in args.sizes:
        for solver in milp.available_solvers():
            builds, solves, statuses = [], [], set()
            for seed in range(args.repeat):
                problem = random_problem(channels, 12, 20, seed=seed, switches=0.1, staff=1.0)
                model = milp.build(problem)
                solution = milp.solve(model, problem, milp.make_solver(solver, gap=args.gap))
                builds.append(model.build_seconds)
                solves.append(solution.solve_seconds)
                statuses.add(solution.status)
            integer = sum(v.cat != "Continuous" for v in model.lp.variables())
            print(f"{channels:>8} {solver:>7} {len(model.lp.constraints):>7} "
                  f"{len(model.lp.variables()):>6} {integer:>7} "
                  f"{statistics.median(builds):>8.2f} {statistics.median(solves):>8.2f} "
                  f"{'/'.join(sorted(statuses)):>9}")
    print("median over the seeds; solve time includes PuLP handing the model to the solver")


if __name__ == "__main__":
    main()
