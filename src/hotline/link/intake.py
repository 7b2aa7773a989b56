"""What arrives from a peer on any path: a batch of envelopes, or a link test.

Owns the one procedure every path shares (the HTTPS peer endpoint, the NATS relay, bundle
files): every envelope is checked (decode, addressee, sender, signature, date, payload)
before anything reaches the writer, checked ones are stored in one group commit, and each
gets its result: our signed receipt, or the code it was refused with. A refused envelope
changes nothing. A link test is checked, its declared void numbers recorded, and answered
with our sealed reply (with our limits, what we hold from the tester, witnessing and
proofs when asked). CPU work and database reads run in worker threads, writes in the
writer; the event loop only schedules. Must not touch: how bytes arrived (HTTP, NATS, a
file), framing of a path's requests, SQL (reads go through ``store.peerstate``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from hotline.errors import HotlineError
from hotline.link import framing
from hotline.link.limits import advertised
from hotline.service.line import Inbound, Line
from hotline.service.witnessing import Witnessing
from hotline.store import peerstate

log = logging.getLogger(__name__)


def _held(line: Line, peer: str) -> tuple[int, int]:
    """(highest contiguous, highest) sequence numbers we hold from ``peer`` (a thread)."""
    with line.reader.connect() as conn:
        return peerstate.held_from(conn, peer)


def _check_all(line: Line, raws: list[bytes]) -> list[Inbound | HotlineError]:
    """Each envelope checked (a worker thread): its ``Inbound``, or why it is refused."""
    out: list[Inbound | HotlineError] = []
    for raw in raws:
        try:
            out.append(line.check_inbound(raw))
        except HotlineError as exc:
            log.warning("refused envelope: %s", exc)
            out.append(exc)
    return out


async def take_batch(line: Line, raws: list[bytes]) -> list[framing.Result]:
    """Check and store a batch of envelopes; one result per envelope, in order."""
    return await store_batch(line, await check_batch(line, raws))


async def check_batch(line: Line, raws: list[bytes]) -> list[Inbound | HotlineError]:
    """The first half of ``take_batch``: every envelope checked (a worker thread), nothing
    stored. A path may check one batch while the previous one is stored (the relay)."""
    return await asyncio.to_thread(_check_all, line, raws)


async def take_framed(
    line: Line, decode: Callable[[], list[bytes]]
) -> list[framing.Result] | HotlineError:
    """``take_batch`` of a request still framed: ``decode`` (the path's framing, within
    its limits) runs in the same worker thread as the checks, one hand-off instead of two
    (each costs a turn of the event loop and the GIL: docs/performance.md "Latency and
    the send path"). The ``HotlineError`` ``decode`` raises is returned: the whole
    request is refused, nothing is stored."""
    checked = await check_framed(line, decode)
    if isinstance(checked, HotlineError):
        return checked
    return await store_batch(line, checked)


async def check_framed(
    line: Line, decode: Callable[[], list[bytes]]
) -> list[Inbound | HotlineError] | HotlineError:
    """``check_batch`` of a request still framed, ``decode`` in the same worker thread as
    the checks (the first half of ``take_framed``); the ``HotlineError`` ``decode`` raises
    is returned (the whole request is refused)."""

    def decode_and_check() -> list[Inbound | HotlineError] | HotlineError:
        try:
            raws = decode()
        except HotlineError as exc:
            return exc
        return _check_all(line, raws)

    return await asyncio.to_thread(decode_and_check)


async def store_batch(line: Line, checked: list[Inbound | HotlineError]) -> list[framing.Result]:
    """The second half of ``take_batch``: what checked stored in one group commit; one
    result per envelope, in order."""
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
    return results


async def answer_link_test(line: Line, witnessing: Witnessing, raw: bytes, t2_us: int) -> bytes:
    """Our reply to a peer's link test received at ``t2_us``; raises ``HotlineError`` when
    the test does not check (nothing is recorded then)."""
    env, test = await asyncio.to_thread(line.check_link_test, raw)
    sender = env.header.sender
    if test.void:  # the tester's declared void numbers, before the gaps are read
        await line.record_peer_void(env, test)
    extra: dict[str, Any] = {"limits": advertised(line.settings)}
    if test.witness is not None:
        extra |= await witnessing.witness(sender, test.witness, env.raw)
    if test.prove:
        extra["proofs"] = await asyncio.to_thread(witnessing.proofs, test.prove)
    extra["held_contiguous"], extra["held_highest"] = await asyncio.to_thread(_held, line, sender)
    # the reply reads the gaps below the sender's last sequence number: a thread too
    return await asyncio.to_thread(line.reply_link_test, env, test, t2_us, extra)
