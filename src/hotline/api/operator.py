"""The operator API: send, threads with delivery state, acknowledge, link, alarms, events.

Owns request validation (pydantic models with limits), the routes and their documented
answers (``api/shapes.py``, errors from ``api/openapi.py``). In front of every route sits
the gate (``api/limits.py``): the bearer token is checked first, then the client's rate,
then the body's size, all before a byte of the body is read. OpenAPI at /openapi.json;
/docs and /redoc are off (see ``api/openapi.py``). Must not touch: the peer endpoint, SQL
beyond the read-side queries. Notification of a site or activity is information, never
permission.
"""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import Match

from hotline import __version__
from hotline.api import openapi, shapes
from hotline.api.approvals import ApprovalHeld, approvals_router
from hotline.api.auth import allowed, principal
from hotline.api.bundles import BUNDLE_IMPORT_PATH, bundles_router
from hotline.api.channels import channels_router
from hotline.api.errors import install_operator
from hotline.api.idempotency import HEADER, KEY_PATTERN, IdempotentSends, request_hash
from hotline.api.ledger import ledger_router, transcript_router
from hotline.api.limits import OperatorGate
from hotline.api.officers import LOGIN_ROUTE, officers_router
from hotline.api.openapi import errors
from hotline.api.peers import peers_router
from hotline.api.registry import (
    IMPORT_PATH,
    IMPORT_PREVIEW_PATH,
    NOTICE_ENVELOPE_BYTES,
    NOTICES_PATH,
    registry_router,
)
from hotline.api.routers import include
from hotline.api.search import search_router
from hotline.api.sendbatch import BATCH_PATH, SendRequest, add_batch_route
from hotline.api.stages import MessageStages, MessageSummary, stages_router
from hotline.api.standby import HEALTH_PATH, Health, health_router
from hotline.api.suspension import suspension_router
from hotline.api.watch import watch_router
from hotline.console import install_console
from hotline.console.app import PUBLIC_PATHS as console_public_paths
from hotline.console.app import PUBLIC_PREFIXES as console_public_prefixes
from hotline.crypto import primitives
from hotline.crypto.card import parse_card, safety_number
from hotline.errors import InputError, NotFoundError, PermissionDeniedError
from hotline.link.bundles import Bundles
from hotline.service import approvals, channels, queries, sender
from hotline.service.acting import acting, officer_ref
from hotline.service.line import Line, Sent
from hotline.service.officers import Officers
from hotline.service.roles import Action, Principal
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload

PrecedenceName = shapes.PrecedenceName
OPENAPI_PATH = "/openapi.json"


class AckRequest(BaseModel):
    """The acknowledging officer is the authenticated one (never a name in the body)."""

    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, Field(max_length=2000)] | None = None


class PeerAddRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    card: Annotated[str, Field(min_length=1, max_length=65536)]
    safety_number: Annotated[str, Field(max_length=200)]


def _single(line: Line) -> Callable[[], Health]:
    """A station that is one process (SQLite, or tests): always serving."""
    single = Health(role="single", epoch=None, process=line.station_id)
    return lambda: single


