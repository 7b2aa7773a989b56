"""Idempotent sends: ``POST /api/v1/messages`` with an ``Idempotency-Key`` header.

Owns what a key means to the operator API: the first successful send made with a key
is answered again, byte for byte and with its status, to every retry with the same key
and the same request, for ``idempotency_ttl_s``; a retry with the same key and another
request is refused (422, ``idempotency_key_reused``). Invariants: concurrent requests
with one key send at most once (they queue on the key, and the key is recorded in the
send's own transaction, so a race the queue misses is rolled back by the store); a
refused send records nothing (the next retry runs it again).

Must not touch: SQL (store/idempotency.py), how a message is sent (``Line.send``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi.responses import JSONResponse
from sqlalchemy.engine import Connection

from hotline.errors import InputError
from hotline.service.line import Line, Sent
from hotline.store import idempotency

#: the header's name and the key's form: 1 to 255 visible ASCII characters
HEADER = "Idempotency-Key"
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
REPLAYED_HEADER = "idempotent-replayed"

#: what runs inside the send's unit, beside the message
Also = Callable[[Connection, Sent], None]


def request_hash(canonical: str) -> bytes:
    """What identifies a request under a key: SHA-256 of its canonical JSON (the parsed
    request with every default filled in, so spelling a default out changes nothing)."""
    return hashlib.sha256(canonical.encode()).digest()


class IdempotentSends:
    """The keys of one operator app: a queue per key in flight, the store for the rest."""

    def __init__(self, line: Line) -> None:
        self.line = line
        self._ttl_us = int(line.settings.idempotency_ttl_s * 1_000_000)
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def _hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]

    async def send(
        self,
        key: str,
        digest: bytes,
        send: Callable[[Also], Awaitable[Sent]],
        render: Callable[[Sent], str],
    ) -> JSONResponse | Sent:
        """The first result under ``key`` (a response to return as it is), or what a new
        send returned (its response, ``render(sent)``, is recorded with it)."""
        async with self._hold(key):
            stored = await asyncio.to_thread(self._find, key)
            if stored is not None:
                return _replay(stored, digest)

            def also(conn: Connection, sent: Sent) -> None:
                idempotency.record(
                    conn,
                    key=key,
                    request_hash=digest,
                    status=201,
                    response=render(sent),
                    now_us=self.line.clock.now_us(),
                    ttl_us=self._ttl_us,
                )

            try:
                return await send(also)
            except idempotency.KeyTaken as taken:  # another process, or a lost race
                return _replay(taken.stored, digest)

    def _find(self, key: str) -> idempotency.Stored | None:
        with self.line.reader.connect() as conn:
            return idempotency.find(conn, key, self.line.clock.now_us())


def _replay(stored: idempotency.Stored, digest: bytes) -> JSONResponse:
    if stored.request_hash != digest:
        raise InputError(
            f"the {HEADER} {stored.key!r} was used for another request",
            code="idempotency_key_reused",
            hint="use a new key for a new message; retry with the same request to get the "
            "first result",
        )
    return JSONResponse(
        json.loads(stored.response), status_code=stored.status, headers={REPLAYED_HEADER: "true"}
    )
