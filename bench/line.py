"""Line benchmark: two real station processes on loopback, SQLite with fsync on.

Prints human-readable figures; the last line is one JSON object.

- start-up: wall time from process start to the API answering, and from process start to
  the first good link test (``last_ok_at_us`` of /api/v1/link). bravo starts first, so
  its first test meets a peer that is not listening yet; alpha starts second, against a
  running peer (the clean figure);
- latency: end-to-end, from the send call (POST /api/v1/messages at alpha) to the
  receipt stored at alpha, timed by the arrival of alpha's ``message.delivered``
  server-sent event; p50/p90/p99 over sequential messages (1,000; 300 with --quick),
  with the send call's own share (POST answered: the message is durable at alpha);
- throughput: 16 concurrent senders (one keep-alive connection each, a minimal asyncio
  HTTP/1.1 client so the load generator takes little of the 2 cores) post to alpha for
  20 s (5 s with --quick), one message a request (``--batch N``: N a request to
  POST /api/v1/messages:batch); sent/s
  over the sending window, delivered/s (receipts stored at alpha, by the event stream)
  from the first send to the last receipt, including the drain;
- CPU seconds of each station over the throughput phase (/proc/PID/stat), per message,
  and by thread (main = the event loop; the first other thread is the store's writer);
- peak RSS of each station (/proc/PID/status VmHWM) at the end.

The stations run with default settings (sqlite_synchronous FULL) except the operator
API's per-token rate limit (``api_rate_per_s``, default 200/s), raised so that it does
not cap the load; ``--default-rate-limit`` keeps the default. ``--profile DIR`` runs
``py-spy record`` (raw collapsed stacks) on both stations during the throughput phase.
``--database-url`` runs both stations on PostgreSQL instead (a fresh database each).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from benchkit import machine, pct, pg_databases
from hotline import localnet
from hotline.api.sendbatch import BATCH_PATH
from hotline.station import TOKEN_FILE

TEXT = "Air activity reported 4 km from the nuclear plant perimeter. Confirm intentions."
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: ``--profile-gil``: py-spy samples only the thread holding the GIL
PROFILE_GIL = False


# --- process facts -------------------------------------------------------------------


def proc_status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of a process: the main thread (the event loop) and
    the others by thread id (Python does not name OS threads)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            stat = (task / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            name = "main" if task.name == str(pid) else f"tid {task.name}"
            out[name] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def fsync_p50_ms(directory: Path, n: int = 100) -> float:
    """Median time of a 4 KiB write + fsync in ``directory``: the disk's floor."""
    path = directory / "fsync-probe"
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(n):
            t = time.perf_counter()
            os.pwrite(fd, os.urandom(4096), 0)
            os.fsync(fd)
            times.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(times) * 1000


# --- start-up and the first good link test -------------------------------------------


