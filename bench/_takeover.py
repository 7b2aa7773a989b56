"""Standby takeover time (issue 10), for bench/paths.py: ``measure_takeover()``.

Station alpha runs as an active and a standby process sharing a fresh PostgreSQL
database, behind a TCP balancer that follows ``/health`` (hotline.localnet); bravo is a
single process on SQLite. Messages stream from bravo to alpha; the active is killed with
SIGKILL mid-stream and the time until the standby answers ``/health`` 200 (active) is
``takeover_s``. Then the stream is checked: every message bravo sent is received by
alpha once (``lost``, ``duplicated``). Imported by the bench scripts (``python bench/x.py``
puts this folder on the path); never by the package or the tests.

Needs PostgreSQL at HOTLINE_TEST_PG (default postgresql+psycopg://postgres@127.0.0.1:5432/test,
whose server must let it create a database).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from hotline import localnet

PG_ADMIN_URL = os.environ.get(
    "HOTLINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
LINE: dict[str, Any] = {
    "api_rate_per_s": 100_000.0,
    "link_test_interval_s": 3.0,
    "link_down_after_failures": 2,
    "peer_timeout_s": 5.0,
    "retry_base_s": 0.1,
    "retry_max_s": 1.0,
}
PAIR: dict[str, Any] = {**LINE, "standby": True, "takeover_poll_s": 0.1, "leader_lease_s": 1.0}


def _wait(what: str, probe: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            value = probe()
            if value:
                return value
        time.sleep(0.02)
    raise TimeoutError(f"no {what} after {timeout:.0f}s")


def measure_takeover(messages: int = 300, kill_after: int = 100) -> dict[str, Any]:
    """Kill -9 the active after ``kill_after`` of ``messages`` arrived: the takeover time
    in seconds, and what was lost or duplicated once the stream settled."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"hotline_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    balancers: list[localnet.Balancer] = []
    stations: list[localnet.LocalStation] = []
    try:
        with tempfile.TemporaryDirectory(prefix="hotline-takeover-") as tmp:
            root = Path(tmp)
            one = localnet.make_station(
                root, "alpha", settings={**PAIR, "database_url": url, "process_name": "alpha-1"}
            )
            bravo = localnet.make_station(root, "bravo", settings=LINE)
            localnet.pair(one, bravo)
            front_peer = one.peer_port
            localnet.move_ports(one, localnet.free_port(), localnet.free_port())
            two = localnet.make_standby(one, "alpha-2", settings={"process_name": "alpha-2"})
            stations += [one, two, bravo]
            balancers.append(
                localnet.Balancer(
                    front_peer,
                    [(one.api_url, one.peer_port), (two.api_url, two.peer_port)],
                )
            )
            one.start()
            two.start_standby()
            bravo.start()

            sent: list[str] = []

            def stream() -> None:
                with bravo.client() as c:
                    for i in range(messages):
                        r = c.post(
                            "/api/v1/messages",
                            json={"peer": "alpha", "channel": "working", "text": f"m {i}"},
                        )
                        r.raise_for_status()
                        sent.append(r.json()["message_id"])

            sender = threading.Thread(target=stream, daemon=True)
            sender.start()
            _wait(
                f"{kill_after} messages at alpha",
                lambda: one.api("GET", "/api/v1/status")["counts"]["received"] >= kill_after,
                120,
            )
            killed = time.monotonic()
            one.kill()
            _wait("active standby", lambda: two.role() == "active", 60)
            takeover_s = time.monotonic() - killed
            sender.join(300)
            _wait(
                "every message at alpha",
                lambda: two.api("GET", "/api/v1/status")["counts"]["received"] >= len(sent),
                300,
            )
            got = [
                m["message_id"]
                for m in two.api(
                    "GET",
                    "/api/v1/messages",
                    params={"limit": 1000, "direction": "in", "channel": "working"},
                )
            ]
            return {
                "takeover_s": round(takeover_s, 3),
                "sent": len(sent),
                "lost": len(set(sent) - set(got)),
                "duplicated": len(got) - len(set(got)),
            }
    finally:
        for b in balancers:
            b.close()
        for st in stations:
            with contextlib.suppress(Exception):
                st.kill()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    import json

    print(json.dumps(measure_takeover()))
