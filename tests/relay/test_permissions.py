"""The relay's per-station permissions of docs/operations.md "Relay", on a nats-server of
this test's own (a generated configuration, a free port): with only these rights, two
stations carry a line over the relay; a station cannot publish under another sender's
subject, read another station's stream, or listen to another station's inboxes."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.errors
import pytest

from hotline.link import relayframe
from hotline.link.relay import inbox_prefix
from hotline.localnet import free_port
from tests.relay.conftest import NATS_SERVER, require_nats_server_binary
from tests.relay.test_relay import relay_pair, until

PREFIX = "hotline"
STATIONS = ("alpha", "bravo", "charlie")


def user_block(me: str, password: str) -> str:
    stream = relayframe.stream_name(PREFIX, me)
    publish = [relayframe.inbound_subject(PREFIX, p, me) for p in STATIONS if p != me] + [
        "$JS.API.INFO",
        f"$JS.API.STREAM.INFO.{stream}",
        f"$JS.API.STREAM.CREATE.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.station",
        f"$JS.API.CONSUMER.INFO.{stream}.station",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.station",
        f"$JS.ACK.{stream}.>",
    ]
    quoted = ", ".join(f'"{s}"' for s in publish)
    return (
        f'{{ user: {me}, password: "{password}", permissions: {{ '
        f"publish: {{ allow: [{quoted}] }}, "
        f'subscribe: {{ allow: ["{inbox_prefix(PREFIX, me)}.>"] }} }} }}'
    )


class RelayServer:
    """A nats-server of the test's own, with the documented rights; stop and start keep
    its JetStream store (a restart of the relay)."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.creds: dict[str, Path] = {}
        users = []
        for st in STATIONS:
            password = os.urandom(12).hex()
            path = tmp_path / f"{st}.relay"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(f"{st}:{password}\n")
            self.creds[st] = path
            users.append(user_block(st, password))
        self.conf = tmp_path / "nats.conf"
        self.conf.write_text(
            f"listen: 127.0.0.1:{self.port}\n"
            f'jetstream {{ store_dir: "{tmp_path / "js"}" }}\n'
            "accounts { HOTLINE { jetstream: enabled\n users: [\n" + "\n".join(users) + "\n] } }\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [NATS_SERVER, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not _listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the test's nats-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def relay_server(tmp_path: Path) -> Iterator[RelayServer]:
    require_nats_server_binary()
    server = RelayServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _user(path: Path) -> tuple[str, str]:
    user, _, password = path.read_text().strip().partition(":")
    return user, password


async def _refused(url: str, creds: Path, action: str) -> bool:
    """True when the server refuses ``action`` for the user of ``creds``."""
    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    user, password = _user(creds)
    me = user
    nc = await nats.connect(
        url,
        user=user,
        password=password,
        inbox_prefix=inbox_prefix(PREFIX, me),
        error_cb=on_error,
        allow_reconnect=False,
    )
    try:
        js = nc.jetstream(timeout=1)
        try:
            if action == "impersonate":  # alpha publishes as charlie, for bravo
                await js.publish(relayframe.inbound_subject(PREFIX, "bravo", "charlie"), b"x")
            elif action == "read-other-stream":
                sub = await js.pull_subscribe(
                    relayframe.stream_subjects(PREFIX, "bravo"),
                    durable="station",
                    stream=relayframe.stream_name(PREFIX, "bravo"),
                )
                await sub.fetch(1, timeout=1)
            elif action == "listen-other-inbox":
                await nc.subscribe(f"{inbox_prefix(PREFIX, 'bravo')}.>")
                await nc.flush(timeout=1)
                await asyncio.sleep(0.3)  # the server's -ERR comes asynchronously
            else:
                raise AssertionError(action)
        except (nats.errors.Error, TimeoutError):
            return True
        await asyncio.sleep(0.3)
        return any("permissions violation" in str(e).lower() for e in errors)
    finally:
        await nc.close()


def test_a_line_runs_with_only_the_documented_rights(
    tmp_path: Path, relay_server: RelayServer
) -> None:
    url, creds = relay_server.url, relay_server.creds

    async def scenario() -> None:
        async with relay_pair(
            tmp_path,
            PREFIX,
            relay_url=url,
            credentials=creds,
        ) as p:
            result = await p.tester.test_once()
            assert result["ok"], result
            m = await p.send("with the least rights")
            await p.drain()
            assert p.state(m.message_id) == "delivered"
            for action in ("impersonate", "read-other-stream", "listen-other-inbox"):
                assert await _refused(url, creds["alpha"], action), action

    asyncio.run(scenario())


def test_the_line_comes_back_after_the_relay_restarts(
    tmp_path: Path, relay_server: RelayServer
) -> None:
    """The relay stops with a message queued and comes back (its store kept): the
    stations reconnect on their own and the message is delivered once."""

    async def scenario() -> None:
        async with relay_pair(
            tmp_path, PREFIX, relay_url=relay_server.url, credentials=relay_server.creds
        ) as p:
            first = await p.send("before the restart")
            await p.drain()
            assert p.state(first.message_id) == "delivered"
            await asyncio.to_thread(relay_server.stop)
            second = await p.send("across the restart")
            await asyncio.to_thread(relay_server.start)
            for r in p.relays.values():
                await until("the relay connection back", lambda r=r: r.connected.is_set())
            await p.drain()
            assert p.state(second.message_id) == "delivered"
            assert sorted(m["sequence"] for m in p.received()) == [1, 2]

    asyncio.run(scenario())
