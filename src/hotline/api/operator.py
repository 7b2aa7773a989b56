"""The operator API: send, threads with delivery state, acknowledge, link, alarms, events.

Owns request validation (pydantic models with limits), bearer-token authentication
(constant-time comparison, a per-token rate limit) and the JSON shapes of responses.
OpenAPI at /openapi.json. Must not touch: the peer endpoint, SQL beyond the read-side
queries. Notification of a site or activity is information, never permission.
"""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from hotline import __version__
from hotline.api.errors import install_operator
from hotline.api.ledger import ledger_router
from hotline.api.peers import peers_router
from hotline.api.registry import registry_router
from hotline.crypto import primitives
from hotline.crypto.card import parse_card, safety_number
from hotline.errors import AuthError, InputError, NotFoundError, RateLimitedError
from hotline.service import queries
from hotline.service.line import Line
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload

PrecedenceName = Literal["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"]


class SendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    peer: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
    channel: Annotated[str, Field(min_length=1, max_length=64)] = "working"
    precedence: PrecedenceName = "ROUTINE"
    text: Annotated[str, Field(max_length=100_000)] = ""
    type: Literal["text"] = "text"
    ack_required: bool = True
    in_reply_to: uuid.UUID | None = None
    operator: Annotated[str, Field(max_length=100)] | None = None


class SendResponse(BaseModel):
    message_id: str
    peer: str
    sequence: int
    precedence: PrecedenceName
    state: str


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    officer: Annotated[str, Field(min_length=1, max_length=100)]
    note: Annotated[str, Field(max_length=2000)] | None = None


class _RateLimit:
    """A token bucket: ``rate`` requests a second, bursts of twice that."""

    def __init__(self, rate: float) -> None:
        self.rate, self.capacity = rate, rate * 2
        self.tokens, self.at = self.capacity, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class PeerAddRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    card: Annotated[str, Field(min_length=1, max_length=65536)]
    safety_number: Annotated[str, Field(max_length=200)]
    operator: Annotated[str, Field(max_length=100)] | None = None


