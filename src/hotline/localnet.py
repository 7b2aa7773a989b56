"""Stations on loopback as real processes: for the demo, integration tests and benchmarks.

Owns creating station directories with free ports, pairing them (each adds the other's
card, offline), starting ``hotline run`` as child processes (new interpreters, or forked
from hotline/forkserver.py when ``use_fork_server`` asked: the tests), waiting until
their APIs answer, and stopping or killing them; for active/standby, a second process of a station
(``make_standby``: the keys and token copied, other ports, one PostgreSQL database) and
a TCP ``Balancer`` that sends each connection to whichever process's ``/health`` says
active, as a load balancer in front of a pair does. Must not touch: a station's
internals; it talks to a running station only through its operator API, like any operator.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from hotline.crypto.card import safety_number
from hotline.crypto.keys import create_station, load_station
from hotline.errors import ConfigError, HotlineError
from hotline.forkserver import Forked, ForkServer
from hotline.settings import CONFIG_FILE_NAME, Settings
from hotline.station import TOKEN_FILE, add_peer_offline, api_token, read_run_file

#: the lowest port picked for a station (below the kernel's ephemeral range)
LOW_PORT = 10_000
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


#: ``HOTLINE_PORT_SLICE="i/n"``: this process picks ports only in the i-th of n equal
#: slices of the range (the test suite gives each xdist worker its own, so two workers
#: never pick the same port between one's choosing it and its station binding it)
PORT_SLICE_ENV = "HOTLINE_PORT_SLICE"

_cursor_lock = threading.Lock()
_cursor: int | None = None

#: ``HOTLINE_TEST_FORK=0``: the test suite starts stations as plain processes instead of
#: forking them from a fork server (tests/conftest.py reads it; ``use_fork_server``)
FORK_ENV = "HOTLINE_TEST_FORK"

_fork_lock = threading.Lock()
_fork_wanted = False
_fork_server: ForkServer | None = None


def use_fork_server(on: bool = True) -> None:
    """Start stations from a fork server (hotline/forkserver.py: a process that has
    imported what a station needs) instead of a new interpreter each: for the tests, where
    stations start hundreds of times. Off by default (the demo, the benchmarks)."""
    global _fork_wanted
    _fork_wanted = on


def spawn_hotline(
    args: list[str], log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes] | Forked:
    """``python -m hotline *args`` as a child process, stdout and stderr appended to
    ``log``: forked from the fork server when ``use_fork_server`` asked for it."""
    full_env = {**os.environ, **(env or {})}
    forks = _forks()
    if forks is not None:
        return forks.spawn("hotline", args, env=full_env, cwd=Path.cwd(), log=log)
    with open(log, "ab") as out:  # the child has its own copy
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "hotline", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
        )


def _forks() -> ForkServer | None:
    global _fork_server
    if not _fork_wanted:
        return None
    with _fork_lock:
        if _fork_server is None:
            _fork_server = ForkServer()
            atexit.register(_fork_server.close)
        return _fork_server


def free_port() -> int:
    """A free TCP port on loopback for a station to listen on, outside the kernel's
    ephemeral range: a port the kernel hands out (bind to 0) may be taken by any outgoing
    connection (of another station, on a busy machine) before the station binds it; one
    below that range is only ever taken by a listener that asks for it. Within this
    process's slice (``HOTLINE_PORT_SLICE``) ports are handed out in turn from a random
    start, so a port chosen for a station that has not started yet is not handed out
    again until the slice wraps round; checked free by binding it."""
    low, high = _slice(LOW_PORT, _ephemeral_low())
    if high - low >= 100:
        global _cursor
        with _cursor_lock:
            for _ in range(min(high - low, 1000)):
                if _cursor is None or not low <= _cursor < high:
                    _cursor = low + secrets.randbelow(high - low)
                port = _cursor
                _cursor = low + (_cursor + 1 - low) % (high - low)
                with socket.socket() as s:
                    try:
                        s.bind(("127.0.0.1", port))
                    except OSError:
                        continue
                    return port
    with socket.socket() as s:  # no room below the range: the kernel's choice
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _slice(low: int, high: int) -> tuple[int, int]:
    """The part of [low, high) that ``HOTLINE_PORT_SLICE`` gives this process (all of it
    when unset or malformed)."""
    raw = os.environ.get(PORT_SLICE_ENV, "")
    index_s, _, count_s = raw.partition("/")
    try:
        index, count = int(index_s), int(count_s)
    except ValueError:
        return low, high
    if not 0 <= index < count or high <= low:
        return low, high
    size = (high - low) // count
    return low + index * size, low + (index + 1) * size


def _ephemeral_low() -> int:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


@dataclass
class LocalStation:
    station_id: str
    data_dir: Path
    api_port: int
    peer_port: int
    extra_settings: dict[str, Any] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | Forked | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir)

    def client(self, timeout: float = 30) -> httpx.Client:
        token = (self.data_dir / TOKEN_FILE).read_text().strip()
        return httpx.Client(
            base_url=self.api_url,
            headers={"authorization": f"Bearer {token}"},
            timeout=timeout,
            trust_env=False,
        )

    def _spawn(self, env: Mapping[str, str] | None) -> subprocess.Popen[bytes] | Forked:
        if self.proc is not None and self.proc.poll() is None:
            raise ConfigError(f"{self.station_id} is already running")
        self.proc = spawn_hotline(
            ["run", "--data-dir", str(self.data_dir)], self.data_dir / "station.log", env
        )
        return self.proc

    def start(self, env: Mapping[str, str] | None = None, wait_s: float = 60) -> None:
        self._spawn(env)
        self.wait_ready(wait_s)

    def start_standby(self, env: Mapping[str, str] | None = None, wait_s: float = 60) -> None:
        """Start a process that waits as a standby: ready when ``/health`` says so."""
        proc = self._spawn(env)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = (self.data_dir / "station.log").read_text(errors="replace")[-2000:]
                raise ConfigError(f"station {self.station_id} exited at start:\n{tail}")
            if self.role() == "standby":
                return
            time.sleep(0.05)
        raise ConfigError(f"standby {self.station_id} did not come up in {wait_s:.0f}s")

    def role(self) -> str | None:
        """The process's role from ``/health`` (None: it does not answer)."""
        try:
            with httpx.Client(base_url=self.api_url, timeout=2, trust_env=False) as c:
                role: str = c.get("/health").json()["role"]
                return role
        except (httpx.HTTPError, ValueError, KeyError):
            return None

    def wait_ready(self, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                tail = (self.data_dir / "station.log").read_text(errors="replace")[-2000:]
                raise ConfigError(f"station {self.station_id} exited at start:\n{tail}")
            run = read_run_file(self.data_dir)
            if run is not None and self.proc is not None and run.get("pid") == self.proc.pid:
                try:
                    with self.client(timeout=2) as c:
                        if c.get("/api/v1/status").status_code == 200:
                            return
                except httpx.HTTPError:
                    pass
            time.sleep(0.05)
        raise ConfigError(f"station {self.station_id} did not come up in {wait_s:.0f}s")

    def stop(self, timeout: float = 20) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """kill -9: no shutdown, no flush; the store must cope."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        (self.data_dir / "run.json").unlink(missing_ok=True)

    def api_status(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        """The status and JSON body of one API call, whatever the status."""
        with self.client() as c:
            r = c.request(method, path, **kw)
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, r.text

    def api(self, method: str, path: str, **kw: Any) -> Any:
        with self.client() as c:
            r = c.request(method, path, **kw)
        if r.status_code >= 400:
            raise HotlineError(
                f"{self.station_id} {method} {path}: {r.status_code} {r.text}", code="api_error"
            )
        return r.json()


def make_station(
    root: Path,
    station_id: str,
    *,
    settings: Mapping[str, Any] | None = None,
    endpoint_host: str = "127.0.0.1",
    ports: tuple[int, int] | None = None,
    endpoint_port: int | None = None,
) -> LocalStation:
    """A new station in ``root/station_id``: its card names ``https://endpoint_host:peer
    port`` (or ``endpoint_port``: a ``Cable`` in front of the peer port); ``ports`` (API,
    peer) are free loopback ports unless given (a station in its own network namespace has
    every port to itself)."""
    data_dir = root / station_id
    data_dir.mkdir(parents=True, exist_ok=True)
    api_port, peer_port = ports or (free_port(), free_port())
    create_station(
        data_dir,
        station_id,
        station_id.capitalize(),
        [f"https://{endpoint_host}:{endpoint_port or peer_port}"],
    )
    lines = [f"api_port = {api_port}", f"peer_port = {peer_port}"]
    for k, v in (settings or {}).items():
        lines.append(f"{k} = {_toml(v)}")
    (data_dir / CONFIG_FILE_NAME).write_text("\n".join(lines) + "\n")
    api_token(data_dir)
    return LocalStation(station_id, data_dir, api_port, peer_port, dict(settings or {}))


def make_standby(
    active: LocalStation, name: str, *, settings: Mapping[str, Any] | None = None
) -> LocalStation:
    """A second process of ``active``'s station: its data files copied (keys, token,
    settings) into a sibling directory, its own ports, the same database."""
    data_dir = active.data_dir.parent / name
    shutil.copytree(active.data_dir, data_dir, ignore=shutil.ignore_patterns("*.log", "run.json"))
    api_port, peer_port = free_port(), free_port()
    merged = {**active.extra_settings, **(settings or {})}
    lines = [f"api_port = {api_port}", f"peer_port = {peer_port}"]
    lines += [f"{k} = {_toml(v)}" for k, v in merged.items()]
    (data_dir / CONFIG_FILE_NAME).write_text("\n".join(lines) + "\n")
    return LocalStation(active.station_id, data_dir, api_port, peer_port, merged)


def move_ports(st: LocalStation, api_port: int, peer_port: int) -> None:
    """Listen on other ports (the card keeps naming the old peer port: a balancer's)."""
    st.api_port, st.peer_port = api_port, peer_port
    lines = [f"api_port = {api_port}", f"peer_port = {peer_port}"]
    lines += [f"{k} = {_toml(v)}" for k, v in st.extra_settings.items()]
    (st.data_dir / CONFIG_FILE_NAME).write_text("\n".join(lines) + "\n")


class Balancer:
    """A TCP load balancer on loopback for an active/standby pair: each connection goes
    to the process whose ``/health`` answered 200 last (checked every ``check_s``); with
    none, the connection is closed at once. Bytes are passed through untouched (TLS ends
    at the station)."""

    def __init__(self, port: int, backends: list[tuple[str, int]], check_s: float = 0.05) -> None:
        """``backends``: (health URL base, port to forward to) of each process."""
        self.port = port
        self._backends = backends
        self._check_s = check_s
        self.active: int | None = None
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self._sock.settimeout(0.2)
        self._threads = [
            threading.Thread(target=self._check, daemon=True, name="balancer-check"),
            threading.Thread(target=self._accept, daemon=True, name="balancer-accept"),
        ]
        for t in self._threads:
            t.start()

    def _check(self) -> None:
        with httpx.Client(timeout=1, trust_env=False) as c:
            while not self._stop.is_set():
                chosen = None
                for base, port in self._backends:
                    with contextlib.suppress(httpx.HTTPError):
                        if c.get(f"{base}/health").status_code == 200:
                            chosen = port
                            break
                self.active = chosen
                self._stop.wait(self._check_s)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            port = self.active
            if port is None:
                conn.close()
                continue
            try:
                up = socket.create_connection(("127.0.0.1", port), timeout=2)
            except OSError:
                conn.close()
                continue
            up.settimeout(None)
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        for t in self._threads:
            t.join(5)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        src.close()  # each direction's thread closes the socket it reads


def pair(a: LocalStation, b: LocalStation) -> str:
    """Each station adds the other's card (offline); returns the pair's safety number."""
    ca, cb = load_station(a.data_dir).card(), load_station(b.data_dir).card()
    add_peer_offline(a.settings(), cb.to_text(), "localnet")
    add_peer_offline(b.settings(), ca.to_text(), "localnet")
    return safety_number(ca, cb)


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


class Cable:
    """A cable that can be cut: a TCP forwarder on loopback from ``port`` to ``target``
    (bytes passed through untouched, TLS ends at the station). ``cut`` closes every
    connection through it and refuses new ones at once, as a cut line does; ``heal`` lets
    them through again. For the demo and tests: it stands in front of a station's peer
    port (the card names the cable's port) or of a relay."""

    def __init__(self, target: int, port: int | None = None) -> None:
        self.port = port or free_port()
        self.target = target
        self._up = threading.Event()
        self._up.set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._sock = socket.create_server(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept, daemon=True, name="cable")
        self._thread.start()

    @property
    def is_cut(self) -> bool:
        return not self._up.is_set()

    def cut(self) -> None:
        self._up.clear()
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def heal(self) -> None:
        self._up.set()

    def close(self) -> None:
        self._stop.set()
        self.cut()
        self._thread.join(2)
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            if not self._up.is_set():
                conn.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=2)
            except OSError:
                conn.close()
                continue
            with self._lock:
                self._conns += [conn, upstream]
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            src.settimeout(None)
            while self._up.is_set():
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        for c in (src, dst):
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
