"""``simdomain advise``: which test would make the plan cheapest, ranked.

Exit codes: 0 advice written; 2 bad input (a scenario without parameter draws among
them); 3 no plan meets the targets at the chance asked now.
"""

from __future__ import annotations

import argparse
import sys

from simdomain.advise.export import advice_text, write_advice
from simdomain.advise.preposterior import MODES
from simdomain.advise.ranking import AdviseOptions, Infeasible, advise, check_twin
from simdomain.cliutil import INFEASIBLE, OK, amount, int_in, number_in, seed
from simdomain.outfolder import default_out, open_folder
from simdomain.planner.robust import METHODS
from simdomain.scenario import load_scenario


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``advise`` subcommand."""
    parser = commands.add_parser("advise", help="rank the tests that would make the plan "
                                                "cheapest (needs a twin)",
                                 description=__doc__.split("\n\n")[0])
    parser.add_argument("file", metavar="TWIN_SCENARIO")
    parser.add_argument("--chance", type=number_in(0, 1, "a probability", low_open=True),
                        default=0.8, metavar="P",
                        help="every target met with this chance across the draws (0.8)")
    parser.add_argument("--draws", type=int_in(2, 1000, "a number of draws"), default=40,
                        metavar="K", help="parameter draws planned on (40)")
    parser.add_argument("--outcomes", type=int_in(2, 10_000, "a number of outcomes"),
                        default=16, metavar="J",
                        help="imagined outcomes per test; the error falls as 1/sqrt(J) (16)")
    parser.add_argument("--budget-per-test", type=amount, metavar="CNY",
                        help="leave out tests that cost more")
    parser.add_argument("--setup-cost", type=amount, default=0.0, metavar="CNY",
                        help="fixed cost of running any test (0)")
    parser.add_argument("--dispersion", type=number_in(0, 1e9, "a size", low_open=True),
                        default=100.0,
                        help="negative binomial size of a spend test's adds (100)")
    parser.add_argument("--method", choices=METHODS, default="cvar",
                        help="chance-constrained solve: cvar (default: conservative, smooth "
                             "in the draws), sets (the planner's default) or milp (exact, "
                             "slow)")
    parser.add_argument("--mode", choices=MODES, default="swap",
                        help="posterior: swap the tested block's values (default) or "
                             "re-weight every parameter jointly")
    parser.add_argument("--in-sample", action="store_true",
                        help="let an imagined truth's own draw into its posterior (by default "
                             "it is left out, as a real truth is not one of the draws)")
    parser.add_argument("--screen", type=number_in(0, 1, "a share"), default=0.001,
                        metavar="SHARE",
                        help="skip the tests of a lever whose perfect information is worth "
                             "under this share of the plan's cost (0.001)")
    parser.add_argument("--seed", type=seed, default=0, help="root seed")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                        help="override a scenario field")
    parser.add_argument("--out", metavar="DIR", help="output folder (default out/<name>-advice)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or tables")
    parser.set_defaults(command=cmd_advise)


def cmd_advise(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.file, args.set)
    check_twin(scenario, args.file)  # before the folder is touched
    options = AdviseOptions(level=args.chance, draws=args.draws, outer=args.outcomes,
                            seed=args.seed, method=args.method, dispersion=args.dispersion,
                            setup_cny=args.setup_cost, budget_per_test=args.budget_per_test,
                            mode=args.mode, leave_out=not args.in_sample,
                            screen=args.screen)
    out = args.out if args.out is not None else default_out(scenario.name, suffix="-advice",
                                                            source=args.file)
    with open_folder(out, "advise") as folder:
        try:
            advice = advise(scenario, options, source=args.file,
                            progress=False if args.quiet else None)
        except Infeasible as exc:
            print(f"advise: {exc}", file=sys.stderr)
            return INFEASIBLE
        files = write_advice(advice, folder)
    if not args.quiet:
        print(advice_text(advice))
        print(f"\nwrote {', '.join(files)} to {out}")
    return OK
