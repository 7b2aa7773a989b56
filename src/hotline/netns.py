"""Stations in Linux network namespaces with real faults on the line: for the fault tests
(tests/netns) and the failover benchmark (bench/_failover.py) only; no station code
imports it.

Owns one topology per run: three namespaces (station A, station B, relay R) whose names
carry a random run id (two test workers never collide), joined by veth pairs made inside
them (A<->B is the HTTPS path; A<->R and B<->R the relay path), a ``nats-server`` with
JetStream in R when asked for, ``hotline run`` processes in A and B, the tc netem faults
on both ends of A<->B (``drop``, ``delay``, ``reorder``, ``blackhole``, ``heal``), and
tearing all of it down. Where the kernel has no sch_netem (this development VM has none,
nor tc actions nor nftables), A<->B is a pair of tun devices joined by ``Shuttle``, a
userspace netem with the same knobs; ``Topology.faults`` says which one a run used.
Addresses are 10.77.x.y/30 inside those namespaces only; the root namespace's
interfaces, routes and qdiscs are never touched.

How the test reaches a station's operator API (bound on its namespace's loopback): a
worker thread of the test process enters the namespace (``setns(2)`` changes only the
calling thread) and makes every API call of that station, so ``127.0.0.1`` there is the
namespace's loopback. No forwarder, no extra process, nothing listening in the root
namespace.

Must not touch: a station's internals (it talks to stations through their operator API,
like localnet.py), any namespace or process it did not create.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import heapq
import os
import random
import secrets
import select
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hotline import localnet
from hotline.errors import ConfigError
from hotline.localnet import LocalStation

T = TypeVar("T")

IP = shutil.which("ip") or "/usr/sbin/ip"
TC = shutil.which("tc") or "/usr/sbin/tc"
NATS_SERVER = "/usr/sbin/nats-server"
NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000

#: ports inside each station's namespace (it has them to itself)
API_PORT, PEER_PORT, NATS_PORT = 8470, 8471, 4222

#: the /30 of each veth pair: (first end's address, second end's address)
AB = ("10.77.1.1", "10.77.1.2")  # A <-> B, the HTTPS path
AR = ("10.77.2.1", "10.77.2.2")  # A <-> R
BR = ("10.77.3.1", "10.77.3.2")  # B <-> R


def unavailable() -> str | None:
    """Why namespaces with netem cannot be built here, or None when they can."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces and tc netem need root"
    if shutil.which("ip") is None and not Path(IP).exists():
        return "iproute2 (ip) is not installed"
    if shutil.which("tc") is None and not Path(TC).exists():
        return "iproute2 (tc) is not installed"
    probe = f"hlprobe{secrets.token_hex(3)}"
    made = _run(IP, "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    try:
        q = _run(IP, "-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1",
                 check=False)  # fmt: skip
        if q.returncode != 0:
            return f"cannot make a veth pair: {q.stderr.strip()}"
    finally:
        _run(IP, "netns", "del", probe, check=False)
    if not Path("/dev/net/tun").exists() and netem_unavailable() is not None:
        return "neither tc netem nor /dev/net/tun (for the userspace fault shuttle) is here"
    return None


_netem_reason: list[str | None] = []


def netem_unavailable() -> str | None:
    """Why the kernel cannot do tc netem (no sch_netem), or None when it can (probed once,
    in a namespace of our own)."""
    if not _netem_reason:
        probe = f"hlprobe{secrets.token_hex(3)}"
        reason: str | None = None
        if _run(IP, "netns", "add", probe, check=False).returncode != 0:
            reason = "ip netns add failed"
        else:
            try:
                _run(IP, "-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1",
                     check=False)  # fmt: skip
                q = _run(TC, "-n", probe, "qdisc", "add", "dev", "p0", "root", "netem", "loss",
                         "1%", check=False)  # fmt: skip
                if q.returncode != 0:
                    reason = f"tc netem: {q.stderr.strip()}"
            finally:
                _run(IP, "netns", "del", probe, check=False)
        _netem_reason.append(reason)
    return _netem_reason[0]


def nats_unavailable() -> str | None:
    return None if Path(NATS_SERVER).exists() else f"{NATS_SERVER} is not installed"


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    if check and done.returncode != 0:
        raise ConfigError(f"{' '.join(cmd)}: {done.stderr.strip()}")
    return done


def _enter(name: str) -> None:
    """Move the calling thread into namespace ``name`` (only this thread)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(NETNS_DIR / name, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({name}): {os.strerror(err)}")
    finally:
        os.close(fd)


TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000


def _open_tun(name: str) -> int:
    """A tun device ``name`` in the calling thread's namespace; it lives as long as the
    returned descriptor (closing it removes the device)."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    except BaseException:
        os.close(fd)
        raise
    return fd


class Shuttle:
    """A userspace netem between two tun devices (one in A, one in B), for kernels
    without sch_netem: every IP packet read from one is written to the other, or dropped
    (``loss``), or held ``delay_s`` ± ``jitter_s`` (packets that draw ``reorder`` go at
    once, overtaking the held ones, as netem's reorder does). A daemon thread of the
    process that made the topology; ``close`` stops it and removes both devices."""

    def __init__(self, fd_a: int, fd_b: int) -> None:
        self.fds = (fd_a, fd_b)
        self.loss = self.delay_s = self.jitter_s = self.reorder = 0.0
        self._rng = random.Random()  # noqa: S311 - fault injection, not security
        self._lock = threading.Lock()
        self._held: list[tuple[float, int, int, bytes]] = []
        self._seq = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="netns-shuttle", daemon=True)
        self._thread.start()

    def set(self, *, loss: float = 0, delay_s: float = 0, jitter_s: float = 0,
            reorder: float = 0) -> None:  # fmt: skip
        with self._lock:
            self.loss, self.delay_s, self.jitter_s, self.reorder = loss, delay_s, jitter_s, reorder

    def _run(self) -> None:
        fa, fb = self.fds
        while not self._stop.is_set():
            now = time.monotonic()
            wait = 0.05 if not self._held else min(0.05, max(0.0, self._held[0][0] - now))
            try:
                ready, _, _ = select.select([fa, fb], [], [], wait)
            except (OSError, ValueError):
                return
            for fd in ready:
                try:
                    pkt = os.read(fd, 65536)
                except OSError:
                    continue
                self._pass(pkt, fb if fd == fa else fa)
            now = time.monotonic()
            while self._held and self._held[0][0] <= now:
                _, _, dst, pkt = heapq.heappop(self._held)
                self._write(dst, pkt)

    def _pass(self, pkt: bytes, dst: int) -> None:
        with self._lock:
            loss, delay, jitter, reorder = self.loss, self.delay_s, self.jitter_s, self.reorder
        rng = self._rng
        if loss and rng.random() < loss:
            return
        hold = 0.0
        if delay and not (reorder and rng.random() < reorder):
            hold = max(0.0, delay + rng.uniform(-jitter, jitter))
        if hold <= 0:
            self._write(dst, pkt)
            return
        self._seq += 1
        heapq.heappush(self._held, (time.monotonic() + hold, self._seq, dst, pkt))

    @staticmethod
    def _write(fd: int, pkt: bytes) -> None:
        with contextlib.suppress(OSError):  # the other end is down: the packet is lost
            os.write(fd, pkt)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)


