"""The peer endpoint: what other stations call, over mutual TLS pinned to their cards.

Owns reading request bodies within the size limit, decoding the batch framing and
answering over HTTP; what is done with the envelopes and link tests is the same on every
path (``link/intake.py``). The event loop only reads the body and hands over: decoding
runs in a worker thread. Must not touch: the operator API, SQL.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import Response

from hotline.api.errors import peer_refusal
from hotline.errors import EnvelopeError, HotlineError
from hotline.link import framing, intake
from hotline.service.line import Line
from hotline.service.witnessing import Witnessing

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


def create_peer_app(line: Line, witnessing: Witnessing) -> FastAPI:
    s = line.settings
    app = FastAPI(title="hotline peer endpoint", openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/peer/v1/envelopes")
    async def envelopes(request: Request) -> Response:
        try:
            body = await read_limited(request, s.max_request_bytes)
        except HotlineError as exc:
            return peer_refusal(exc, "batch")
        # the framing is decoded in the worker thread that checks the envelopes
        results = await intake.take_framed(
            line,
            lambda: framing.decode_batch(
                body, max_items=s.max_batch_envelopes, max_item_bytes=s.max_envelope_bytes
            ),
        )
        if isinstance(results, HotlineError):
            return peer_refusal(results, "batch")
        return Response(framing.encode_results(results), media_type=framing.CONTENT_TYPE)

    @app.post("/peer/v1/link-test")
    async def link_test(request: Request) -> Response:
        t2 = line.clock.now_us()
        try:
            raw = await read_limited(request, s.max_envelope_bytes)
            reply = await intake.answer_link_test(line, witnessing, raw, t2)
        except HotlineError as exc:
            return peer_refusal(exc, "link test")
        return Response(reply, media_type="application/octet-stream")

    return app
