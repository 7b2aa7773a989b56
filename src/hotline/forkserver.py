"""A fork server for the test suite's station processes: ``hotline run`` without the
imports (about 2.5 s of CPU per station start).

Owns one process (``python -m hotline.forkserver``) that has imported what a station
needs, with no thread and no event loop running, and forks a child per request; the
child becomes ``python -m <module> <args>`` (its own argv, environment and working
directory, stdout and stderr appended to a file) and runs it as a new interpreter would,
to its exit. The server forks twice, so the station is re-parented to the process that
asked (``ForkServer`` makes it a child subreaper): a real child with a real PID that the
caller signals and waits on (``Forked``, the part of ``subprocess.Popen`` localnet uses).
Used by localnet only when asked (the tests); the demo and benchmarks start plain
processes. Must not touch: what a station does once started, nor any station's files.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: what the server imports before forking: what ``hotline run`` imports on SQLite and on
#: PostgreSQL (measured with ``-X importtime``), so that a child imports nothing heavy
PRELOAD = (
    "hotline.cli",
    "hotline.station",
    "hotline.standby",
    "sqlite3",
    "_strptime",
    "concurrent.futures.thread",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "sqlalchemy.dialects.postgresql.psycopg",
    "psycopg",
    "cryptography.hazmat.backends.openssl",
    "anyio.streams.memory",
    "anyio.streams.stapled",
    "anyio.streams.tls",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.websockets.auto",
    "uvicorn.lifespan.on",
    "uvicorn.loops.auto",
)

_PR_SET_CHILD_SUBREAPER = 36


class ForkServerError(RuntimeError):
    pass


class Forked:
    """A station process the fork server started, a child of this process (re-parented
    here): ``pid``, ``returncode``, ``poll``, ``wait``, ``send_signal``, ``terminate``
    and ``kill`` as ``subprocess.Popen`` has them."""

    def __init__(self, pid: int, args: Sequence[str]) -> None:
        self.pid = pid
        self.args = list(args)
        self.returncode: int | None = None
        self._lock = threading.Lock()

    def _reap(self, flags: int) -> int | None:
        with self._lock:
            if self.returncode is None:
                try:
                    pid, status = os.waitpid(self.pid, flags)
                except ChildProcessError:  # reaped elsewhere: its status is lost
                    self.returncode = 255
                else:
                    if pid == self.pid:
                        self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode

    def poll(self) -> int | None:
        return self._reap(os.WNOHANG)

    def wait(self, timeout: float | None = None) -> int:
        code = self.poll()
        if code is None and timeout is None:
            code = self._reap(0)
        elif code is None:
            fd = os.pidfd_open(self.pid)
            try:
                select.select([fd], [], [], timeout)
            finally:
                os.close(fd)
            code = self.poll()
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # not reaped: the PID is still ours
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """The client: starts the server (this process becomes a child subreaper) and asks it
    for processes, one request at a time."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise ForkServerError(f"prctl: {os.strerror(ctypes.get_errno())}")
        ours, theirs = socket.socketpair()
        self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "hotline.forkserver", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        theirs.close()
        self._sock = ours
        self._file = ours.makefile("rwb")
        self._lock = threading.Lock()
        line = self._file.readline()
        if line != b"ready\n":
            self.close()
            raise ForkServerError(f"the fork server did not start: {line!r}")

    def spawn(
        self, module: str, args: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: Path
    ) -> Forked:
        """``python -m module *args`` as a child of this process, stdout and stderr
        appended to ``log``."""
        request = {"module": module, "args": list(args), "env": dict(env)}
        request |= {"cwd": str(cwd), "log": str(log)}
        with self._lock:
            self._file.write(json.dumps(request).encode() + b"\n")
            self._file.flush()
            answer: dict[str, Any] = json.loads(self._file.readline() or b"{}")
        if "pid" not in answer:
            raise ForkServerError(f"the fork server did not start {module}: {answer}")
        return Forked(int(answer["pid"]), [sys.executable, "-m", module, *args])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        self._sock.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


# --- the server ---------------------------------------------------------------------


def _serve(fd: int) -> dict[str, Any] | None:
    """Answer requests until the client goes; in a station's process, return its request."""
    sock = socket.socket(fileno=fd)
    for name in PRELOAD:
        with contextlib.suppress(ImportError):  # not installed here: the child goes without
            importlib.import_module(name)
    if threading.active_count() != 1:  # a fork copies no thread: refuse to start
        sock.sendall(f"threads running: {threading.enumerate()}\n".encode())
        return None
    # what was imported stays out of the children's collections: a child's first full
    # collection would otherwise write to (copy) every page of the inherited heap
    gc.collect()
    gc.freeze()
    sock.sendall(b"ready\n")
    rfile = sock.makefile("rb")
    for line in rfile:
        request: dict[str, Any] = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        r, w = os.pipe()
        middle = os.fork()
        if middle == 0:  # the middle process: fork the station, say its PID, exit
            os.close(r)
            try:
                pid = os.fork()
            except OSError:
                os._exit(1)
            if pid == 0:
                os.close(w)
                rfile.close()
                sock.close()
                return request
            os.write(w, str(pid).encode())
            os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as pipe:
            pid_text = pipe.read()
        os.waitpid(middle, 0)  # the station is re-parented once the middle has exited
        answer = {"pid": int(pid_text)} if pid_text else {"error": "fork failed"}
        sock.sendall(json.dumps(answer).encode() + b"\n")
    return None


def _become(request: dict[str, Any]) -> None:
    """In the child: the argv, environment, working directory and stdio of the request."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    # as a new interpreter opens them: stdout block-buffered to a file, stderr by line
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, errors="backslashreplace", closefd=False)  # noqa: SIM115
    sys.argv = ["-m", *request["args"]]


def main() -> None:
    import runpy

    request = _serve(int(sys.argv[1]))
    if request is None:
        return
    _become(request)
    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
