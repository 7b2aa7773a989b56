"""A hung peer: it accepts TCP connections and never answers a byte.

The station under test runs in-process with its real composition (``Station.serve`` on
real sockets, its link tests and outbox as in production) on SQLite and PostgreSQL. Its
one peer's card points at a listener that accepts and then says nothing. The peer
timeout is set to an hour, so a station that waits for the peer's answer to decide
would show the line as anything but DOWN for the whole test: the line must go DOWN,
with a ``link_down`` alarm, on the link-test schedule alone; and the station keeps
answering its operators meanwhile. (How soon, in seconds, is not asserted: that is a
timing, and timings live in bench/.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hotline.settings import Settings
from hotline.station import Station, api_token, bind, read_run_file
from tests.crypto.helpers import new_identity

#: the longest the test waits for DOWN; a guard against hanging, not a timing assertion
GUARD_S = 60.0


@pytest.fixture
def hung_endpoint() -> Iterator[int]:
    """A port that accepts TCP connections and never sends or reads anything."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        done.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


def run_against_hung_peer(tmp_path: Path, store_url: str, port: int) -> list[str]:
    """Serve alpha, whose one peer hangs, until its line is DOWN, checking what operators
    see on the way; stop it; return the resources it left open (collected at once, once
    nothing refers to the station any more, so that they are not reported later against
    whichever test the collector happens to run in)."""
    _serve_until_down(tmp_path, store_url, port)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    return [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)]


def _serve_until_down(tmp_path: Path, store_url: str, port: int) -> None:
    data_dir = tmp_path / "alpha"
    data_dir.mkdir()
    settings = Settings(
        data_dir=data_dir,
        database_url=store_url,
        link_test_interval_s=1.0,
        peer_timeout_s=3600.0,
        api_port=0,
        peer_port=0,
    )
    station = Station(settings, new_identity("alpha", "Alpha"))
    hung = dataclasses.replace(
        new_identity("hung", "Hung"), endpoints=(f"https://127.0.0.1:{port}",)
    )
    _card, unit = station.line.peer_add_unit(hung.card().to_text(), "test")
    station.writer.run_sync(unit)
    token = api_token(data_dir)

    async def main() -> None:
        stop = asyncio.Event()
        socks = [bind("127.0.0.1", 0), bind("127.0.0.1", 0)]
        serving = asyncio.create_task(station.serve(socks[0], socks[1], stop=stop))
        try:
            while read_run_file(data_dir) is None:  # noqa: ASYNC110 - the station writes it
                await asyncio.sleep(0.05)
            api = read_run_file(data_dir)["api"]  # type: ignore[index]
            async with httpx.AsyncClient(
                base_url=api, headers={"authorization": f"Bearer {token}"}, trust_env=False
            ) as op:
                link = await _until_down(op)
                assert link["peer"] == "hung"
                alarms = (await op.get("/api/v1/alarms")).json()
                assert [a["kind"] for a in alarms if a.get("peer") == "hung"] == ["link_down"]
                # the station keeps answering its operators
                r = await op.post("/api/v1/messages", json={"peer": "hung", "text": "anyone?"})
                assert r.status_code == 201, r.text
                status = (await op.get("/api/v1/status")).json()
                assert status["station"] == "alpha"
        finally:
            stop.set()
            await asyncio.wait_for(serving, 30)
            for sock in socks:
                sock.close()

    try:
        asyncio.run(main())
    finally:
        station.close()


def test_a_hung_peer_is_marked_down_with_an_alarm(
    tmp_path: Path, store_url: str, hung_endpoint: int
) -> None:
    run_against_hung_peer(tmp_path, store_url, hung_endpoint)


def test_a_station_stopped_while_its_peer_hangs_leaves_no_socket_open(
    tmp_path: Path, store_url: str, hung_endpoint: int
) -> None:
    """A link test in flight to the hung peer when the station stops is cancelled; its
    connection must be closed with it, not left for the garbage collector."""
    leaked = run_against_hung_peer(tmp_path, store_url, hung_endpoint)
    assert leaked == []


async def _until_down(op: httpx.AsyncClient) -> dict[str, Any]:
    deadline = time.monotonic() + GUARD_S
    seen: Any = None
    while time.monotonic() < deadline:
        r = await op.get("/api/v1/link")
        assert r.status_code == 200, r.text
        [seen] = [ln for ln in r.json() if ln["peer"] == "hung"]
        if seen["state"] == "DOWN":
            return dict(seen)
        await asyncio.sleep(0.2)
    raise AssertionError(f"the hung peer's line never went DOWN; last seen {seen}")
