"""Paths benchmark: HTTPS and the NATS relay between two real station processes.

Prints human-readable figures; the last line is one JSON object.

For each path (``paths = ["https"]``, then ``paths = ["nats"]`` on the relay at
``--relay``, default nats://127.0.0.1:4222, with a subject prefix of this run alone), a
fresh pair alpha/bravo on SQLite with fsync on:

- latency: end-to-end, from the send call at alpha to the receipt stored at alpha (its
  ``message.delivered`` event), p50/p99 over sequential messages (300; 100 with --quick);
- end to end: 16 concurrent senders post to alpha for 20 s (5 s with --quick); delivered
  messages per second from the first send to the last receipt, including the drain. On a
  busy 2-core machine this is bound by the send calls (each one durable at alpha), not by
  the path: both paths show about the rate alpha accepts sends;
- the path's throughput (``<path>_msgs_per_s``): bravo is stopped, a backlog of messages
  (2,000; 600 with --quick) is queued at alpha, bravo is started; delivered messages per
  second from bravo's start (its API answering) to the last receipt stored at alpha. This
  is what the path carries when it has work: batches, bravo's checks and group commits.

JSON keys: ``https_msgs_per_s``, ``nats_msgs_per_s``, ``https_latency_p50_ms``,
``https_latency_p99_ms``, ``nats_latency_p50_ms``, ``nats_latency_p99_ms``, and the full
figures under ``paths``.

Then the failover (``bench/_failover.py``): stations in network namespaces with HTTPS
and the relay, the HTTPS link black-holed mid-stream; ``failover_s_max`` is the longest
time from the HTTPS path going DOWN to the next message delivered on the relay, with
``lost`` and ``duplicated`` counted over the stream (needs root and ip netns). And the
takeover (``bench/_takeover.py``): an active/standby pair on PostgreSQL, the active
killed (-9) mid-stream; ``takeover_s`` from the kill to the standby serving, with its own
lost/duplicated counts (needs PostgreSQL at HOTLINE_TEST_PG). A part that cannot run here
prints why and leaves its keys null; ``--no-failover`` and ``--no-takeover`` skip them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchkit import machine
from hotline import localnet
from line import (
    Deliveries,
    Sender,
    api_client,
    latency_phase,
    post_message,
    proc_cpu_s,
    start_profilers,
    throughput_phase,
)


def settings_of(path: str, relay: str, prefix: str) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "api_rate_per_s": 1_000_000.0,
        "paths": [path],
        "retry_base_s": 0.1,
        "retry_max_s": 0.5,
        "link_test_interval_s": 1.0,
    }
    if path == "nats":
        extra |= {"relay_url": relay, "relay_prefix": prefix}
    return extra


async def backlog_phase(
    alpha: Any,
    bravo: Any,
    deliveries: Deliveries,
    n: int,
    senders: int,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Queue ``n`` messages while bravo is stopped, start it, time the drain. The CPU
    seconds of both stations from bravo's start to the last receipt, per message, and the
    time to the first receipt (bravo's start noticed by alpha) go beside the rate; with
    ``profile``, py-spy records both stations over the drain."""
    bravo.stop()
    ids: list[str] = []

    async def sender(k: int) -> None:
        conn = Sender(alpha)
        for i in range(k, n, senders):
            ids.append(await post_message(conn, "bravo", 10_000_000 + i))
        conn.close()

    await asyncio.gather(*(sender(k) for k in range(senders)))
    await asyncio.to_thread(bravo.start)
    t0 = time.perf_counter()
    pids = {"alpha": alpha.proc.pid, "bravo": bravo.proc.pid}
    cpu0 = {name: proc_cpu_s(pid) for name, pid in pids.items()}
    spies = start_profilers(pids, profile, 3) if profile else []
    pending = set(ids)
    deadline = t0 + 300
    while pending and time.perf_counter() < deadline:
        pending = {m for m in pending if m not in deliveries.at}
        await asyncio.sleep(0.02)
    cpu1 = {name: proc_cpu_s(pid) for name, pid in pids.items()}
    for spy in spies:
        spy.wait(timeout=60)
    done = [deliveries.at[m] for m in ids if m in deliveries.at]
    window = (max(done) - t0) if done else 0.0
    return {
        "messages": n,
        "delivered": len(done),
        "drain_s": window,
        "first_s": (min(done) - t0) if done else None,
        "msgs_per_s": len(done) / window if window > 0 else 0.0,
        "delivered_each_100ms": [
            sum(1 for t in done if k / 10 <= t - t0 < (k + 1) / 10)
            for k in range(-5, int(window * 10) + 1)
        ],
        "cpu_s": {k: round(cpu1[k] - cpu0[k], 3) for k in pids},
        "cpu_us_per_msg": {k: round((cpu1[k] - cpu0[k]) / max(len(done), 1) * 1e6) for k in pids},
    }


async def measure(
    alpha: Any,
    bravo: Any,
    n_latency: int,
    n_backlog: int,
    senders: int,
    seconds: float,
    profile: Path | None = None,
) -> dict[str, Any]:
    deliveries = Deliveries()
    client = Sender(alpha)
    async with api_client(alpha, 4) as events_client:
        follower = asyncio.create_task(deliveries.follow(events_client))
        await asyncio.wait_for(deliveries.connected.wait(), 10)
        latency = await latency_phase(client, deliveries, "bravo", n_latency, warmup=20)
        client.close()
        pids = {"alpha": alpha.proc.pid, "bravo": bravo.proc.pid}
        tput = await throughput_phase(alpha, deliveries, "bravo", senders, seconds, pids, None)
        backlog = await backlog_phase(alpha, bravo, deliveries, n_backlog, senders, profile)
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await follower
    return {"latency": latency, "throughput": tput, "backlog": backlog}


