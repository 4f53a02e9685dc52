"""Worker processes that end with their parent, and the clusters tasks run on.

A pool's workers must not outlive the command that started them: after ``kill -9``
of the parent, nothing else would ever stop them (nor the resource tracker they keep
alive). :func:`die_with_parent` is a pool initializer: on Linux the kernel kills the
worker when its parent dies (``prctl(PR_SET_PDEATHSIG)``); everywhere a watchdog thread
polls the parent's pid once a second. Workers also ignore Ctrl-C, which the parent
handles (it stops them itself, so no worker prints a traceback).

:func:`open_cluster` gives one interface (:class:`Cluster`) over three places to run
tasks: this process, a pool of such local processes, or a ``dask.distributed``
scheduler's workers.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, Protocol

from simdomain.errors import InputError, Problem

_PR_SET_PDEATHSIG = 1
_ADDRESS = re.compile(r"^((tcp|tls|ws|wss|ucx)://)?(\[[0-9a-fA-F:]+\]|[\w.-]+):\d{1,5}/?$|"
                      r"^inproc://\S+$")
POLL_SECONDS = 1.0
"""How often the watchdog checks that the parent is alive."""


def die_with_parent(parent: int) -> None:
    """End this process when process ``parent`` (its parent) ends; ignore Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still ends it
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="parent-watchdog", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    os._exit(1)


def is_scheduler_address(text: str) -> bool:
    """Whether ``text`` looks like a Dask scheduler address: ``[PROTOCOL://]HOST:PORT``."""
    match = _ADDRESS.match(text)
    return match is not None and (text.startswith("inproc://")
                                  or 0 < int(text.rstrip("/").rsplit(":", 1)[1]) < 65536)


CONNECT_SECONDS = 10
"""How long to try to reach a Dask scheduler."""


class Cluster(Protocol):
    """Where tasks run: this process, local worker processes, or a Dask cluster.

    Tasks are functions of picklable arguments (except in this process); their results
    come back through :meth:`as_completed`, in any order.
    """

    workers: int
    """Tasks that run at once."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        """Start ``fn(*args)``; return a future (``.result()`` gives its value)."""

    def as_completed(self, futures: list[Any]) -> Iterator[Any]:
        """The ``futures`` as they finish; a future yielded is no longer held (so its
        result can be freed once the caller drops it)."""

    def cancel(self, futures: list[Any]) -> None:
        """Stop the ``futures`` not yet finished (after Ctrl-C or an error)."""

    def close(self) -> None:
        """Release the workers."""


class _Deferred(Future):
    """A future that runs its task only when it is waited for (in this process)."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        super().__init__()
        self._task = fn, args

    def run(self) -> None:
        fn, args = self._task
        try:
            self.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - handed to whoever asks for the result
            self.set_exception(exc)


class InProcess:
    """Tasks run one after the other in this process, each when its turn comes (so only
    one task's data is alive at a time)."""

    workers = 1

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        return _Deferred(fn, args)

    def as_completed(self, futures: list[Any]) -> Iterator[Any]:
        return _run_each(deque(futures))

    def cancel(self, futures: list[Any]) -> None:
        for future in futures:
            future.cancel()

    def close(self) -> None:
        """Nothing to release."""


def _run_each(queue: deque[_Deferred]) -> Iterator[_Deferred]:
    """Run and yield each future, holding none that was yielded (nor its result)."""
    while queue:
        future = queue.popleft()
        if not future.done():
            future.run()
        yield future


def _each_done(pending: set[Future]) -> Iterator[Future]:
    """Yield futures as they finish, holding none that was yielded (nor its result)."""
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        while done:
            yield done.pop()


class LocalProcesses:
    """A pool of fresh (spawned) local processes that end with this one and ignore
    Ctrl-C (this process stops them)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=die_with_parent, initargs=(os.getpid(),))

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        return self.pool.submit(fn, *args)

    def as_completed(self, futures: list[Any]) -> Iterator[Any]:
        return _each_done(set(futures))

    def cancel(self, futures: list[Any]) -> None:
        """Stop every worker now (a running task cannot be cancelled otherwise)."""
        terminate(self.pool)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskCluster:
    """The workers of a ``dask.distributed`` scheduler (they need simdomain installed)."""

    def __init__(self, address: str) -> None:
        problem = _scheduler_problem(address)
        if problem:
            raise InputError([Problem("--scheduler", (), problem)])
        try:
            from distributed import Client
        except ImportError:
            raise InputError([Problem("--scheduler", (), "needs dask.distributed: "
                                      "pip install 'simdomain[cluster]'")]) from None
        quiet = logging.getLogger("distributed")
        level, quiet.level = quiet.level, logging.CRITICAL  # the message below says it all
        try:
            self.client = Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError([Problem("--scheduler", (), f"cannot connect to {address}: "
                                                         f"{exc}")]) from None
        finally:
            quiet.setLevel(level)
        self.workers = max(1, sum(self.client.nthreads().values()))

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False)

    def as_completed(self, futures: list[Any]) -> Iterator[Any]:
        from distributed import as_completed

        return iter(as_completed(futures, loop=self.client.loop))

    def cancel(self, futures: list[Any]) -> None:
        self.client.cancel(futures)

    def close(self) -> None:
        self.client.close()


def _scheduler_problem(address: str) -> str | None:
    if is_scheduler_address(address):
        return None
    return (f"{address!r} is not a scheduler address; expected tcp://HOST:PORT, "
            "e.g. tcp://10.0.0.5:8786")


def terminate(pool: ProcessPoolExecutor) -> None:
    """Stop a process pool's workers now, pending and running tasks with them."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=5)


def cores() -> int:
    """Cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextmanager
def open_cluster(scheduler: str | None = None, workers: int | None = None,
                 tasks: int | None = None) -> Iterator[Cluster]:
    """The cluster to run tasks on, released on leaving the block.

    Parameters
    ----------
    scheduler
        Address of a ``dask.distributed`` scheduler (``tcp://host:port``).
    workers
        Local worker processes (without ``scheduler``); default: the cores available,
        at most ``tasks``. One runs the tasks in this process.
    tasks
        How many tasks there will be (no more local processes are started).

    Raises
    ------
    InputError
        If the address is malformed, dask.distributed is missing or the scheduler cannot
        be reached (before any work starts), or ``workers`` is given with ``scheduler``.
    """
    if scheduler is not None and workers is not None:
        raise InputError([Problem("--workers", (), "applies to local runs; a Dask cluster "
                                                   "has its own workers")])
    if workers is not None and workers < 1:
        raise InputError([Problem("--workers", (), f"expected at least 1, got {workers}")])
    cluster: Cluster
    if scheduler is not None:
        cluster = DaskCluster(scheduler)
    else:
        count = min(workers or cores(), tasks or cores())
        cluster = InProcess() if count <= 1 else LocalProcesses(count)
    try:
        yield cluster
    finally:
        cluster.close()