def create_operator_app(
    line: Line,
    token: str,
    *,
    link_test_now: Any = None,
    add_peer: Any = None,
    deconfliction: Any = None,
    peer_admin: Any = None,
) -> FastAPI:
    app = FastAPI(
        title="hotline operator API",
        version=__version__,
        description="Operate one hotline station: send, read threads with delivery state, "
        "acknowledge, watch the line. Notification is information, never permission.",
    )
    install_operator(app)
    bearer = HTTPBearer(auto_error=False)
    expected = token.encode()
    bucket = _RateLimit(line.settings.api_rate_per_s)

    async def auth(
        cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if cred is None or not primitives.equal(cred.credentials.encode(), expected):
            raise AuthError("missing or wrong bearer token")
        if not bucket.take():
            raise RateLimitedError("too many requests")

    Auth = Depends(auth)
    app.include_router(ledger_router(line, auth))
    if deconfliction is not None:
        app.include_router(registry_router(deconfliction, auth))
    if peer_admin is not None:
        app.include_router(peers_router(line, peer_admin, auth))
    now = line.clock.now_us

    def read(fn: Any, *args: Any, **kw: Any) -> Any:
        def run() -> Any:
            with line.reader.connect() as conn:
                return fn(conn, *args, **kw)

        return asyncio.to_thread(run)

    @app.get("/api/v1/status", dependencies=[Auth])
    async def status() -> dict[str, Any]:
        peers = line.peers.ids()
        return {
            "station": line.station_id,
            "display_name": line.identity.display_name,
            "fingerprint": line.card.fingerprint(),
            "version": __version__,
            "counts": await read(queries.counts),
            "links": await read(queries.link_status, peers),
            "alarms": len(await read(queries.alarms, now())),
        }

    @app.get("/api/v1/card", dependencies=[Auth])
    async def card() -> dict[str, str]:
        return {"card": line.card.to_text(), "fingerprint": line.card.fingerprint()}

    @app.get("/api/v1/peers", dependencies=[Auth])
    async def peers() -> list[dict[str, Any]]:
        return [
            {
                "station_id": p,
                "display_name": line.peers.get(p).card.display_name,
                "fingerprint": line.peers.get(p).fingerprint(),
                "endpoints": list(line.peers.get(p).card.endpoints),
            }
            for p in line.peers.ids()
        ]

    @app.post("/api/v1/peers", dependencies=[Auth], status_code=201)
    async def peer_add(req: PeerAddRequest) -> dict[str, Any]:
        """Add a peer. The caller must send the safety number the officers confirmed."""
        card = parse_card(req.card)
        expected = safety_number(line.card, card)
        if not primitives.equal(req.safety_number.encode(), expected.encode()):
            raise InputError(
                "the safety number does not match this pair of cards",
                code="safety_number_mismatch",
                hint="read the safety number aloud with the peer's officer before adding",
            )
        if add_peer is None:
            raise NotFoundError("peers cannot be added on this station while it runs")
        added = await add_peer(req.card, req.operator)
        return {"station_id": added.card.station_id, "fingerprint": added.fingerprint()}

    @app.post("/api/v1/messages", dependencies=[Auth], status_code=201)
    async def send(req: SendRequest) -> SendResponse:
        payload = MessagePayload(
            type=req.type,
            text=req.text,
            ack_required=req.ack_required,
            in_reply_to=req.in_reply_to,
        )
        sent = await line.send(
            peer=req.peer,
            channel=req.channel,
            precedence=Precedence[req.precedence],
            payload=payload,
            operator=req.operator,
        )
        return SendResponse(
            message_id=str(sent.message_id),
            peer=sent.peer,
            sequence=sent.sequence,
            precedence=req.precedence,
            state="queued",
        )

    @app.get("/api/v1/messages", dependencies=[Auth])
    async def messages(
        channel: str | None = None,
        peer: str | None = None,
        direction: Literal["in", "out"] | None = None,
        unacknowledged: bool = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await read(
            queries.list_messages,
            now(),
            channel=channel,
            peer=peer,
            direction=direction,
            unacknowledged=unacknowledged,
            limit=limit,
        )
        return result

    @app.get("/api/v1/messages/{message_id}", dependencies=[Auth])
    async def message(message_id: Annotated[str, Field(max_length=36)]) -> dict[str, Any]:
        found: dict[str, Any] | None = await read(queries.get_message, now(), message_id)
        if found is None:
            raise NotFoundError(f"no message {message_id}")
        return found

    @app.post("/api/v1/messages/{message_id}/ack", dependencies=[Auth])
    async def ack(message_id: str, req: AckRequest) -> dict[str, Any]:
        await line.acknowledge(message_id, req.officer, req.note)
        found: dict[str, Any] = await read(queries.get_message, now(), message_id)
        return found

    @app.get("/api/v1/channels", dependencies=[Auth])
    async def channels() -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await read(queries.channels)
        return result

    @app.get("/api/v1/channels/{channel}/thread", dependencies=[Auth])
    async def thread(
        channel: str, limit: Annotated[int, Query(ge=1, le=1000)] = 200
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await read(
            queries.list_messages, now(), channel=channel, limit=limit
        )
        return list(reversed(rows))

    @app.get("/api/v1/link", dependencies=[Auth])
    async def link() -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await read(queries.link_status, line.peers.ids())
        return result

    @app.post("/api/v1/link/{peer}/test", dependencies=[Auth])
    async def link_test(peer: str) -> dict[str, Any]:
        line.peers.get(peer)
        if link_test_now is None:
            raise NotFoundError("link tests are not running on this station")
        result: dict[str, Any] = await link_test_now(peer)
        return result

    @app.get("/api/v1/alarms", dependencies=[Auth])
    async def alarms() -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await read(queries.alarms, now())
        return result

    @app.get("/api/v1/events", dependencies=[Auth])
    async def events(request: Request) -> StreamingResponse:
        async def stream() -> AsyncIterator[bytes]:
            async with line.events.subscribe() as q:
                yield b": connected\n\n"
                while not await request.is_disconnected():
                    try:
                        ev = await asyncio.wait_for(q.get(), 15)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    data = json.dumps(ev.data)
                    yield f"id: {ev.id}\nevent: {ev.type}\ndata: {data}\n\n".encode()

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app
