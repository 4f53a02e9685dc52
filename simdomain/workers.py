"""Worker processes that end with their parent.

A pool's workers must not outlive the command that started them: after ``kill -9``
of the parent, nothing else would ever stop them (nor the resource tracker they keep
alive). :func:`die_with_parent` is a pool initializer: on Linux the kernel kills the
worker when its parent dies (``prctl(PR_SET_PDEATHSIG)``); everywhere a watchdog thread
polls the parent's pid once a second. Workers also ignore Ctrl-C, which the parent
handles (it stops them itself, so no worker prints a traceback).
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import sys
import threading
import time

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
