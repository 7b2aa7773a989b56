"""The line's units of work in one process, no HTTP: CPU per message of each use case.

Two ``Station`` objects (alpha, bravo; hotline.station) on their own stores, driven
directly as the peer endpoint and the outbox drive them: alpha sends ``--messages``
messages (16 at a time, so the writer groups them), bravo checks and stores them
(``check_inbound`` + ``store_inbound``, 64 a batch), alpha records bravo's receipts
(``record_receipt``). Each phase prints the process CPU time per message (user +
system, all threads: the writer's SQL, sealing, signing, verifying), the part of it the
store writers' threads spent (``writers``: what the writer holds the GIL for; Linux
only) and its wall time.
CPU time moves much less with the machine's load than the wall-clock figures of
bench/line.py, so this is the bench to compare two versions of the store's hot path.

``--database-url`` (a PostgreSQL server where the bench may create databases) runs both
stations on PostgreSQL; default: SQLite files with ``sqlite_synchronous = FULL``.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchkit import identity, machine, pg_databases
from hotline.clock import SystemClock
from hotline.settings import Settings
from hotline.station import Station
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload

TEXT = "Air activity reported 4 km from the nuclear plant perimeter. Confirm intentions."


@contextlib.contextmanager
def databases(root: Path, admin_url: str | None) -> Iterator[dict[str, str]]:
    if admin_url is None:
        yield {s: f"sqlite:///{root / (s + '.db')}" for s in ("alpha", "bravo")}
        return
    with pg_databases(admin_url, "units", ("alpha", "bravo")) as urls:
        yield urls


def outbound(station: Station, peer: str) -> list[bytes]:
    import sqlalchemy as sa

    from hotline.ledger.entry import Entry
    from hotline.store import schema

    o, e = schema.outbox, schema.entries
    with station.read_engine.connect() as conn:
        rows = conn.execute(
            sa.select(e.c.leaf)
            .join(o, o.c.entry_idx == e.c.idx)
            .where(o.c.peer == peer)
            .order_by(o.c.sequence)
        ).all()
    return [Entry.decode(bytes(r.leaf)).data for r in rows]


def writers_cpu_s() -> float:
    """CPU seconds of this process's store writer threads so far (0 off Linux)."""
    total = 0.0
    for t in threading.enumerate():
        if t.name != "hotline-writer" or t.native_id is None:
            continue
        try:
            with open(f"/proc/self/task/{t.native_id}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class Phase:
    def __init__(self, name: str, n: int) -> None:
        self.name, self.n = name, n

    def __enter__(self) -> Phase:
        self.cpu, self.wall = time.process_time(), time.perf_counter()
        self.writers = writers_cpu_s()
        return self

    def __exit__(self, *_: Any) -> None:
        self.cpu_us = (time.process_time() - self.cpu) / self.n * 1e6
        self.writers_us = (writers_cpu_s() - self.writers) / self.n * 1e6
        self.wall_s = time.perf_counter() - self.wall
        print(
            f"{self.name:8s} {self.n} in {self.wall_s:.2f} s: {self.cpu_us:.0f} µs CPU/msg "
            f"(writers {self.writers_us:.0f})"
        )


async def scenario(a: Station, b: Station, n: int) -> dict[str, float]:
    payload = MessagePayload(text=TEXT)
    for st in (a, b):
        st.writer.start()
    out: dict[str, float] = {}
    try:
        with Phase("send", n) as p:
            for i in range(0, n, 16):
                await asyncio.gather(
                    *(
                        a.line.send(peer="bravo", channel="working",
                                    precedence=Precedence.ROUTINE, payload=payload)
                        for _ in range(min(16, n - i))
                    )
                )  # fmt: skip
        out["send"] = p.cpu_us
        out["send_writer"] = p.writers_us
        raws = outbound(a, "bravo")
        receipts: list[bytes] = []
        with Phase("ingest", n) as p:
            for i in range(0, n, 64):
                items = [b.line.check_inbound(r) for r in raws[i : i + 64]]
                for r in await b.line.store_inbound(items):
                    if isinstance(r, Exception):
                        raise r
                    receipts.append(r)
        out["ingest"] = p.cpu_us
        with Phase("receipt", n) as p:
            for i in range(0, n, 64):
                await asyncio.gather(
                    *(a.line.record_receipt("bravo", r) for r in receipts[i : i + 64])
                )
        out["receipt"] = p.cpu_us
    finally:
        for st in (a, b):
            st.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=None, help="default 2,000 (300 quick)")
    ap.add_argument("--quick", action="store_true", help="a short run: 300 messages")
    ap.add_argument("--database-url", help="PostgreSQL server URL (default: SQLite files)")
    args = ap.parse_args()
    messages = args.messages or (300 if args.quick else 2000)
    m = machine()
    print(f"machine: {m['nproc']} cores, load average {m['loadavg_1m_at_start']:.2f} at start")
    with tempfile.TemporaryDirectory(prefix="hotline-units-") as tmp:
        root = Path(tmp)
        with databases(root, args.database_url) as urls:
            stations = []
            for name in ("alpha", "bravo"):
                (root / name).mkdir()
                s = Settings(data_dir=root / name, database_url=urls[name])
                stations.append(Station(s, identity(name), SystemClock()))
            a, b = stations
            for me, other in ((a, b), (b, a)):
                _card, unit = me.line.peer_add_unit(other.line.card.to_text(), "bench")
                me.writer.run_sync(unit)
            out = asyncio.run(scenario(a, b, messages))
    summary = {
        "bench": "units",
        "store": "postgresql" if args.database_url else "sqlite",
        "messages": messages,
        "loadavg_1m_at_start": m["loadavg_1m_at_start"],
        "cpu_us_per_msg": {k: round(v) for k, v in out.items()},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