@dataclass
class Netns:
    """One namespace we made, and the thread that makes calls from inside it."""

    name: str
    _pool: ThreadPoolExecutor | None = None

    def call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run ``fn`` in a thread inside this namespace (its sockets are made there)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                1, thread_name_prefix=f"ns-{self.name}", initializer=_enter, initargs=(self.name,)
            )
        return self._pool.submit(fn, *args, **kw).result()

    def popen(self, argv: list[str], log: Path, env: Mapping[str, str] | None = None
              ) -> subprocess.Popen[bytes]:  # fmt: skip
        """Start ``argv`` inside the namespace (``ip netns exec`` execs it in place, so the
        pid is the program's own)."""
        with open(log, "ab") as out:
            return subprocess.Popen(  # noqa: S603 - our own commands
                [IP, "netns", "exec", self.name, *argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


@dataclass
class NsStation:
    """A station whose process runs in ``ns``; its operator API is reached from inside."""

    local: LocalStation
    ns: Netns
    address: str  # its end of the HTTPS path

    @property
    def station_id(self) -> str:
        return self.local.station_id

    @property
    def data_dir(self) -> Path:
        return self.local.data_dir

    @property
    def running(self) -> bool:
        return self.local.proc is not None and self.local.proc.poll() is None

    def start(self, wait_s: float = 60) -> None:
        if self.running:
            raise ConfigError(f"{self.station_id} is already running")
        argv = [sys.executable, "-m", "hotline", "run", "--data-dir", str(self.data_dir)]
        self.local.proc = self.ns.popen(argv, self.data_dir / "station.log")
        self.ns.call(self.local.wait_ready, wait_s)

    def stop(self, timeout: float = 10) -> None:
        self.local.stop(timeout)

    def kill(self) -> None:
        self.local.kill()

    def api(self, method: str, path: str, **kw: Any) -> Any:
        """One operator API call, made from inside the station's namespace."""
        return self.ns.call(self.local.api, method, path, **kw)


@dataclass
class Topology:
    """Stations ``alpha`` (in A) and ``bravo`` (in B), a relay namespace R, the veth
    pairs between them and the faults on A<->B. Use as a context manager (or call
    ``close``): it kills what it started and deletes its namespaces even when a test
    fails."""

    root: Path
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    a: Netns = field(init=False)
    b: Netns = field(init=False)
    r: Netns = field(init=False)
    stations: list[NsStation] = field(default_factory=list)
    nats: subprocess.Popen[bytes] | None = None
    #: how faults are made on A<->B: "netem" (veth pair, tc netem on both ends) or
    #: "shuttle" (tun devices joined by ``Shuttle``); default: netem where the kernel has it
    faults: str = ""
    shuttle: Shuttle | None = None
    _made: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.a, self.b, self.r = (Netns(f"hl{self.run_id}{x}") for x in "abr")

    # --- building -------------------------------------------------------------------

    def build(self) -> Topology:
        for ns in (self.a, self.b, self.r):
            _run(IP, "netns", "add", ns.name)
            self._made.append(ns.name)
            _run(IP, "-n", ns.name, "link", "set", "lo", "up")
        if not self.faults:
            self.faults = os.environ.get("HOTLINE_NETNS_FAULTS") or (
                "netem" if netem_unavailable() is None else "shuttle"
            )
        if self.faults == "netem":
            self._veth(self.a, "ab0", AB[0], self.b, "ba0", AB[1])
        else:
            fds = (self.a.call(_open_tun, "ab0"), self.b.call(_open_tun, "ba0"))
            self.shuttle = Shuttle(*fds)
            for ns, dev, addr in ((self.a, "ab0", AB[0]), (self.b, "ba0", AB[1])):
                _run(IP, "-n", ns.name, "addr", "add", f"{addr}/30", "dev", dev)
                _run(IP, "-n", ns.name, "link", "set", dev, "up")
        self._veth(self.a, "ar0", AR[0], self.r, "ra0", AR[1])
        self._veth(self.b, "br0", BR[0], self.r, "rb0", BR[1])
        return self

    def _veth(self, x: Netns, xi: str, xa: str, y: Netns, yi: str, ya: str) -> None:
        """A veth pair made inside ``x`` with its peer end moved straight into ``y``."""
        _run(IP, "-n", x.name, "link", "add", xi, "type", "veth", "peer", "name", yi,
             "netns", y.name)  # fmt: skip
        for ns, dev, addr in ((x, xi, xa), (y, yi, ya)):
            _run(IP, "-n", ns.name, "addr", "add", f"{addr}/30", "dev", dev)
            _run(IP, "-n", ns.name, "link", "set", dev, "up")

    def __enter__(self) -> Topology:
        try:
            return self.build()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill every process we started, then delete our namespaces (and their veths)."""
        for st in self.stations:
            with contextlib.suppress(Exception):
                st.kill()
        if self.nats is not None:
            with contextlib.suppress(Exception):
                self.nats.kill()
                self.nats.wait(10)
            self.nats = None
        if self.shuttle is not None:
            self.shuttle.close()
            self.shuttle = None
        for ns in (self.a, self.b, self.r):
            ns.close()
        for name in reversed(self._made):
            _run(IP, "netns", "del", name, check=False)
        self._made.clear()

    # --- the relay ------------------------------------------------------------------

    @property
    def relay_addresses(self) -> dict[str, str]:
        """The relay's address as each station sees it."""
        return {"alpha": AR[1], "bravo": BR[1]}

    def start_relay(self, users: Mapping[str, str], wait_s: float = 20) -> None:
        """``nats-server -js`` in R, listening on its two veth addresses, with one user
        (name: password) per station and its own store under ``root``."""
        store = self.root / "nats-store"
        store.mkdir(parents=True, exist_ok=True)
        users_conf = ",\n".join(
            f'    {{user: "{u}", password: "{p}"}}' for u, p in sorted(users.items())
        )
        conf = self.root / "nats.conf"
        conf.write_text(
            f'listen: "0.0.0.0:{NATS_PORT}"\n'
            f'jetstream {{ store_dir: "{store}", max_mem: 64MB, max_file: 256MB }}\n'
            f"authorization {{ users: [\n{users_conf}\n] }}\n"
        )
        conf.chmod(0o600)
        self.nats = self.r.popen([NATS_SERVER, "-c", str(conf)], self.root / "nats.log")
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.nats.poll() is not None:
                raise ConfigError(f"nats-server exited: {(self.root / 'nats.log').read_text()}")
            if self.r.call(_port_open, "127.0.0.1", NATS_PORT):
                return
            time.sleep(0.05)
        raise ConfigError(f"nats-server did not listen within {wait_s:.0f}s")

    # --- stations -------------------------------------------------------------------

    def pair(
        self, settings: Mapping[str, Any] | None = None, extra: Mapping[str, Mapping[str, Any]]
        | None = None,
    ) -> tuple[NsStation, NsStation]:  # fmt: skip
        """alpha in A and bravo in B, paired, not started. ``settings`` go to both,
        ``extra[station_id]`` to one. The API listens on the namespace's loopback, the peer
        endpoint on every address of the namespace (the card names the A<->B one)."""
        out = []
        for sid, ns, addr in (("alpha", self.a, AB[0]), ("bravo", self.b, AB[1])):
            merged = {
                "api_host": "127.0.0.1",
                "peer_host": "0.0.0.0",  # noqa: S104 - inside our own namespace only
                **(settings or {}),
                **((extra or {}).get(sid, {})),
            }
            local = localnet.make_station(
                self.root, sid, settings=merged, endpoint_host=addr, ports=(API_PORT, PEER_PORT)
            )
            st = NsStation(local, ns, addr)
            self.stations.append(st)
            out.append(st)
        localnet.pair(out[0].local, out[1].local)
        return out[0], out[1]

    # --- faults on the HTTPS path (both directions) ---------------------------------

    def _netem(self, *args: str) -> None:
        for ns, dev in ((self.a, "ab0"), (self.b, "ba0")):
            _run(TC, "-n", ns.name, "qdisc", "replace", "dev", dev, "root", "netem", *args)

    def impair(self, *, drop_pct: float = 0, delay_ms: float = 0, jitter_ms: float = 0,
               reorder_pct: float = 0) -> None:  # fmt: skip
        """Loss, delay with jitter and reordering on A<->B, both ways, replacing any
        earlier fault. netem reorders by sending ``reorder_pct`` % of packets at once and
        delaying the rest, so reordering needs a delay."""
        if self.shuttle is not None:
            self.shuttle.set(
                loss=drop_pct / 100, delay_s=delay_ms / 1000, jitter_s=jitter_ms / 1000,
                reorder=reorder_pct / 100,
            )  # fmt: skip
            return
        args = ["loss", f"{drop_pct}%"]
        if delay_ms:
            args += ["delay", f"{delay_ms}ms", f"{jitter_ms}ms"]
            if reorder_pct:
                args += ["reorder", f"{reorder_pct}%", "50%"]
        self._netem(*args)

    def drop(self, pct: float) -> None:
        self.impair(drop_pct=pct)

    def delay(self, ms: float, jitter_ms: float = 0) -> None:
        self.impair(delay_ms=ms, jitter_ms=jitter_ms)

    def reorder(self, pct: float, delay_ms: float = 20) -> None:
        self.impair(delay_ms=delay_ms, reorder_pct=pct)

    def blackhole(self) -> None:
        """Every packet on A<->B is dropped, both ways: no RST, no ICMP, silence."""
        self.impair(drop_pct=100)

    def heal(self) -> None:
        if self.shuttle is not None:
            self.shuttle.set()
            return
        for ns, dev in ((self.a, "ab0"), (self.b, "ba0")):
            _run(TC, "-n", ns.name, "qdisc", "del", "dev", dev, "root", check=False)


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


# --- the relay path's settings and the per-path state, named in one place -----------------

#: the settings of a station that sends on HTTPS first and the relay second
RELAY_PATHS = ["https", "nats"]


def relay_settings(topo: Topology, station_id: str, password: str) -> dict[str, Any]:
    """A station's settings for the relay at R (user = station id)."""
    host = topo.relay_addresses[station_id]
    return {
        "paths": RELAY_PATHS,
        "relay_url": f"nats://{station_id}:{password}@{host}:{NATS_PORT}",
    }


def path_states(st: NsStation, peer: str) -> dict[str, str]:
    """Each path's state (UP, DEGRADED, DOWN, UNTESTED) of the line to ``peer``: the
    link status's ``paths`` (``path``, ``state``) where the API has them, else the line's
    state as its https path's."""
    for row in st.api("GET", "/api/v1/link"):
        if row["peer"] == peer:
            if isinstance(row.get("paths"), list) and row["paths"]:
                return {str(p["path"]): str(p["state"]) for p in row["paths"]}
            if isinstance(row.get("paths"), dict) and row["paths"]:
                return {str(k): str(v["state"]) for k, v in row["paths"].items()}
            return {"https": str(row["state"])}
    raise ConfigError(f"{st.station_id} has no line to {peer}")


def path_down_alarms(st: NsStation, peer: str, path: str = "https") -> list[dict[str, Any]]:
    """Open DOWN alarms of one path to ``peer``: ``path_down`` (ref: the path) when the
    line has other paths, ``link_down`` when every path of the line is DOWN."""
    rows: list[dict[str, Any]] = st.api("GET", "/api/v1/alarms")
    return [
        a for a in rows
        if a.get("peer") == peer
        and (a["kind"] == "link_down" or (a["kind"] == "path_down" and a.get("ref") == path))
    ]  # fmt: skip


def relay_pair(topo: Topology, settings: Mapping[str, Any]) -> tuple[NsStation, NsStation]:
    """alpha and bravo sending on HTTPS first and on the relay in R second, the relay
    started with one user per station."""
    users = {sid: secrets.token_hex(16) for sid in ("alpha", "bravo")}
    topo.start_relay(users)
    extra = {sid: relay_settings(topo, sid, pw) for sid, pw in users.items()}
    return topo.pair(settings, extra)


def _wait(what: str, probe: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise ConfigError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def cut_mid_stream(
    topo: Topology,
    a: NsStation,
    b: NsStation,
    *,
    messages: int = 200,
    every_s: float = 0.01,
    cut_after: int = 50,
    timeout: float = 120,
) -> dict[str, Any]:
    """Stream ``messages`` from alpha to bravo; after ``cut_after`` of them black-hole the
    HTTPS path; wait until everything arrived (or ``timeout``). Returns ``cut`` (wall time
    of the cut), ``down`` (when alpha's HTTPS path was first seen DOWN, polled every
    50 ms), ``failover_s_max`` (the longest wait, after ``down``, of a message still
    undelivered then: its delivery time minus ``down`` or its queueing, the later),
    ``lost``, ``duplicated``, ``sent`` (ids) and ``carried_by`` (messages per path that
    carried them, from each message's ``path``; "None" where the API does not say). Both
    stations must be running with both paths UP."""
    sent: list[str] = []
    cut: list[float] = []
    down: list[float] = []

    def stream() -> None:
        for i in range(messages):
            row = a.api("POST", "/api/v1/messages", json={"peer": "bravo", "text": f"m{i}"})
            sent.append(str(row["message_id"]))
            if i + 1 == cut_after:
                cut.append(time.time())
                topo.blackhole()
            time.sleep(every_s)

    sender = threading.Thread(target=stream, name="failover-stream", daemon=True)
    sender.start()
    _wait("the cut", lambda: bool(cut), timeout)

    def https_down() -> bool:
        if path_states(a, "bravo").get("https") != "DOWN":
            return False
        down.append(time.time())
        return True

    _wait("alpha's HTTPS path to go DOWN", https_down, timeout)
    sender.join(timeout)

    def arrived() -> list[str]:
        rows = b.api("GET", "/api/v1/messages", params={"direction": "in", "limit": 1000})
        return [str(m["message_id"]) for m in rows]

    deadline = time.monotonic() + timeout
    got = arrived()
    while not set(sent) <= set(got) and time.monotonic() < deadline:
        time.sleep(0.1)
        got = arrived()
    rows = a.api("GET", "/api/v1/messages", params={"direction": "out", "limit": 1000})
    t_down = down[0]
    waits = [
        m["delivered_at_us"] / 1e6 - max(t_down, m["queued_at_us"] / 1e6)
        for m in rows
        if m["message_id"] in set(sent) and m.get("delivered_at_us")
        and m["delivered_at_us"] / 1e6 > t_down
    ]  # fmt: skip
    carried: dict[str, int] = {}
    for m in rows:
        if m["message_id"] in set(sent):
            carried[str(m.get("path"))] = carried.get(str(m.get("path")), 0) + 1
    counts: dict[str, int] = {}
    for i in got:
        counts[i] = counts.get(i, 0) + 1
    return {
        "cut": cut[0],
        "down": t_down,
        "failover_s_max": round(max(waits, default=0.0), 3),
        "lost": len(set(sent) - set(got)),
        "duplicated": sum(n - 1 for n in counts.values()),
        "sent": sent,
        "carried_by": carried,
    }


def wait_paths_up(st: NsStation, peer: str, paths: list[str], timeout: float = 60) -> None:
    """Until every one of ``paths`` to ``peer`` is UP (ConfigError after ``timeout``)."""
    _wait(
        f"{st.station_id}'s paths {paths} to {peer} to be UP",
        lambda: all(path_states(st, peer).get(p) == "UP" for p in paths),
        timeout,
    )
