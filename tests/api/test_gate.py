"""The operator API's gate (hotline.api.limits): the token is checked before the body, the
body's size before it is read, wrong tokens are throttled per client, and one client
cannot use up another's rate.

Memory is not measured by timing or by the process's size: the tests drive the real
operator app as a plain ASGI callable and count the bytes its ``receive`` hands over. An
unauthenticated 64 MiB body must cost 0 bytes; an authenticated body over the limit at
most the limit plus one chunk. Rates run on a fake clock.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.api.limits import AUTH_FAILURE_BURST, Buckets
from hotline.api.operator import create_operator_app
from tests.api.test_operator_api import TOKEN
from tests.service import conftest as service
from tests.service.conftest import Pair, snapshot

#: two in-process stations (tests/service/conftest.py); only alpha's API is driven here
run_pair = service.run_pair

MIB = 1024 * 1024
CHUNK = 64 * 1024
LIMIT = 1 * MIB  # max_request_bytes of these tests
IMPORT_LIMIT = 2 * MIB  # import_max_bytes of these tests
GOOD = f"Bearer {TOKEN}"

#: the gate does not depend on the database: SQLite only
sqlite_only = pytest.mark.parametrize("run_pair", ["sqlite"], indirect=True)


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    read: int  # body bytes the app took from receive
    calls: int = 0

    def error(self) -> dict[str, Any]:
        doc = json.loads(self.body)
        assert set(doc) == {"error"}, doc
        assert set(doc["error"]) == {"code", "message", "hint"}, doc
        return dict(doc["error"])


@dataclass
class Body:
    """A request body produced lazily, chunk by chunk (64 MiB never sits in memory)."""

    size: int
    chunk: bytes = field(default=b"{" + b" " * (CHUNK - 1))

    def chunks(self) -> Iterator[bytes]:
        left = self.size
        while left > 0:
            piece = self.chunk if left >= len(self.chunk) else self.chunk[:left]
            left -= len(piece)
            yield piece


async def call(
    app: Any,
    method: str,
    path: str,
    *,
    auth: str | None = GOOD,
    body: Body | bytes | None = None,
    declare: bool = True,
    client: str = "10.0.0.1",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> Answer:
    """One request through the ASGI interface, counting the body bytes handed over."""
    raw = Body(len(body), body) if isinstance(body, bytes) else body
    hdrs = list(headers or [])
    if auth is not None:
        hdrs.append((b"authorization", auth.encode()))
    if raw is not None:
        hdrs.append((b"content-type", b"application/json"))
        if declare:
            hdrs.append((b"content-length", str(raw.size).encode()))
    chunks = raw.chunks() if raw is not None else iter(())
    answer = Answer(0, {}, b"", 0)
    done = False

    async def receive() -> dict[str, Any]:
        nonlocal done
        answer.calls += 1
        if done:
            return {"type": "http.disconnect"}
        piece = next(chunks, None)
        if piece is None:
            done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        answer.read += len(piece)
        return {"type": "http.request", "body": piece, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": hdrs,
        "client": (client, 40000),
        "server": ("station", 80),
    }
    await app(scope, receive, send)
    return answer


def gate_app(p: Pair, clock: FakeTime | None = None, **_: Any) -> Any:
    s = p.alpha
    return create_operator_app(
        s.line, TOKEN, deconfliction=s.deconfliction, gate_clock=clock or FakeTime()
    )


SETTINGS: dict[str, Any] = {
    "max_request_bytes": LIMIT,
    "import_max_bytes": IMPORT_LIMIT,
    "api_rate_per_s": 5.0,
    "api_auth_failures_per_s": 1.0,
}


@sqlite_only
def test_an_unauthenticated_64_mib_body_is_never_read(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        app = gate_app(p)
        before = snapshot(p.alpha)
        for path in ("/api/v1/messages", "/api/v1/notices", "/api/v1/sites/import"):
            for auth in (None, "Bearer wrong", f"Basic {TOKEN}", GOOD + "x"):
                for declare in (True, False):
                    a = await call(app, "POST", path, auth=auth, body=Body(64 * MIB),
                                   declare=declare, client=f"10.0.1.{declare:d}")  # fmt: skip
                    assert a.read == 0, (path, auth, declare)
                    assert a.status in (401, 429), a.body
                    if a.status == 401:
                        assert a.headers["www-authenticate"] == "Bearer"
                        assert a.error()["code"] == "unauthorized"
        assert snapshot(p.alpha) == before

    run_pair(scenario, **(SETTINGS | {"api_auth_failures_per_s": 1_000.0}))


@sqlite_only
def test_four_unauthenticated_64_mib_bodies_at_once_read_nothing(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        app = gate_app(p)
        answers = await asyncio.gather(
            *(
                call(app, "POST", "/api/v1/messages", auth=None, body=Body(64 * MIB),
                     client=f"10.0.2.{i}", declare=i % 2 == 0)
                for i in range(4)
            )
        )  # fmt: skip
        assert [a.status for a in answers] == [401] * 4
        assert [a.read for a in answers] == [0] * 4

    run_pair(scenario, **SETTINGS)


@sqlite_only
def test_a_declared_body_over_the_limit_is_refused_unread(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        app = gate_app(p)
        before = snapshot(p.alpha)
        for path, limit in (("/api/v1/messages", LIMIT), ("/api/v1/sites/import", IMPORT_LIMIT)):
            a = await call(app, "POST", path, body=Body(limit + 1), client="10.0.3.1")
            assert (a.status, a.read) == (413, 0), a.body
            err = a.error()
            assert err["code"] == "too_large"
            assert "max_request_bytes" in err["hint"]
        # a Content-Length that is not a number is refused the same way
        for bad in (b"-1", b"1e9", b"12 ", b"99999999999999999999999"):
            a = await call(app, "POST", "/api/v1/messages", body=Body(10), declare=False,
                           headers=[(b"content-length", bad)], client="10.0.3.2")  # fmt: skip
            assert (a.status, a.read) == (413, 0), bad
        assert snapshot(p.alpha) == before

    run_pair(scenario, **SETTINGS)


@sqlite_only
def test_an_undeclared_body_is_cut_off_at_the_limit(run_pair: Any) -> None:
    """Chunked bodies (no Content-Length) are counted as they arrive."""

    async def scenario(p: Pair) -> None:
        app = gate_app(p)
        before = snapshot(p.alpha)
        for path, limit in (
            ("/api/v1/messages", LIMIT),
            ("/api/v1/notices", LIMIT),
            ("/api/v1/sites/import", IMPORT_LIMIT),
        ):
            a = await call(app, "POST", path, body=Body(64 * MIB), declare=False,
                           client="10.0.4.1")  # fmt: skip
            assert a.status == 413, (path, a.body)
            assert a.error()["code"] == "too_large"
            assert a.read <= limit + CHUNK, (path, a.read)
        assert snapshot(p.alpha) == before

    run_pair(scenario, **SETTINGS)


@sqlite_only
def test_a_body_within_the_limit_goes_through(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        app = gate_app(p)
        body = json.dumps({"peer": "bravo", "text": "x" * 1000}).encode()
        for declare in (True, False):
            a = await call(app, "POST", "/api/v1/messages", body=body, declare=declare)
            assert a.status == 201, a.body
            assert a.read == len(body)
        # import: over max_request_bytes, within import_max_bytes: not refused for size
        a = await call(app, "POST", "/api/v1/sites/import", body=Body(LIMIT + CHUNK))
        assert a.status == 422, a.body
        assert a.error()["code"] == "bad_import_file"

    run_pair(scenario, **SETTINGS)


@sqlite_only
def test_wrong_tokens_are_throttled_per_client_and_never_lock_out_the_right_one(
    run_pair: Any,
) -> None:
    async def scenario(p: Pair) -> None:
        clock = FakeTime()
        app = gate_app(p, clock)
        statuses = [
            (await call(app, "GET", "/api/v1/alarms", auth="Bearer bad", client="10.9.9.9")).status
            for _ in range(int(AUTH_FAILURE_BURST) + 5)
        ]  # fmt: skip
        assert statuses[: int(AUTH_FAILURE_BURST)] == [401] * int(AUTH_FAILURE_BURST)
        assert statuses[int(AUTH_FAILURE_BURST) :] == [429] * 5
        a = await call(app, "GET", "/api/v1/alarms", auth=None, client="10.9.9.9")
        assert a.status == 429
        assert "api_auth_failures_per_s" in a.error()["hint"]
        # another client is not slowed by the first one's failures
        a = await call(app, "GET", "/api/v1/alarms", auth="Bearer guess", client="10.9.9.8")
        assert a.status == 401
        # the right token from the throttled client still works
        a = await call(app, "GET", "/api/v1/alarms", client="10.9.9.9")
        assert a.status == 200, a.body
        # and the throttled client gets its budget back as time passes (1 a second)
        clock.now += 3
        got = [
            (await call(app, "GET", "/api/v1/alarms", auth="Bearer x", client="10.9.9.9")).status
            for _ in range(4)
        ]
        assert got == [401, 401, 401, 429]

    run_pair(scenario, **SETTINGS)


@sqlite_only
def test_one_client_cannot_use_up_another_clients_rate(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        clock = FakeTime()
        app = gate_app(p, clock)
        burst = 10  # api_rate_per_s 5, burst 2x
        got = [(await call(app, "GET", "/api/v1/alarms", client="10.7.0.1")).status
               for _ in range(burst + 3)]  # fmt: skip
        assert got == [200] * burst + [429] * 3
        limited = await call(app, "GET", "/api/v1/alarms", client="10.7.0.1")
        assert limited.error()["code"] == "rate_limited"
        # the public spec counts against the same client's rate
        spec = await call(app, "GET", "/openapi.json", auth=None, client="10.7.0.3")
        assert spec.status == 200
        for _ in range(burst):
            await call(app, "GET", "/openapi.json", auth=None, client="10.7.0.3")
        spec = await call(app, "GET", "/openapi.json", auth=None, client="10.7.0.3")
        assert spec.status == 429
        # a second client has its own budget
        other = [(await call(app, "GET", "/api/v1/alarms", client="10.7.0.2")).status
                 for _ in range(burst)]  # fmt: skip
        assert other == [200] * burst
        clock.now += 1.0  # five more a second
        got = [(await call(app, "GET", "/api/v1/alarms", client="10.7.0.1")).status
               for _ in range(6)]  # fmt: skip
        assert got == [200] * 5 + [429]

    run_pair(scenario, **SETTINGS)


@sqlite_only
def test_openapi_is_public_and_everything_else_is_not(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        app = gate_app(p)
        assert (await call(app, "GET", "/openapi.json", auth=None)).status == 200
        for path in ("/docs", "/redoc", "/api/v1/status", "/nowhere"):
            a = await call(app, "GET", path, auth=None, client="10.6.0.1")
            assert a.status == 401, path
        for path in ("/docs", "/redoc", "/nowhere"):
            a = await call(app, "GET", path, client="10.6.0.2")
            assert a.status == 404, path
            assert a.error()["code"] == "not_found"

    run_pair(scenario, **(SETTINGS | {"api_auth_failures_per_s": 1_000.0}))


@sqlite_only
def test_garbage_headers_never_read_the_body_nor_give_a_500(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        app = gate_app(p)
        before = snapshot(p.alpha)
        header_bytes = st.binary(max_size=60).filter(lambda b: b"\n" not in b)

        @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            auth=st.none() | header_bytes | st.builds(lambda b: b"Bearer " + b, header_bytes),
            length=st.none()
            | header_bytes
            | st.integers(-5, 10 * LIMIT).map(lambda n: str(n).encode()),
            path=st.sampled_from(["/api/v1/messages", "/api/v1/sites/import", "/api/v1/x"]),
            size=st.integers(0, 3 * CHUNK),
            client=st.sampled_from(["10.5.0.1", "10.5.0.2", "::1"]),
        )
        def garbage(auth: bytes | None, length: bytes | None, path: str, size: int,
                    client: str) -> None:  # fmt: skip
            headers = [] if auth is None else [(b"authorization", auth)]
            if length is not None:
                headers.append((b"content-length", length))
            a = asyncio.run(call(app, "POST", path, auth=None, body=Body(size), declare=False,
                                 headers=headers, client=client))  # fmt: skip
            assert a.status in (401, 413, 429), (a.status, a.body)
            assert a.read == 0
            a.error()

        await asyncio.to_thread(garbage)
        assert snapshot(p.alpha) == before

    run_pair(scenario, **(SETTINGS | {"api_auth_failures_per_s": 1_000_000.0}))


@sqlite_only
def test_websockets_are_refused(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        app = gate_app(p)
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "websocket.connect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "websocket", "path": "/api/v1/events", "headers": [],
                 "client": ("10.4.4.4", 1), "query_string": b"", "root_path": ""}  # fmt: skip
        await app(scope, receive, send)
        assert sent == [{"type": "websocket.close", "code": 1008}]

    run_pair(scenario, **SETTINGS)


def test_buckets_remember_a_bounded_number_of_clients() -> None:
    clock = FakeTime()
    buckets = Buckets(rate=1.0, capacity=1.0, clock=clock, max_keys=3)
    assert buckets.take("a")
    assert not buckets.take("a")
    for key in ("b", "c", "d"):
        assert buckets.take(key)
    assert len(buckets) == 3  # "a", the least recently seen, was dropped
    assert buckets.take("a")  # a forgotten client starts afresh: bounded memory wins
    clock.now += 1.0
    assert buckets.take("d")


@sqlite_only
def test_json_bodies_parsed_on_the_loop_are_small_and_notices_have_their_own_limit(
    run_pair: Any,
) -> None:
    """A send, an acknowledgement or a peer card is parsed by FastAPI on the event loop:
    its body is refused over api_max_json_bytes, unread, though max_request_bytes is
    larger; a notice (read raw, parsed in a worker thread) may be larger."""

    async def scenario(p: Pair) -> None:
        app = gate_app(p)
        json_limit = p.alpha.settings.api_max_json_bytes
        assert json_limit < LIMIT
        before = snapshot(p.alpha)
        for path in ("/api/v1/messages", "/api/v1/peers"):
            a = await call(app, "POST", path, body=Body(json_limit + 1), client="10.0.7.1")
            assert (a.status, a.read) == (413, 0), (path, a.body)
            assert "api_max_json_bytes" in a.error()["hint"]
            a = await call(app, "POST", path, body=Body(4 * MIB), declare=False,
                           client="10.0.7.2")  # fmt: skip
            assert a.status == 413, (path, a.body)
            assert a.read <= json_limit + CHUNK, (path, a.read)
        # a notice of more than api_max_json_bytes reaches its parser (and is refused there)
        a = await call(app, "POST", "/api/v1/notices", body=Body(json_limit + CHUNK),
                       client="10.0.7.3")  # fmt: skip
        assert a.status == 422, a.body
        assert a.read == json_limit + CHUNK
        assert snapshot(p.alpha) == before

    run_pair(scenario, **SETTINGS)
