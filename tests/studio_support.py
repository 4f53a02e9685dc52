"""A studio server in a subprocess, for the studio's API and browser tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
MINIMAL = FIXTURES / "minimal.yaml"


class Studio:
    """``simdomain studio`` started as a user would, on a free port."""

    def __init__(self, out: Path, *sources: Path, extra: tuple[str, ...] = ()) -> None:
        self.out = out
        command = [sys.executable, "-m", "simdomain.cli", "studio",
                   *(str(s) for s in sources or (MINIMAL,)), "--port", "0",
                   "--out", str(out), *extra]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, start_new_session=True)
        line = self.process.stdout.readline()
        if "http://" not in line:
            self.stop()
            raise RuntimeError(f"the studio did not start: {line}{self.process.stderr.read()}")
        self.url = line.split()[3]
        self.base = self.url.split("?")[0].rstrip("/")

    def request(self, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
                data: bytes | None = None, method: str | None = None) -> tuple[int, Any]:
        """Status and JSON answer of ``path`` (a POST of ``body`` as JSON if given)."""
        all_headers = {"Content-Type": "application/json"} if body is not None else {}
        all_headers.update(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, headers=all_headers,
                                     method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw

    def wait(self, job_id: str, timeout: float = 60) -> dict[str, Any]:
        """The job's state once it is no longer running."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            _, state = self.request(f"/api/jobs/{job_id}")
            if state["status"] != "running":
                return state
            time.sleep(0.1)
        raise TimeoutError(job_id)

    def workers(self) -> list[int]:
        """Process ids of the server's descendants (its fork server and workers)."""
        found, frontier = [], [self.process.pid]
        while frontier:
            pid = frontier.pop()
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            found += [int(c) for c in children]
            frontier += [int(c) for c in children]
        return found

    def interrupt(self, timeout: float = 15) -> int:
        """Ctrl-C, as a user stops it; the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def wait_dead(pids: list[int], timeout: float = 10) -> list[int]:
    """The pids still alive after ``timeout``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and any(alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


def env_requires_browser() -> bool:
    return bool(os.environ.get("SIMDOMAIN_REQUIRE_BROWSER"))