class LinkWatch:
    """Polls a station's /api/v1/link until the line is UP; keeps the first good test."""

    def __init__(self, station: localnet.LocalStation, started_wall: float) -> None:
        self.station = station
        self.started_wall = started_wall
        self.first_ok_s: float | None = None
        self.first_state: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        interval = 0.05
        with self.station.client(timeout=5) as c:
            while not self._stop.is_set():
                try:
                    links = c.get("/api/v1/link").json()
                except (httpx.HTTPError, ValueError):
                    links = []
                if links:
                    h = links[0]
                    if self.first_state is None and h["state"] != "UNTESTED":
                        self.first_state = h["state"]
                    if h["state"] == "UP" and h["last_ok_at_us"]:
                        self.first_ok_s = h["last_ok_at_us"] / 1e6 - self.started_wall
                        return
                    if h["state"] != "UNTESTED":
                        interval = 0.5  # a failed first test: the next comes on schedule
                self._stop.wait(interval)

    def wait(self, timeout: float) -> None:
        self._thread.join(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def start(station: localnet.LocalStation) -> tuple[float, float]:
    """Start a station; return (wall clock at process start, seconds until API ready)."""
    wall, t = time.time(), time.perf_counter()
    station.start(wait_s=60)
    return wall, time.perf_counter() - t


# --- the event stream -----------------------------------------------------------------


class Deliveries:
    """alpha's ``message.delivered`` events, timestamped on arrival."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.last_id = 0
        self.dropped = 0
        self.connected = asyncio.Event()

    def wait_for(self, mid: str) -> asyncio.Future[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if mid in self.at:
            fut.set_result(self.at[mid])
        else:
            self.waiters[mid] = fut
        return fut

    async def follow(self, client: httpx.AsyncClient) -> None:
        async with client.stream("GET", "/api/v1/events", timeout=None) as r:
            ev_id, ev_type = 0, ""
            async for line in r.aiter_lines():
                if line.startswith(": connected"):
                    self.connected.set()
                elif line.startswith("id: "):
                    ev_id = int(line[4:])
                elif line.startswith("event: "):
                    ev_type = line[7:]
                elif line.startswith("data: ") and ev_type == "message.delivered":
                    now = time.perf_counter()
                    mid = json.loads(line[6:])["message_id"]
                    self.at[mid] = now
                    fut = self.waiters.pop(mid, None)
                    if fut is not None and not fut.done():
                        fut.set_result(now)
                elif not line and ev_id:
                    if self.last_id and ev_id != self.last_id + 1:
                        self.dropped += ev_id - self.last_id - 1
                    self.last_id, ev_type = ev_id, ""


def api_client(station: localnet.LocalStation, connections: int) -> httpx.AsyncClient:
    token = (station.data_dir / TOKEN_FILE).read_text().strip()
    return httpx.AsyncClient(
        base_url=station.api_url,
        headers={"authorization": f"Bearer {token}"},
        timeout=60,
        trust_env=False,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


class Sender:
    """One keep-alive HTTP/1.1 connection that posts messages to the operator API.

    A few lines of asyncio instead of httpx: on a 2-core machine the load generator
    shares the CPU with both stations, so it must cost as little as possible.
    """

    def __init__(self, station: localnet.LocalStation, path: str = "/api/v1/messages") -> None:
        self.port = station.api_port
        token = (station.data_dir / TOKEN_FILE).read_text().strip()
        self.head = (
            f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            f"authorization: Bearer {token}\r\ncontent-type: application/json\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> tuple[int, bytes]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            self.writer.write(self.head + b"content-length: %d\r\n\r\n" % len(body) + body)
            head = await self.reader.readuntil(b"\r\n\r\n")
            status, length = int(head[9:12]), 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            return status, await self.reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError):
            self.close()
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def post_message(sender: Sender, peer: str, i: int) -> str:
    body = {"peer": peer, "channel": "working", "precedence": "ROUTINE", "text": f"{TEXT} #{i}"}
    status, answer = await sender.post(json.dumps(body).encode())
    if status != 201:
        raise RuntimeError(f"send answered {status}: {answer[:200]!r}")
    return str(json.loads(answer)["message_id"])


async def post_batch(sender: Sender, peer: str, first: int, n: int) -> list[str]:
    """``n`` messages in one request to ``POST /api/v1/messages:batch``; their ids."""
    items = [
        {"peer": peer, "channel": "working", "precedence": "ROUTINE", "text": f"{TEXT} #{i}"}
        for i in range(first, first + n)
    ]
    status, answer = await sender.post(json.dumps({"messages": items}).encode())
    if status != 200:
        raise RuntimeError(f"batch send answered {status}: {answer[:200]!r}")
    results = json.loads(answer)["results"]
    bad = [r for r in results if r["status"] != 201]
    if bad:
        raise RuntimeError(f"batch item answered {bad[0]['status']}: {bad[0]['error']}")
    return [str(r["message"]["message_id"]) for r in results]


# --- phases ----------------------------------------------------------------------------


async def latency_phase(
    client: Sender, deliveries: Deliveries, peer: str, n: int, warmup: int
) -> dict[str, Any]:
    total, send_only = [], []
    for i in range(warmup + n):
        t0 = time.perf_counter()
        mid = await post_message(client, peer, i)
        t1 = time.perf_counter()
        t2 = await asyncio.wait_for(deliveries.wait_for(mid), 30)
        if i >= warmup:
            total.append((t2 - t0) * 1000)
            send_only.append((t1 - t0) * 1000)
    return {
        "messages": n,
        "p50": pct(total, 50),
        "p90": pct(total, 90),
        "p99": pct(total, 99),
        "max": max(total),
        "mean": statistics.fmean(total),
        "send_p50": pct(send_only, 50),
        "send_p99": pct(send_only, 99),
    }


async def throughput_phase(
    alpha: localnet.LocalStation,
    deliveries: Deliveries,
    peer: str,
    senders: int,
    seconds: float,
    pids: dict[str, int],
    profile: Path | None,
    batch: int = 0,
) -> dict[str, Any]:
    sent: list[str] = []
    errors: dict[str, int] = {}
    cpu0 = {name: proc_cpu_s(pid) for name, pid in pids.items()}
    thr0 = {name: thread_cpu_s(pid) for name, pid in pids.items()}
    own0 = os.times()
    spies = start_profilers(pids, profile, seconds) if profile else []
    t_start = time.perf_counter()
    stop_at = t_start + seconds

    async def sender(k: int) -> None:
        i, conn = 0, Sender(alpha, BATCH_PATH if batch else "/api/v1/messages")
        while time.perf_counter() < stop_at:
            try:
                if batch:
                    sent.extend(await post_batch(conn, peer, k * 1_000_000 + i, batch))
                else:
                    sent.append(await post_message(conn, peer, k * 1_000_000 + i))
            except (RuntimeError, OSError, asyncio.IncompleteReadError) as exc:
                key = str(exc)[:60]
                errors[key] = errors.get(key, 0) + 1
            i += max(batch, 1)
        conn.close()

    await asyncio.gather(*(sender(k) for k in range(senders)))
    t_sent = time.perf_counter()
    # drain: wait until every sent message has its receipt stored at alpha
    pending = set(sent)
    last_progress, last_count = time.perf_counter(), 0
    while True:
        pending = {m for m in pending if m not in deliveries.at}
        if not pending:
            break
        count = len(sent) - len(pending)
        if count != last_count:
            last_progress, last_count = time.perf_counter(), count
        if time.perf_counter() - last_progress > 30:
            break
        await asyncio.sleep(0.02)
    cpu1 = {name: proc_cpu_s(pid) for name, pid in pids.items()}
    thr1 = {name: thread_cpu_s(pid) for name, pid in pids.items()}
    own1 = os.times()
    for spy in spies:
        spy.wait(timeout=120)
    done = [deliveries.at[m] for m in sent if m in deliveries.at]
    t_last = max(done) if done else t_sent
    window = t_last - t_start
    n_done = len(done)
    per_s = [0] * (int(window) + 1)
    for t in done:
        per_s[int(t - t_start)] += 1
    return {
        "senders": senders,
        "batch": batch,
        "seconds": seconds,
        "sent": len(sent),
        "delivered": n_done,
        "undelivered": len(sent) - n_done,
        "sent_per_s": len(sent) / (t_sent - t_start),
        "delivered_per_s": n_done / window if window > 0 else 0.0,
        "drain_s": t_last - t_sent,
        "delivered_each_second": per_s,
        "errors": errors,
        "cpu_s": {name: cpu1[name] - cpu0[name] for name in pids},
        "cpu_us_per_msg": {name: (cpu1[name] - cpu0[name]) / max(n_done, 1) * 1e6 for name in pids},
        "thread_cpu_s": {
            name: {k: round(v - thr0[name].get(k, 0.0), 2) for k, v in thr1[name].items()}
            for name in pids
        },
        "bench_client_cpu_s": (own1.user + own1.system) - (own0.user + own0.system),
    }


def start_profilers(
    pids: dict[str, int], out: Path | None, seconds: float
) -> list[subprocess.Popen[bytes]]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if out is None or not Path(spy).exists():
        print("py-spy not found: no profile", file=sys.stderr)
        return []
    out.mkdir(parents=True, exist_ok=True)
    procs = []
    for name, pid in pids.items():
        cmd = [spy, "record", "-p", str(pid), "-r", "250", "-d", str(int(seconds)), "--threads"]
        cmd += ["--format", "raw", "-o", str(out / f"{name}.txt"), "--nonblocking"]
        cmd += ["--gil"] if PROFILE_GIL else []
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return procs


# --- profile summary ------------------------------------------------------------------

#: (category, substrings of a py-spy frame); a sample goes to the first category that
#: matches, looking from the innermost frame outwards
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("crypto (Ed25519, HPKE, SHA-256)", ("cryptography/", "crypto/primitives.py", "hashlib")),
    (
        "SQLite in C (execute, commit+fsync)",
        ("do_execute ", "do_executemany ", "do_commit ", "do_savepoint ", "do_release_savepoint "),
    ),
    ("SQLAlchemy Core (Python)", ("sqlalchemy/",)),
    ("pydantic / JSON", ("pydantic", "json/", "_pydantic")),
    ("TLS", ("ssl.py", "sslproto.py")),
    (
        "HTTP server (uvicorn, h11, Starlette, FastAPI)",
        ("uvicorn/", "h11/", "starlette/", "fastapi/"),
    ),
    ("HTTP client (httpx, httpcore)", ("httpx/", "httpcore/", "anyio/")),
    (
        "asyncio, threads, queues",
        ("asyncio/", "threading.py", "concurrent/", "queue.py", "selectors.py"),
    ),
    ("hotline code", ("hotline/",)),
]


IDLE_LEAVES = ("EpollSelector.select", "concurrent/futures/thread.py:81", "Writer._run")


def summarise_profile(path: Path) -> dict[str, Any]:
    """Shares of on-CPU samples by thread and by category, from py-spy's raw output.

    Samples whose innermost frame is a wait (epoll, a queue's get) are dropped: py-spy
    sometimes counts those threads as active."""
    by_cat: dict[str, int] = {}
    by_thread: dict[str, int] = {}
    total = waits = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        if any(w in frames[-1] for w in IDLE_LEAVES):
            waits += n
            continue
        thread = frames[0]
        name = "main" if "MainThread" in thread else thread.split(" ")[-1].strip('"')
        if "hotline-writer" in stack or "Writer._run" in stack:
            name = "writer"
        elif "concurrent/futures" in stack:
            name = "to_thread pool"
        by_thread[name] = by_thread.get(name, 0) + n
        cat = "other"
        for frame in reversed(frames[1:]):
            hit = next((c for c, keys in CATEGORIES if any(k in frame for k in keys)), None)
            if hit is not None:
                cat = hit
                break
        key = f"{name}: {cat}"
        by_cat[key] = by_cat.get(key, 0) + n
        total += n
    return {
        "samples": total,
        "waits_dropped": waits,
        "threads": {k: v / total for k, v in sorted(by_thread.items(), key=lambda kv: -kv[1])},
        "categories": {k: v / total for k, v in sorted(by_cat.items(), key=lambda kv: -kv[1])},
    }


# --- the run ----------------------------------------------------------------------------


@contextlib.contextmanager
def databases(admin_url: str | None) -> Iterator[dict[str, str]]:
    """With ``admin_url`` (PostgreSQL): a fresh database for each station, dropped at the
    end; without: nothing (each station keeps its SQLite file)."""
    if admin_url is None:
        yield {}
        return
    with pg_databases(admin_url, "line", ("alpha", "bravo")) as urls:
        yield urls


@contextlib.contextmanager
def stations(
    root: Path, rate_limit: bool, urls: dict[str, str] | None = None
) -> Iterator[tuple[Any, Any]]:
    extra = {} if rate_limit else {"api_rate_per_s": 1_000_000.0}
    urls = urls or {}

    def settings(name: str) -> dict[str, Any]:
        return {**extra, "database_url": urls[name]} if name in urls else extra

    bravo = localnet.make_station(root, "bravo", settings=settings("bravo"))
    alpha = localnet.make_station(root, "alpha", settings=settings("alpha"))
    localnet.pair(alpha, bravo)
    try:
        yield alpha, bravo
    finally:
        alpha.stop()
        bravo.stop()


async def measure(alpha: Any, n_latency: int, args: argparse.Namespace) -> dict[str, Any]:
    deliveries = Deliveries()
    client = Sender(alpha)
    async with api_client(alpha, 4) as events_client:
        follower = asyncio.create_task(deliveries.follow(events_client))
        await asyncio.wait_for(deliveries.connected.wait(), 10)
        latency = await latency_phase(client, deliveries, "bravo", n_latency, warmup=20)
        print(
            f"latency (send call -> receipt stored at sender, {n_latency} sequential): "
            f"p50 {latency['p50']:.2f} ms  p90 {latency['p90']:.2f} ms  "
            f"p99 {latency['p99']:.2f} ms  max {latency['max']:.2f} ms  "
            f"(send call alone: p50 {latency['send_p50']:.2f} ms, "
            f"p99 {latency['send_p99']:.2f} ms)",
            flush=True,
        )
        pids = {"alpha": alpha.proc.pid, "bravo": args.bravo_pid}
        client.close()
        tput = await throughput_phase(
            alpha, deliveries, "bravo", args.senders, args.seconds, pids, args.profile,
            batch=args.batch,
        )  # fmt: skip
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await follower
    tput["events_dropped"] = deliveries.dropped
    return {"latency": latency, "throughput": tput}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="300 latency messages, 5 s of load")
    ap.add_argument("--messages", type=int, help="sequential messages for latency")
    ap.add_argument("--seconds", type=float, help="seconds of concurrent sending")
    ap.add_argument("--senders", type=int, default=16)
    ap.add_argument(
        "--batch",
        type=int,
        default=0,
        metavar="N",
        help="in the throughput phase, each sender posts N messages a request to "
        f"{BATCH_PATH} (default: one a request to POST /api/v1/messages)",
    )
    ap.add_argument("--profile", type=Path, help="write py-spy raw profiles here")
    ap.add_argument(
        "--profile-gil",
        action="store_true",
        help="with --profile: sample only the thread holding the GIL (py-spy --gil), so "
        "that a thread waiting for the GIL is not counted as on CPU",
    )
    ap.add_argument("--keep", type=Path, help="keep the stations' directories here")
    ap.add_argument(
        "--default-rate-limit", action="store_true", help="keep api_rate_per_s at its default"
    )
    ap.add_argument(
        "--database-url",
        help="PostgreSQL URL of a server where the bench may create databases (one per "
        "station, dropped at the end), e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test; "
        "default: SQLite files",
    )
    args = ap.parse_args(argv)
    global PROFILE_GIL
    PROFILE_GIL = args.profile_gil
    n_latency = args.messages or (300 if args.quick else 1000)
    args.seconds = args.seconds or (5.0 if args.quick else 20.0)

    m = machine()
    print(
        f"machine: {m['nproc']} cores, {m['cpu']}, Python {m['python']}, SQLite {m['sqlite']}, "
        f"sqlite_synchronous FULL (default); load average {m['loadavg_1m_at_start']:.2f} at start"
    )
    with contextlib.ExitStack() as stack:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            root = args.keep
        else:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hotline-bench-")))
        fsync_ms = fsync_p50_ms(root)
        print(f"disk: 4 KiB write + fsync p50 {fsync_ms:.2f} ms")
        urls = stack.enter_context(databases(args.database_url))
        if urls:
            print("store: PostgreSQL, one database per station")
        alpha, bravo = stack.enter_context(stations(root, args.default_rate_limit, urls))
        b_wall, b_ready = start(bravo)
        b_watch = LinkWatch(bravo, b_wall)
        a_wall, a_ready = start(alpha)
        a_watch = LinkWatch(alpha, a_wall)
        a_watch.wait(30)
        print(
            f"start-up: API ready in {b_ready:.2f} s (bravo), {a_ready:.2f} s (alpha); "
            f"first good link test alpha (peer already up) {fmt_s(a_watch.first_ok_s)}",
            flush=True,
        )
        args.bravo_pid = bravo.proc.pid
        result = asyncio.run(measure(alpha, n_latency, args))
        t = result["throughput"]
        how = f", {t['batch']} messages a request" if t["batch"] else ""
        print(
            f"throughput ({t['senders']} senders{how}, {t['seconds']:.0f} s): sent {t['sent']} "
            f"({t['sent_per_s']:.0f}/s), delivered {t['delivered']} "
            f"({t['delivered_per_s']:.0f}/s incl. {t['drain_s']:.2f} s drain), "
            f"undelivered {t['undelivered']}, errors {sum(t['errors'].values())}, "
            f"events dropped {t['events_dropped']}"
        )
        print(f"  delivered each second: {t['delivered_each_second']}")
        print(
            "  CPU over the phase: "
            + ", ".join(
                f"{k} {v:.1f} s ({t['cpu_us_per_msg'][k]:.0f} µs/msg)"
                for k, v in t["cpu_s"].items()
            )
            + f", bench client {t['bench_client_cpu_s']:.1f} s"
        )
        for name, threads in t["thread_cpu_s"].items():
            busy = {k: v for k, v in threads.items() if v > 0}
            print(f"  {name} CPU by thread: {busy}")
        interval = 60.0
        if not args.quick and b_watch.first_ok_s is None:
            b_watch.wait(max(0.0, b_wall + interval + 15 - time.time()))
        b_watch.stop()
        a_watch.stop()
        print(
            f"first good link test bravo (started first; first test at "
            f"{b_watch.first_state or '?'} ): {fmt_s(b_watch.first_ok_s)}"
        )
        rss = {s.station_id: proc_status_kb(s.proc.pid, "VmHWM") / 1024 for s in (alpha, bravo)}
        print("peak RSS: " + ", ".join(f"{k} {v:.1f} MB" for k, v in rss.items()))
        if args.profile is not None:
            print_profiles(args.profile, t)
    lat = result["latency"]
    summary = {
        "bench": "line",
        "quick": args.quick,
        **{f"machine_{k}": v for k, v in m.items()},
        "fsync_p50_ms": round(fsync_ms, 3),
        "latency_messages": n_latency,
        "latency_ms_p50": round(lat["p50"], 3),
        "latency_ms_p90": round(lat["p90"], 3),
        "latency_ms_p99": round(lat["p99"], 3),
        "latency_ms_max": round(lat["max"], 3),
        "send_call_ms_p50": round(lat["send_p50"], 3),
        "senders": t["senders"],
        "batch": t["batch"],
        "throughput_seconds": t["seconds"],
        "sent_msgs_per_s": round(t["sent_per_s"], 1),
        "throughput_msgs_per_s": round(t["delivered_per_s"], 1),
        "undelivered": t["undelivered"],
        "send_errors": sum(t["errors"].values()),
        "cpu_us_per_msg": {k: round(v) for k, v in t["cpu_us_per_msg"].items()},
        "rss_mb": {k: round(v, 1) for k, v in rss.items()},
        "rss_mb_max": round(max(rss.values()), 1),
        "api_ready_s": {"alpha": round(a_ready, 3), "bravo": round(b_ready, 3)},
        "first_good_link_test_s": {
            "alpha_peer_up": rnd(a_watch.first_ok_s),
            "bravo_peer_down_at_start": rnd(b_watch.first_ok_s),
        },
        "rate_limit": "default" if args.default_rate_limit else "raised",
        "store": "postgresql" if args.database_url else "sqlite",
    }
    print(json.dumps(summary))


def print_profiles(directory: Path, t: dict[str, Any]) -> None:
    for name in ("alpha", "bravo"):
        path = directory / f"{name}.txt"
        if not path.exists():
            continue
        p = summarise_profile(path)
        per_msg = t["cpu_us_per_msg"][name]
        print(f"profile of {name} ({p['samples']} on-CPU samples; {per_msg:.0f} µs CPU/msg):")
        for k, share in p["categories"].items():
            if share >= 0.01:
                print(f"  {share * 100:5.1f}%  ~{share * per_msg:5.0f} µs/msg  {k}")


def fmt_s(v: float | None) -> str:
    return "not within the run" if v is None else f"{v:.2f} s"


def rnd(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


if __name__ == "__main__":
    main()
