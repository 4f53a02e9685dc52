"""Runs, comparisons and plans in worker processes, with live progress and cancel.

Each job is one process started from a fork server that has simdomain already
imported (so a job starts in milliseconds and never blocks the web server). The
worker writes its folder under ``runs/`` all at once (see
:func:`simdomain.outputs.staged`): a finished job's folder is complete whatever happens
to the server afterwards, and a cancelled or killed one leaves nothing. Workers die
with the server: on Linux the kernel sends them SIGTERM when their parent (the fork
server, which exits with the server) dies; elsewhere they watch their parent.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simdomain.studio import worker
from simdomain.studio.workspace import new_run_id

_CONTEXT: Any = None


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        _CONTEXT = mp.get_context(method)
        if method == "forkserver":
            _CONTEXT.set_forkserver_preload(["simdomain.studio.worker"])
    return _CONTEXT


@dataclass
class Job:
    """One worker's state, as the page sees it."""

    id: str
    kind: str
    command: str
    process: Any
    conn: Any
    status: str = "running"
    progress: float = 0.0
    label: str = "starting"
    problems: list[dict[str, str]] = field(default_factory=list)
    error: str = ""
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    def state(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "status": self.status,
                "progress": self.progress, "label": self.label, "problems": self.problems,
                "error": self.error, "command": self.command,
                "seconds": round(self.seconds or time.monotonic() - self.started, 2)}


class Jobs:
    """The running and recent jobs of one studio server.

    Parameters
    ----------
    runs
        The folder each job's output folder is written into.
    max_running
        Jobs allowed at once (more are refused with a message, not queued).
    """

    def __init__(self, runs: Path, max_running: int = 2) -> None:
        self.runs = runs
        self.max_running = max_running
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Start the fork server in the background now rather than at the first run."""
        if _context().get_start_method() == "forkserver":
            from multiprocessing import forkserver

            threading.Thread(target=forkserver.ensure_running, daemon=True).start()

    def start(self, kind: str, spec: dict[str, Any], command: Callable[[Path], str]) -> Job:
        """Start a job of ``kind`` (``run``, ``compare``, ``plan``) on ``spec``;
        ``command`` gives the CLI command that writes the same to a given folder."""
        with self._lock:
            running = sum(1 for j in self._jobs.values() if j.status == "running"
                          and self._poll(j) == "running")
            if running >= self.max_running:
                raise Busy(f"{running} runs are going already; wait for one or cancel it")
            run_id = new_run_id(kind)
            ctx = _context()
            parent, child = ctx.Pipe(duplex=False)
            text = command(self.runs / run_id)
            spec = {**spec, "command": text}
            process = ctx.Process(target=worker.main, args=(kind, spec, str(self.runs),
                                                            run_id, child), daemon=True)
            process.start()
            child.close()
            job = Job(run_id, kind, text, process, parent)
            self._jobs[run_id] = job
            return job

    def get(self, run_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(run_id)
            if job is not None:
                self._poll(job)
            return job

    def cancel(self, run_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(run_id)
            if job is not None and self._poll(job) == "running":
                job.process.terminate()
                job.process.join(5)
                if job.process.is_alive():
                    job.process.kill()
                    job.process.join(5)
                job.status, job.label = "cancelled", "cancelled; nothing was written"
                job.seconds = time.monotonic() - job.started
                job.conn.close()
            return job

    def shutdown(self) -> None:
        """Stop every running worker (their finished siblings' folders stay)."""
        for run_id in list(self._jobs):
            self.cancel(run_id)

    def _poll(self, job: Job) -> str:
        """Read the worker's messages; settle the job's status."""
        if job.status != "running":
            return job.status
        try:
            while job.conn.poll():
                message = job.conn.recv()
                what = message[0]
                if what == "progress":
                    job.progress, job.label = message[1], message[2]
                elif what == "done":
                    job.status, job.progress, job.label = "done", 1.0, "done"
                elif what == "problems":
                    job.status, job.problems, job.label = "failed", message[1], "bad input"
                elif what == "error":
                    job.status, job.error, job.label = "failed", message[1], "failed"
        except (EOFError, OSError):
            pass
        if job.status == "running" and not job.process.is_alive():
            job.status, job.label = "failed", "failed"
            job.error = job.error or f"the worker stopped (exit code {job.process.exitcode})"
        if job.status != "running":
            job.seconds = time.monotonic() - job.started
            job.process.join(1)
            job.conn.close()
        return job.status


class Busy(Exception):
    """Too many jobs at once."""