def run_path(
    root: Path,
    path: str,
    relay: str,
    n: tuple[int, int],
    senders: int,
    seconds: float,
    profile: Path | None = None,
) -> dict[str, Any]:
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    extra = settings_of(path, relay, prefix)
    bravo = localnet.make_station(root / path, "bravo", settings=extra)
    alpha = localnet.make_station(root / path, "alpha", settings=extra)
    localnet.pair(alpha, bravo)
    try:
        bravo.start()
        alpha.start()
        return asyncio.run(measure(alpha, bravo, n[0], n[1], senders, seconds, profile))
    finally:
        alpha.stop()
        bravo.stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 latency messages, 5 s of load")
    ap.add_argument("--relay", default="nats://127.0.0.1:4222", help="the NATS relay's URL")
    ap.add_argument("--senders", type=int, default=16)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--paths", default="https,nats", help="comma-separated: https,nats")
    ap.add_argument("--no-failover", action="store_true", help="skip the failover cut")
    ap.add_argument("--no-takeover", action="store_true", help="skip the standby takeover")
    ap.add_argument(
        "--profile", type=Path, help="py-spy both stations over each backlog's drain into DIR/PATH"
    )
    args = ap.parse_args(argv)
    n_latency = 100 if args.quick else 300
    n_backlog = 600 if args.quick else 2000
    seconds = args.seconds or (5.0 if args.quick else 20.0)
    out: dict[str, Any] = {"machine": machine(), "paths": {}}
    with tempfile.TemporaryDirectory(prefix="hotline-bench-paths-") as tmp:
        for path in args.paths.split(","):
            n = (n_latency, n_backlog)
            spy = args.profile / path if args.profile else None
            r = run_path(Path(tmp), path, args.relay, n, args.senders, seconds, spy)
            lat, tput, backlog = r["latency"], r["throughput"], r["backlog"]
            cpu, per = backlog["cpu_s"], backlog["cpu_us_per_msg"]
            print(
                f"{path}: latency p50 {lat['p50']:.2f} ms p99 {lat['p99']:.2f} ms "
                f"({n_latency} sequential); throughput {tput['delivered_per_s']:.0f} msgs/s "
                f"delivered ({tput['delivered']} of {tput['sent']}, {args.senders} senders, "
                f"{seconds:g} s, drain {tput['drain_s']:.2f} s); backlog of "
                f"{backlog['messages']}: {backlog['msgs_per_s']:.0f} msgs/s "
                f"({backlog['delivered']} delivered in {backlog['drain_s']:.2f} s, first "
                f"after {backlog['first_s'] or 0:.2f} s; CPU alpha {cpu['alpha']:.2f} s "
                f"{per['alpha']} µs/msg, bravo {cpu['bravo']:.2f} s {per['bravo']} µs/msg)",
                flush=True,
            )
            out["paths"][path] = {
                "latency": lat,
                "throughput": {k: v for k, v in tput.items() if k != "delivered_each_second"},
                "backlog": backlog,
            }
            out[f"{path}_msgs_per_s"] = round(backlog["msgs_per_s"], 1)
            out[f"{path}_end_to_end_msgs_per_s"] = round(tput["delivered_per_s"], 1)
            out[f"{path}_latency_p50_ms"] = round(lat["p50"], 3)
            out[f"{path}_latency_p99_ms"] = round(lat["p99"], 3)
    out |= {"failover_s_max": None, "lost": None, "duplicated": None, "takeover_s": None}
    if not args.no_failover:
        out |= failover(args.quick)
    if not args.no_takeover:
        out |= takeover(args.quick)
    add_counts(out)
    print(json.dumps(out))


def failover(quick: bool) -> dict[str, Any]:
    from _failover import measure_failover
    from hotline.errors import ConfigError

    try:
        r = measure_failover(messages=150 if quick else 300, cut_after=50 if quick else 100)
    except ConfigError as exc:
        print(f"failover: not measured here ({exc.message})", flush=True)
        return {}
    print(
        f"failover: {r['failover_s_max']:.2f} s from HTTPS DOWN to the relay; lost "
        f"{r['lost']}, duplicated {r['duplicated']} ({r.get('faults', '?')} faults)",
        flush=True,
    )
    return {"failover_s_max": r["failover_s_max"], "lost": r["lost"],
            "duplicated": r["duplicated"], "failover": r}  # fmt: skip


def takeover(quick: bool) -> dict[str, Any]:
    from _takeover import measure_takeover

    try:
        r = measure_takeover(messages=150 if quick else 300, kill_after=50 if quick else 100)
    except Exception as exc:  # no PostgreSQL here: say so, leave the key null
        print(f"takeover: not measured here ({type(exc).__name__}: {exc})", flush=True)
        return {}
    print(
        f"takeover: {r['takeover_s']:.2f} s after kill -9 of the active; lost {r['lost']}, "
        f"duplicated {r['duplicated']}",
        flush=True,
    )
    out: dict[str, Any] = {"takeover_s": r["takeover_s"], "takeover": r}
    return out


def add_counts(out: dict[str, Any]) -> None:
    """``lost`` and ``duplicated`` over every part that ran (failover and takeover)."""
    for key in ("lost", "duplicated"):
        parts = [out[p][key] for p in ("failover", "takeover") if p in out]
        out[key] = sum(parts) if parts else None


if __name__ == "__main__":
    main()
