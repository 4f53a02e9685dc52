"""What a worker process does: simulate, compare or plan, and write the run's folder.

Imported by the fork server ahead of time, so it imports the whole engine (but no
web framework). Progress goes back over a pipe as ``("progress", fraction, label)``;
the end as ``("done",)``, ``("problems", [...])`` (bad input) or ``("error", text)``.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from typing_extensions import Self

import simdomain.simulation
from simdomain.compare import compare
from simdomain.errors import InputError
from simdomain.outputs import staged, write_result
from simdomain.planner import PlanOptions, plan, verify
from simdomain.planner.export import write_plan
from simdomain.scenario.io import load_scenario
from simdomain.simulation import simulate
from simdomain.studio.levers import problems_json
from simdomain.studio.workspace import META, slug


def main(kind: str, spec: dict[str, Any], runs: str, run_id: str, conn: Any) -> None:
    """Do job ``kind`` on ``spec``; write ``runs/run_id`` all at once."""
    _die_with_parent()
    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's; it stops us
    reporter = Reporter(conn, phases=max(1, len(spec.get("variants") or {}) + 1)
                        if kind == "compare" else 1)
    simdomain.simulation.tqdm = reporter.bar  # simulate's progress bar reports to the page
    try:
        with staged(runs) as scratch:
            folder = scratch / run_id
            folder.mkdir()
            WORK[kind](spec, folder, reporter)
            meta = {k: spec.get(k) for k in ("scenario", "source", "overrides", "variants",
                                             "seed", "reps", "command")}
            meta.update(kind=kind, id=run_id, finished=time.strftime("%Y-%m-%d %H:%M:%S"))
            (folder / META).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
        conn.send(("done",))
    except InputError as exc:
        conn.send(("problems", problems_json(exc)))
    except SystemExit:
        return
    except Exception as exc:  # noqa: BLE001 - reported to the page, the server goes on
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _run(spec: dict[str, Any], folder: Path, reporter: Reporter) -> None:
    scenario = load_scenario(spec["source"], spec["overrides"])
    result = simulate(scenario, seed=spec["seed"], reps=spec["reps"], keep_agents=False,
                      progress=True)
    reporter.say(0.99, "writing")
    write_result(result, folder)


def _compare(spec: dict[str, Any], folder: Path, reporter: Reporter) -> None:
    variants = {"base": load_scenario(spec["source"])}
    for name, overrides in spec["variants"].items():
        variants[name] = load_scenario(spec["source"], overrides)
    comparison = compare(variants, seed=spec["seed"], reps=spec["reps"], progress=True)
    reporter.say(0.99, "writing")
    comparison.table.to_csv(folder / "comparison.csv", index=False)
    for i, (name, result) in enumerate(comparison.results.items()):
        write_result(result, folder / "variants" / f"{i}-{slug(name)}")


def _plan(spec: dict[str, Any], folder: Path, reporter: Reporter) -> None:
    scenario = load_scenario(spec["source"], spec["overrides"])
    reporter.say(-1.0, "planning")
    result = plan(scenario, PlanOptions(), seed=spec["seed"])
    verification = None
    if result.optimal and spec.get("verify"):
        verification = verify(result, reps=spec["verify"], seed=spec["seed"], progress=True)
    write_plan(result, folder, verification=verification)


WORK = {"run": _run, "compare": _compare, "plan": _plan}


class Reporter:
    """Sends progress over the pipe, at most ten times a second."""

    def __init__(self, conn: Any, phases: int = 1) -> None:
        self.conn = conn
        self.phases = phases
        self.phase = -1
        self.last = 0.0

    def say(self, fraction: float, label: str, force: bool = True) -> None:
        now = time.monotonic()
        if force or now - self.last >= 0.1:
            self.last = now
            self.conn.send(("progress", fraction, label))

    def bar(self, total: int | None = None, desc: str = "", **_: Any) -> _Bar:
        """A stand-in for ``tqdm(...)`` whose updates report a share of the job."""
        self.phase = min(self.phase + 1, self.phases - 1)
        return _Bar(self, total or 1, desc, self.phase)


class _Bar:
    def __init__(self, reporter: Reporter, total: int, desc: str, phase: int) -> None:
        self.reporter, self.total, self.desc, self.phase, self.n = reporter, total, desc, phase, 0
        self.postfix = ""
        reporter.say(phase / reporter.phases, f"{desc}: starting")

    def update(self, n: int = 1) -> None:
        self.n += n
        share = (self.phase + min(self.n / self.total, 1.0)) / self.reporter.phases
        self.reporter.say(share, f"{self.desc} {self.postfix}".strip(),
                          force=self.n >= self.total)

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds `staged`, which removes its scratch folder


def _die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the parent dies (Linux); else watch the parent."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
        else:
            if os.getppid() != parent:  # the parent died before the request
                os._exit(1)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()