def create_operator_app(
    line: Line,
    token: str,
    *,
    link_test_now: Any = None,
    add_peer: Any = None,
    deconfliction: Any = None,
    gate_clock: Callable[[], float] = time.monotonic,
    peer_admin: Any = None,
    officers: Officers | None = None,
    health: Callable[[], Health] | None = None,
) -> FastAPI:
    s = line.settings
    if officers is None:  # tests: the station passes its own, loaded before the loop
        officers = Officers(line.ctx)
        with line.reader.connect() as conn:
            officers.load(conn)
    app = FastAPI(
        title="hotline operator API",
        version=__version__,
        description="Operate one hotline station: send, read threads with delivery state, "
        "acknowledge, watch the line. Notification is information, never permission.\n\n"
        "Every request carries `Authorization: Bearer TOKEN` (an officer's token from "
        "`hotline login`, or the station's bootstrap token: `hotline token`), or the "
        "session cookie of `POST /api/v1/session` (then POST, PUT, PATCH and DELETE also "
        "carry `X-CSRF-Token`). Each route needs a role that allows its action (403 "
        '`forbidden` names them). Every refusal is `{"error": {"code", "message", "hint"}}` '
        "with the status listed.",
        docs_url=None,
        redoc_url=None,
        openapi_url=OPENAPI_PATH,
        generate_unique_id_function=openapi.operation_id,
    )
    install_operator(app)
    app.add_middleware(
        OperatorGate,
        token=token,
        rate_per_s=s.api_rate_per_s,
        auth_failures_per_s=s.api_auth_failures_per_s,
        # bodies FastAPI parses on the loop stay small; notices and imports are read raw
        # and parsed in a worker thread (api/registry.py), so they may be larger
        max_body_bytes=min(s.max_request_bytes, s.api_max_json_bytes),
        body_limits={
            IMPORT_PATH: s.import_max_bytes,
            IMPORT_PREVIEW_PATH: s.import_max_bytes,
            BUNDLE_IMPORT_PATH: s.bundle_max_bytes,
            NOTICES_PATH: min(s.max_request_bytes, s.notice_max_bytes + NOTICE_ENVELOPE_BYTES),
        },
        public_paths=frozenset({OPENAPI_PATH, HEALTH_PATH})
        | (console_public_paths if s.console_enabled else frozenset()),
        public_routes=frozenset({LOGIN_ROUTE}),
        public_prefixes=console_public_prefixes if s.console_enabled else (),
        clock=gate_clock,
        authenticate=officers.authenticate,
        station_token=s.station_token_enabled,
    )
    bearer = HTTPBearer(auto_error=False)

    async def auth(
        request: Request,
        cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        """The principal the gate authenticated; here again so that no route is ever open,
        and so that the spec names the bearer scheme (a coroutine: no worker thread)."""
        return principal(request)

    Auth = Depends(auth)
    include(app, health_router(health or _single(line)))
    include(app, ledger_router(line, auth))
    include(app, transcript_router(line, auth))
    include(app, approvals_router(line))
    include(app, watch_router(line))
    include(app, stages_router(line, auth))
    include(app, search_router(line, auth))
    include(app, officers_router(officers, auth))
    include(app, suspension_router(line))
    include(app, channels_router(line, auth))
    include(app, bundles_router(Bundles(line), auth))
    if deconfliction is not None:
        include(app, registry_router(deconfliction, auth))
    if peer_admin is not None:
        include(app, peers_router(line, peer_admin, auth))
    if s.console_enabled:
        install_console(app, line, officers, deconfliction)
    now = line.clock.now_us
    sends = IdempotentSends(line)

    def visible(who: Principal, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return channels.visible(line.ctx, who, rows)

    def read(fn: Any, *args: Any, **kw: Any) -> Any:
        def run() -> Any:
            with line.reader.connect() as conn:
                return fn(conn, *args, **kw)

        return asyncio.to_thread(run)

    @app.get(
        "/api/v1/status", dependencies=[Auth, Depends(allowed(Action.READ))], responses=errors()
    )
    async def get_status() -> shapes.Status:
        """This station, each line's state, counts and the number of open alarms."""
        peers = line.peers.ids()
        return shapes.Status.model_validate(
            {
                "station": line.station_id,
                "display_name": line.identity.display_name,
                "fingerprint": line.card.fingerprint(),
                "version": __version__,
                "counts": await read(queries.counts),
                "links": await read(queries.link_status, peers),
                "alarms": len(await read(queries.alarms, now())),
            }
        )

    @app.get("/api/v1/card", dependencies=[Auth, Depends(allowed(Action.READ))], responses=errors())
    async def get_card() -> shapes.Card:
        """This station's signed card and fingerprint, to give to a peer."""
        return shapes.Card(card=line.card.to_text(), fingerprint=line.card.fingerprint())

    @app.get(
        "/api/v1/peers", dependencies=[Auth, Depends(allowed(Action.READ))], responses=errors()
    )
    async def list_peers() -> list[shapes.PeerInfo]:
        """The stations this one has a line with."""
        return [
            shapes.PeerInfo(
                station_id=p,
                display_name=line.peers.get(p).card.display_name,
                fingerprint=line.peers.get(p).fingerprint(),
                endpoints=list(line.peers.get(p).card.endpoints),
            )
            for p in line.peers.ids()
        ]

    @app.post(
        "/api/v1/peers",
        dependencies=[Auth],
        status_code=201,
        responses=errors(400, 404, 503, body=True),
    )
    async def add_peer_card(
        req: PeerAddRequest, who: Annotated[Principal, Depends(allowed(Action.PEERS))]
    ) -> shapes.PeerAdded:
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
        added = await add_peer(req.card, who.username)
        return shapes.PeerAdded(station_id=added.card.station_id, fingerprint=added.fingerprint())

    @app.post(
        "/api/v1/messages",
        dependencies=[Auth],
        status_code=201,
        response_model=shapes.SendResponse,
        responses={
            201: {
                "description": "Stored, sealed and queued (or, for a retry with the same "
                "Idempotency-Key, the first result again).",
                "headers": {
                    "Idempotent-Replayed": {
                        "description": "`true` when this is the first result of an earlier "
                        "request with the same Idempotency-Key; absent otherwise.",
                        "schema": {"type": "string", "enum": ["true"]},
                    }
                },
            },
            202: {
                "model": ApprovalHeld,
                "description": "The channel requires a second officer's approval (the "
                "two-person rule): nothing was sent; the request waits in the approval "
                "queue (GET /api/v1/approvals/{approval_id}) until its deadline. An "
                "Idempotency-Key is not applied to such a request.",
            },
            **errors(400, 403, 503, body=True),
        },
    )
    async def send_message(
        req: SendRequest,
        who: Annotated[Principal, Depends(allowed(Action.SEND))],
        idempotency_key: Annotated[
            str | None,
            Header(
                alias=HEADER,
                pattern=KEY_PATTERN,
                description="Any unique string (a UUID will do). A retry with the same key "
                "and the same request returns the first result (same message id, status "
                "201, header `Idempotent-Replayed: true`) instead of sending again; the "
                "same key with another request is refused (422, `idempotency_key_reused`). "
                "Kept for the setting idempotency_ttl_s.",
            ),
        ] = None,
    ) -> Any:
        """Send a text message to a peer: stored, sealed, signed and queued at once; on a
        channel that requires a second officer's approval, held for it instead (202)."""
        return await send_one(req, who, idempotency_key)

    async def send_one(
        req: SendRequest, who: Principal, idempotency_key: str | None
    ) -> shapes.SendResponse | JSONResponse:
        """What ``POST /api/v1/messages`` answers (raises its refusals): shared with the
        batch route (api/sendbatch.py), which answers each of its items with it."""
        if not req.text.strip():
            raise InputError(
                "the message has no text",
                code="empty_message",
                hint="write the message text; a blank message is not sent",
            )
        payload = MessagePayload(
            type=req.type,
            text=req.text,
            ack_required=req.ack_required,
            in_reply_to=req.in_reply_to,
        )

        done: list[Sent] = []
        group = uuid.uuid4()  # used when the channel has several recipients

        def answer(sent: Sent) -> shapes.SendResponse:
            every = [*[d for d in done if d is not sent], sent]
            return shapes.SendResponse(
                message_id=str(every[0].message_id),
                peer=every[0].peer,
                sequence=every[0].sequence,
                precedence=req.precedence,
                state="queued",
                group=str(group) if len(every) > 1 else None,
                recipients=[
                    shapes.SentTo(peer=d.peer, message_id=str(d.message_id), sequence=d.sequence)
                    for d in every
                ],
            )

        async def send(also: Any = None) -> Sent:
            with acting(who):  # the officer goes in the sealed payload and on the record
                result = await sender.send_group(
                    line.ctx,
                    peer=req.peer,
                    channel=req.channel,
                    precedence=Precedence[req.precedence],
                    payload=payload,
                    operator=who.username,
                    principal=who,
                    also=also,
                    collect=done,
                    group=group,
                )
                return result.sent[-1]

        if approvals.requires_approval(line.ctx, req.channel) is not None:
            # the requester is the sending officer, whoever approves: kept in the request
            held_payload = payload
            if who.via != "station":
                held_payload = payload.model_copy(update={"officer": officer_ref(who)})
            held = await approvals.send_or_request(
                line.ctx, who, peer=req.peer, channel=req.channel,
                precedence=Precedence[req.precedence], payload=held_payload,
                operator=who.username,
            )  # fmt: skip
            if isinstance(held, approvals.Requested):
                return JSONResponse(ApprovalHeld.of(held).model_dump(), status_code=202)
            return answer(held)
        if idempotency_key is None:
            return answer(await send())
        digest = request_hash(who.username + "\n" + req.model_dump_json())  # per officer
        result = await sends.send(
            idempotency_key, digest, send, lambda sent: answer(sent).model_dump_json()
        )
        if isinstance(result, JSONResponse):
            return result
        return answer(result)

    @app.get(
        "/api/v1/messages", dependencies=[Auth, Depends(allowed(Action.READ))], responses=errors()
    )
    async def list_messages(
        who: Annotated[Principal, Depends(allowed(Action.READ))],
        channel: Annotated[str | None, Query(max_length=64)] = None,
        peer: Annotated[str | None, Query(max_length=32)] = None,
        direction: Literal["in", "out"] | None = None,
        unacknowledged: bool = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[MessageSummary]:
        """Messages, newest first, each with its state, times and stages per recipient
        (only on channels whose terms let one of the officer's roles read them here)."""
        rows: list[dict[str, Any]] = await read(
            queries.list_with_stages,
            now(),
            channel=channel,
            peer=peer,
            direction=direction,
            unacknowledged=unacknowledged,
            limit=limit,
        )
        return [MessageSummary.model_validate(r) for r in visible(who, rows)]

    @app.get("/api/v1/messages/{message_id}", dependencies=[Auth], responses=errors(404))
    async def get_message(
        message_id: Annotated[str, Field(max_length=36)],
        who: Annotated[Principal, Depends(allowed(Action.READ))],
    ) -> MessageStages:
        """One message with its delivery state and times, its stages per recipient (who
        read and acknowledged it, when) and its thread (404 also when the channel's terms
        do not let the officer's roles read it here). Reading it here records nothing:
        POST /api/v1/messages/{message_id}/read records that an officer opened it."""
        found: dict[str, Any] | None = await read(queries.message_with_stages, now(), message_id)
        if found is None or not visible(who, [found]):
            raise NotFoundError(f"no message {message_id}")
        return MessageStages.model_validate(found)

    @app.post(
        "/api/v1/messages/{message_id}/ack",
        dependencies=[Auth],
        responses=errors(400, 404, 503, body=True),
    )
    async def acknowledge_message(
        message_id: str,
        who: Annotated[Principal, Depends(allowed(Action.ACKNOWLEDGE))],
        req: AckRequest | None = None,
    ) -> shapes.Message:
        """Acknowledge a received message ("received and understood") as the authenticated
        officer, signed, sent back."""
        await line.acknowledge(message_id, who.username, req.note if req else None)
        found: dict[str, Any] = await read(queries.get_message, now(), message_id)
        return shapes.Message.model_validate(found)

    @app.post(
        "/api/v1/messages/{message_id}/void",
        dependencies=[Auth, Depends(allowed(Action.SEND))],
        responses=errors(400, 404),
    )
    async def void_message(message_id: Annotated[str, Field(max_length=36)]) -> shapes.Message:
        """Give up on a message the peer refused: its sequence number is declared void (on
        the record), it is never sent again, and the peer's next link test learns it.
        Send a corrected message instead. 404 unless the message is ours, refused and
        still parked; 400 (cannot_void) for a replay refusal."""
        await line.void_message(message_id)
        found: dict[str, Any] = await read(queries.get_message, now(), message_id)
        return shapes.Message.model_validate(found)

    @app.get("/api/v1/channels/{channel}/thread", dependencies=[Auth], responses=errors(403))
    async def get_thread(
        channel: str,
        who: Annotated[Principal, Depends(allowed(Action.READ))],
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[shapes.Message]:
        """A channel's messages, oldest first (403 unless the channel's terms let one of
        the officer's roles read it here). A message sent to several members is one row
        per recipient, with the same ``body.group``."""
        spec = line.ctx.channels.get(channel)
        if spec is not None and channel not in channels.readable(line.ctx, who):
            raise PermissionDeniedError(
                f"{who.username} may not read channel {channel!r}: its terms let the roles "
                f"{', '.join(spec.roles_at(line.station_id).read)} read here",
                hint="ask an officer who holds one of those roles",
            )
        rows: list[dict[str, Any]] = await read(
            queries.list_messages, now(), channel=channel, limit=limit
        )
        return [shapes.Message.model_validate(r) for r in reversed(rows)]

    @app.get("/api/v1/link", dependencies=[Auth, Depends(allowed(Action.READ))], responses=errors())
    async def list_links() -> list[shapes.LinkStatus]:
        """Each line's state and last measurements."""
        rows: list[dict[str, Any]] = await read(queries.link_status, line.peers.ids())
        return [shapes.LinkStatus.model_validate(r) for r in rows]

    @app.post(
        "/api/v1/link/{peer}/test",
        dependencies=[Auth, Depends(allowed(Action.SEND))],
        responses=errors(400, 404, 502),
        response_model_exclude_none=True,  # a part the test did not run is absent, not null
    )
    async def test_link(peer: str) -> shapes.LinkTestResult:
        """Run a link test to a peer now: round trip, clock skew, checkpoint, proofs."""
        line.peers.get(peer)
        if link_test_now is None:
            raise NotFoundError("link tests are not running on this station")
        result: dict[str, Any] = await link_test_now(peer)
        return shapes.LinkTestResult.model_validate(result)

    @app.get(
        "/api/v1/alarms", dependencies=[Auth, Depends(allowed(Action.READ))], responses=errors()
    )
    async def list_alarms() -> list[shapes.Alarm]:
        """Open alarms: stored ones and every acknowledgement past its deadline."""
        rows: list[dict[str, Any]] = await read(queries.alarms, now())
        return [shapes.Alarm.model_validate(r) for r in rows]

    @app.get(
        "/api/v1/events",
        dependencies=[Auth, Depends(allowed(Action.READ))],
        response_class=StreamingResponse,
        responses={**openapi.event_stream_response(), **errors()},
    )
    async def stream_events(request: Request) -> StreamingResponse:
        """Live events (Server-Sent Events); the 200 response lists every event type."""

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

    base_openapi = app.openapi

    def spec() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi.add_components(base_openapi())
        return app.openapi_schema

    app.openapi = spec  # type: ignore[method-assign]
    add_batch_route(app, send_one, auth)
    route_first(app, "POST", BATCH_PATH)
    route_first(app, "POST", "/api/v1/messages")
    return app


def route_first(app: FastAPI, method: str, path: str) -> None:
    """Put the route of ``method path`` first in the app's routes, so that a request to
    it is matched at once: FastAPI walks every included router's routes before the app's
    own (a fifth of the sender's CPU per message, docs/performance.md "Cost per
    message"). Refused unless exactly one route of the app serves it and no route before
    it matches the request (an included router's included): the move changes what is
    fast, never what answers."""
    routes = app.router.routes
    hits = [
        i for i, r in enumerate(routes) if isinstance(r, APIRoute) and r.path == path
        and method in (r.methods or ())
    ]  # fmt: skip
    if len(hits) != 1:
        raise ValueError(f"{len(hits)} routes serve {method} {path}")
    for r in routes[: hits[0]]:
        scope: dict[str, Any] = {"type": "http", "method": method, "path": path, "root_path": ""}
        if r.matches(scope)[0] is Match.FULL:
            raise ValueError(f"{method} {path} is answered by an earlier route: {r!r}")
    routes.insert(0, routes.pop(hits[0]))
