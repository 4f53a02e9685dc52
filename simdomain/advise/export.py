"""The ranked tests as files and as a printed table."""

from __future__ import annotations

import json
from pathlib import Path

from simdomain.advise.ranking import Advice
from simdomain.outfolder import OutputFolder
from simdomain.planner.export import json_ready
from simdomain.tables import layout

FILES = ["advice.csv", "advice.json"]


def write_advice(advice: Advice, folder: OutputFolder) -> list[str]:
    """Write ``advice.csv`` (the ranked tests) and ``advice.json`` (the plan now, the
    levers, the run) into ``folder`` at once (staged, then swapped in)."""
    with folder.stage() as scratch:
        advice.table.to_csv(Path(scratch) / "advice.csv", index=False)
        (Path(scratch) / "advice.json").write_text(
            json.dumps(json_ready(advice.summary()), indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8")
    return FILES


def advice_text(advice: Advice, top: int = 15) -> str:
    """The plan now, the levers and the ``top`` tests, for a terminal."""
    o = advice.options
    lines = [(f"plan now: ¥{advice.now.cost:,.0f}, every target met with chance "
             f"{o.level:.0%} over {o.draws} parameter draws ({o.method})")]
    if advice.levers:
        lines.append("uncertain levers (spread across the draws; value of perfect "
                     "information):")
        lines += [f"  {lev['lever']}: {lev['spread']:.1%}; ¥{lev['evpi_cny']:,.0f} ± "
                  f"{lev['evpi_se_cny']:,.0f}" for lev in advice.levers]
    lines += advice.notes
    table = advice.table.head(top)
    if table.empty:
        lines.append("no test to offer")
        return "\n".join(lines)
    rows = [["#", "lever", "design", "cost", "EVSI ± se", "chance", "net"]]
    rows += [[f"{r.rank}{'=' if r.tied_with_above else ''}", r.lever[:26], r.design[:56],
              f"¥{r.cost_cny:,.0f}", f"¥{r.evsi_cny:,.0f} ± {r.evsi_se_cny:,.0f}",
              f"{r.chance_gain:+.1%}", f"¥{r.net_value_cny:,.0f}"] for r in table.itertuples()]
    lines.append("\n" + layout(rows, left=3))
    lines.append(f"\n'=': within two standard errors of the test above (J = {o.outer} "
                 f"outcomes per test, {advice.solves} re-solves, {advice.seconds:.0f} s)")
    return "\n".join(lines)
