"""The peer endpoint: what other stations call, over mutual TLS pinned to their cards.

Owns reading request bodies within the size limit and handing envelopes to the line.
Every envelope is checked (decode, addressee, sender, signature, date, payload) before
anything reaches the writer; a refused envelope changes nothing. The event loop only
reads the body and hands over: decoding, checks, database reads and sealing the reply run
in worker threads, writes in the writer. The link-test reply tells the asker what we hold
from it (``held_contiguous``, ``held_highest``: a restored asker resumes above them).
Must not touch: the operator API, SQL (reads go through ``store.peerstate``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from hotline.api.errors import peer_refusal
from hotline.errors import EnvelopeError, HotlineError
from hotline.link import framing
from hotline.link.limits import advertised
from hotline.service.line import Inbound, Line
from hotline.service.witnessing import Witnessing
from hotline.store import peerstate

log = logging.getLogger(__name__)


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise EnvelopeError(f"request body larger than {limit} bytes", code="too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise EnvelopeError(f"request body larger than {limit} bytes", code="too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _held(line: Line, peer: str) -> tuple[int, int]:
    """(highest contiguous, highest) sequence numbers we hold from ``peer`` (a thread)."""
    with line.reader.connect() as conn:
        return peerstate.held_from(conn, peer)


def create_peer_app(line: Line, witnessing: Witnessing) -> FastAPI:
    s = line.settings
    app = FastAPI(title="hotline peer endpoint", openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/peer/v1/envelopes")
    async def envelopes(request: Request) -> Response:
        try:
            body = await read_limited(request, s.max_request_bytes)
            raws = await asyncio.to_thread(
                framing.decode_batch,
                body,
                max_items=s.max_batch_envelopes,
                max_item_bytes=s.max_envelope_bytes,
            )
        except HotlineError as exc:
            return peer_refusal(exc, "batch")

        def check_all() -> list[Inbound | HotlineError]:
            out: list[Inbound | HotlineError] = []
            for raw in raws:
                try:
                    out.append(line.check_inbound(raw))
                except HotlineError as exc:
                    log.warning("refused envelope: %s", exc)
                    out.append(exc)
            return out

        checked = await asyncio.to_thread(check_all)
        good = [c for c in checked if isinstance(c, Inbound)]
        stored = iter(await line.store_inbound(good))
        results: list[framing.Result] = []
        for c in checked:
            if isinstance(c, HotlineError):
                results.append(framing.Result(refused=c.code))
                continue
            r = next(stored)
            if isinstance(r, HotlineError):
                log.warning("refused envelope: %s", r)
                results.append(framing.Result(refused=r.code))
            elif isinstance(r, Exception):
                log.error("storing an envelope failed: %r", r)
                results.append(framing.Result(refused="store"))
            else:
                results.append(framing.Result(receipt=r))
        return Response(framing.encode_results(results), media_type=framing.CONTENT_TYPE)

    @app.post("/peer/v1/link-test")
    async def link_test(request: Request) -> Response:
        t2 = line.clock.now_us()
        try:
            raw = await read_limited(request, s.max_envelope_bytes)
            env, test = await asyncio.to_thread(line.check_link_test, raw)
            sender = env.header.sender
            if test.void:  # the tester's declared void numbers, before the gaps are read
                await line.record_peer_void(env, test)
            extra: dict[str, Any] = {"limits": advertised(s)}
            if test.witness is not None:
                extra |= await witnessing.witness(sender, test.witness, env.raw)
            if test.prove:
                extra["proofs"] = await asyncio.to_thread(witnessing.proofs, test.prove)
            extra["held_contiguous"], extra["held_highest"] = await asyncio.to_thread(
                _held, line, sender
            )
            # the reply reads the gaps below the sender's last sequence number: a thread too
            reply = await asyncio.to_thread(line.reply_link_test, env, test, t2, extra)
        except HotlineError as exc:
            return peer_refusal(exc, "link test")
        return Response(reply, media_type="application/octet-stream")

    return app
