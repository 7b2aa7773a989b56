"""Receipts: the signed statement that an envelope was durably stored, both ways.

Owns making our receipts for a peer's envelopes and checking and recording a peer's
receipts for ours (once: a receipt for an envelope no longer queued changes nothing).

Making: the ingest unit hands each new envelope's receipt item (a ``ReceiptPayload``:
where our ledger holds it, what we still miss from that sender) to the writer's
before-commit hook ``sign_batch``, which signs ONCE per peer per writer batch: the root
of a Merkle tree over the items (wire/batchreceipt.py), and gives each envelope its
self-contained batch receipt (root envelope, item, index, inclusion proof), written into
its inbound row before COMMIT. A batch of one item is signed in the single form (today's
RECEIPT envelope whose payload is the item). A duplicate inside the batch gets the same
receipt as the first copy.

Checking: either form is accepted. The root signature is verified once per distinct
root in a call (``record_receipts``), then each item's inclusion proof (hashes only),
then the item itself: it names us as sender, an envelope we sent (``wrong_receipt`` when
the caller knows which one), and a claimed time (``stored_at_us``) checked against the
root's date (``bad_time``) and kept as the peer's claim; the message counts as delivered
at OUR receive time. The ledger's RECEIPT_IN entry keeps the receipt exactly as received,
so each is provable alone to a third party. Must not touch: SQL (store/), the network.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from hotline.crypto import primitives
from hotline.errors import EnvelopeError, HotlineError, StoreError
from hotline.ledger.entry import Entry, EntryKind
from hotline.service.context import LineContext
from hotline.store import linedb, projections
from hotline.store import outbox as outbox_db
from hotline.store.writer import WriteTx
from hotline.wire import batchreceipt
from hotline.wire import envelope as wire
from hotline.wire.envelope import Header, Kind
from hotline.wire.messages import ReceiptPayload, check_claimed_time

#: most items under one signed root (a writer batch holds far fewer)
MAX_ITEMS_PER_ROOT = 4096


# --- making ---------------------------------------------------------------------------


@dataclass(slots=True)
class Pending:
    """A receipt to make before commit for a peer's envelope with ``header``: ``item``
    is what it says; None for a copy of an envelope stored earlier in the same batch
    (it gets that envelope's receipt). ``value`` is set by ``sign_batch``."""

    header: Header
    item: ReceiptPayload | None
    value: bytes | None = None

    def receipt(self) -> bytes:
        if self.value is None:  # pragma: no cover - the hook runs before every commit
            raise StoreError("a receipt was not made before commit")
        return self.value


def make_receipt(ctx: LineContext, h: Header, item: ReceiptPayload) -> bytes:
    """Our receipt in the single form: a RECEIPT envelope whose payload is ``item``."""
    header = Header(
        Kind.RECEIPT, h.precedence, primitives.SUITE_NONE, ctx.station_id, h.sender, h.channel,
        0, h.message_id, item.stored_at_us,
    )  # fmt: skip
    return wire.seal_envelope(header, item.to_bytes(), ctx.signer, None).raw


def make_batch(ctx: LineContext, group: list[Pending]) -> list[bytes]:
    """One signature for the receipts of ``group`` (envelopes of one peer): each one's
    batch receipt, in order (the single form for a group of one)."""
    if len(group) == 1 and group[0].item is not None:
        return [make_receipt(ctx, group[0].header, group[0].item)]
    items = [p.item.to_bytes() for p in group if p.item is not None]
    root, proofs = batchreceipt.tree(items)
    payload = batchreceipt.ReceiptRootPayload(
        format=batchreceipt.FORMAT, root=root.hex(), count=len(items)
    )
    first = group[0].header
    header = Header(
        Kind.RECEIPT,
        min((p.header.precedence for p in group), key=int),
        primitives.SUITE_NONE,
        ctx.station_id,
        first.sender,
        first.channel,
        0,
        uuid.UUID(bytes=root[:16]),
        # the latest stored time of the batch: every item's claim is then within the
        # root's date (deterministic: no clock read)
        max(p.item.stored_at_us for p in group if p.item is not None),
    )
    root_env = wire.seal_envelope(header, payload.to_bytes(), ctx.signer, None).raw
    return [
        batchreceipt.encode(root_env, item, k, proof)
        for k, (item, proof) in enumerate(zip(items, proofs, strict=True))
    ]


def sign_batch(ctx: LineContext, conn: Connection, pending: list[Any]) -> None:
    """The writer's before-commit hook: sign the batch's receipts (once per peer),
    write them into the inbound rows, and give each pending receipt its bytes."""
    by_peer: dict[str, list[Pending]] = {}
    for p in pending:
        if p.item is not None:
            by_peer.setdefault(p.header.sender, []).append(p)
    made: dict[tuple[str, int], bytes] = {}
    rows: list[tuple[str, int, bytes]] = []
    for peer, group in by_peer.items():
        for start in range(0, len(group), MAX_ITEMS_PER_ROOT):
            part = group[start : start + MAX_ITEMS_PER_ROOT]
            for p, raw in zip(part, make_batch(ctx, part), strict=True):
                p.value = raw
                made[(peer, p.header.sequence)] = raw
                rows.append((peer, p.header.sequence, raw))
    projections.set_receipts(conn, rows)
    for p in pending:
        if p.item is None:
            p.value = made.get((p.header.sender, p.header.sequence))


# --- checking and recording -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checked:
    """A peer's receipt that passed every check: its bytes as received (what the ledger
    keeps) and its item."""

    raw: bytes
    payload: ReceiptPayload


def check_receipt(
    ctx: LineContext,
    peer: str,
    raw: bytes,
    roots: batchreceipt.RootCache | None = None,
    expected: bytes | None = None,
) -> Checked:
    """Every check a peer's receipt must pass (pure CPU work). ``roots``: roots verified
    earlier in the same call; ``expected``: the hash of the envelope it must name."""
    header, receipt = batchreceipt.open_receipt(
        raw,
        lambda: ctx.peers.get(peer).card.signing_key,
        sender=peer,
        recipient=ctx.station_id,
        max_envelope_bytes=ctx.settings.max_envelope_bytes,
        roots=roots,
    )
    ctx.check_date(header.sent_at_us)
    check_claimed_time(
        "stored_at_us", receipt.stored_at_us, not_after_us=ctx.claim_limit_us(header.sent_at_us)
    )
    if receipt.sender != ctx.station_id:
        raise EnvelopeError("receipt names an envelope of another sender", code="wrong_receipt")
    if expected is not None and receipt.envelope_hash != expected.hex():
        raise EnvelopeError("receipt names another envelope than the one sent",
                            code="wrong_receipt")  # fmt: skip
    return Checked(raw, receipt)


def check_receipts(
    ctx: LineContext, peer: str, raws: list[bytes], expected: list[bytes] | None = None
) -> list[Checked | HotlineError]:
    """``check_receipt`` for each, verifying each distinct root's signature once."""
    roots: batchreceipt.RootCache = {}
    out: list[Checked | HotlineError] = []
    for i, raw in enumerate(raws):
        try:
            out.append(check_receipt(ctx, peer, raw, roots, expected[i] if expected else None))
        except HotlineError as exc:
            out.append(exc)
    return out


def _record_unit(ctx: LineContext, peer: str, c: Checked, carried_by: str | None) -> Any:
    receipt = c.payload
    our_hash = bytes.fromhex(receipt.envelope_hash)

    def unit(tx: WriteTx) -> bool | EnvelopeError:
        seq = linedb.outbox_sequence(tx.conn, our_hash, peer)
        if seq is None:
            return False  # already receipted, or not ours: nothing to record
        if seq != receipt.sequence:
            # returned, not raised: a peer's bad receipt never rolls the writer's batch back
            return EnvelopeError("receipt names the wrong sequence number", code="bad_receipt")
        now = ctx.clock.now_us()
        if carried_by is not None:
            outbox_db.note_carried(tx.conn, our_hash, carried_by, now)
        entry = Entry(EntryKind.RECEIPT_IN, peer, receipt.sequence, our_hash, now, c.raw)
        idx = tx.append(entry)
        ctx.projector.apply(tx.conn, idx, entry, receipt)
        tx.after_commit(
            lambda: ctx.events.publish(
                "message.delivered",
                peer=peer,
                message_id=str(receipt.message_id),
                sequence=receipt.sequence,
                delivered_at_us=now,
                claimed_stored_at_us=receipt.stored_at_us,
            )
        )
        return True

    return unit


async def record_receipts(
    ctx: LineContext,
    peer: str,
    raws: list[bytes],
    carried_by: str | None = None,
    expected: list[bytes] | None = None,
    also: Callable[[WriteTx], object] | None = None,
) -> list[bool | HotlineError]:
    """Record a peer's receipts (each once): per receipt True when new, False when
    already held, or the error it was refused with (a refused one changes nothing).
    Checked in one worker thread (each distinct root's signature verified once), then
    recorded in one group commit. ``carried_by``: the path that carried the envelopes,
    when the receipts came back outside a delivery of the outbox (which records its own
    path): a bundle, late relay results. ``expected``: the envelope each must name.
    ``also``: a unit submitted with the receipts' units, so that it lands in their group
    commit (the outbox's delivery attempts: one commit, one fsync, not two in turn);
    its error is raised here."""
    checked = await asyncio.to_thread(check_receipts, ctx, peer, raws, expected)
    jobs = [
        ctx.writer.submit(_record_unit(ctx, peer, c, carried_by))
        for c in checked
        if isinstance(c, Checked)
    ]
    if also is not None:
        jobs.append(ctx.writer.submit(also))
    done = await asyncio.gather(*jobs, return_exceptions=True)
    if also is not None:
        extra = done.pop()
        if isinstance(extra, BaseException):
            raise extra
    stored = iter(done)
    out: list[bool | HotlineError] = []
    for c in checked:
        if isinstance(c, HotlineError):
            out.append(c)
            continue
        r = next(stored)
        if isinstance(r, BaseException) and not isinstance(r, HotlineError):
            raise r
        out.append(r)
    return out


async def record_receipt(
    ctx: LineContext, peer: str, raw: bytes, carried_by: str | None = None
) -> bool:
    """Record one receipt of a peer's; True when it was new; raises when refused."""
    [result] = await record_receipts(ctx, peer, [raw], carried_by)
    if isinstance(result, HotlineError):
        raise result
    return result
