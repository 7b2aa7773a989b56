"""Void sequence numbers: a parked envelope no longer leaves a hole in the sequence.

When a peer refuses one of our envelopes for good, the peer never holds that sequence
number and its contiguous mark would stall there forever (then every envelope
``max_sequence_ahead`` later is refused ``seq_window``). So:

- the sender declares the number void, on the record (a system ``void`` action naming
  the peer, the sequence number, the entry index and the peer's code; projected: the
  envelope leaves the outbox, ``voids`` holds the number): by itself for codes that say
  "not this" (``voids_number``), or when the operator gives up on a parked message
  (``operator_void_unit``, an ``operator`` action). A corrected message is a new message
  under a new number;
- the declaration travels signed in the sender's link tests (``LinkTestPayload.void``:
  at most 64 inclusive ranges, above what the peer last said it holds contiguously);
- the receiver, after the link test's usual checks, keeps of the claim only the numbers
  it does not hold, has not voided yet, that lie within its window (above its contiguous
  mark, at most ``max_sequence_ahead`` past it) and not beyond the tester's own last
  sequence number; it records them with the raw link-test envelope as evidence (a
  ``peer_void`` action), and the projection moves the contiguous mark over them. The rest
  of the claim is ignored and logged. An envelope that later arrives at a voided number
  is refused ``void``.

Must not touch: SQL (store/voids), scheduling (link/), delivery state (``deliveries``).
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from hotline.errors import InputError, NotFoundError
from hotline.service.appending import append_action
from hotline.service.context import LineContext
from hotline.store import linedb, operational, outbox
from hotline.store import voids as store
from hotline.store.writer import WriteTx
from hotline.wire.envelope import Envelope
from hotline.wire.messages import LinkTestPayload

log = logging.getLogger(__name__)

#: most ranges a link test declares (the payload's limit)
MAX_RANGES = 64
#: refusals after which a parked envelope is NOT declared void: the peer may hold the
#: number (``replay``) or our station was restored (``old_message_id``: resync reissues
#: it), or the envelope goes again by itself when the peer's limits change (sizes)
KEEP_NUMBER = frozenset({"replay", "old_message_id", "too_large", "bad_batch"})


def voids_number(code: str) -> bool:
    """Whether an envelope the peer parked with ``code`` has its number declared void."""
    return code not in KEEP_NUMBER


def void_unit(ctx: LineContext, peer: str, parked: list[tuple[int, str]]) -> Any:
    """The writer unit declaring void the numbers of the parked envelopes ``parked``
    ((entry index, the peer's code)) that are still queued for ``peer``; returns the
    sequence numbers voided."""

    def unit(tx: WriteTx) -> list[int]:
        done = []
        for idx, code in parked:
            row = store.queued(tx.conn, idx)
            if row is None or row[0] != peer or not voids_number(code):
                continue
            action = {
                "action": "void",
                "by": "system",
                "peer": peer,
                "sequence": row[1],
                "entry_idx": idx,
                "code": code,
            }
            append_action(ctx, tx, action, peer=peer)
            done.append(row[1])
        if done:
            log.warning("sequence number(s) %s to %s declared void (refused)", done, peer)
        return done

    return unit


def operator_void_unit(ctx: LineContext, message_id: str) -> Any:
    """The writer unit by which an operator declares void the number of a message the
    peer refused and that is parked for a reason that keeps its number (its size, say):
    the operator gives up on it and will send a corrected one. Returns the peer. Clears
    the ``peer_refused`` alarm of that code when nothing of that code is parked any more.
    ``replay`` cannot be voided: the peer holds that number (a restore: see Restore)."""

    def unit(tx: WriteTx) -> str:
        row = store.parked_out(tx.conn, message_id)
        if row is None:
            raise NotFoundError(
                f"no refused message {message_id} is waiting",
                hint="only a message of ours that the peer refused (state refused) and "
                "that is not void yet can be voided",
            )
        idx, peer, code = row
        if code == "replay":
            raise InputError(
                f"{peer} holds sequence number of message {message_id} (replay)",
                code="cannot_void",
                hint="compare both stations' records (docs/operations.md, Restore)",
            )
        seq = store.queued(tx.conn, idx)
        if seq is None:  # pragma: no cover - parked_out read it from the outbox
            raise NotFoundError(f"message {message_id} is not queued")
        action = {"action": "void", "by": "operator", "peer": peer, "sequence": seq[1],
                  "entry_idx": idx, "code": code}  # fmt: skip
        append_action(ctx, tx, action, peer=peer)
        if code not in {c for _, c in outbox.parked(tx.conn, peer)}:
            operational.clear_alarm(
                tx.conn, kind="peer_refused", peer=peer, now_us=ctx.clock.now_us(), ref=code
            )
        log.warning("operator declared void sequence %d to %s (%s)", seq[1], peer, code)
        return peer

    return unit


def declared_ranges(ctx: LineContext, peer: str, above: int) -> list[tuple[int, int]]:
    """What our next link test to ``peer`` declares void: our voided numbers above
    ``above`` (what the peer last said it holds contiguously) within the window, at most
    ``MAX_RANGES`` ranges. Reads the store: call it off the event loop."""
    upto = above + ctx.settings.max_sequence_ahead
    with ctx.reader.connect() as conn:
        numbers = store.declared_out(conn, peer, above, upto)
    return store.collapse(numbers)[:MAX_RANGES]


def accepted(
    claim: list[tuple[int, int]], contiguous: int, upper: int, taken: set[int]
) -> list[tuple[int, int]]:
    """The part of ``claim`` a receiver accepts: numbers in (contiguous, upper] not in
    ``taken`` (held or voided already). Pure."""
    numbers: set[int] = set()
    for a, b in claim:
        lo, hi = max(a, contiguous + 1), min(b, upper)
        numbers.update(s for s in range(lo, hi + 1) if s not in taken)
    return store.collapse(numbers)


def record_peer_void_unit(ctx: LineContext, env: Envelope, test: LinkTestPayload) -> Any:
    """The writer unit recording the void claim of a checked link test ``env``: the
    accepted ranges (None when nothing is accepted: nothing is appended)."""
    peer = env.header.sender
    claim = [(int(a), int(b)) for a, b in test.void or []]

    def unit(tx: WriteTx) -> list[tuple[int, int]] | None:
        contiguous = linedb.in_contiguous(tx.conn, peer)
        upper = min(contiguous + ctx.settings.max_sequence_ahead, test.last_sequence)
        taken = store.taken_in(tx.conn, peer, contiguous, upper) if upper > contiguous else set()
        ranges = accepted(claim, contiguous, upper, taken)
        if ranges != claim:
            log.warning(
                "%s declared void %s; accepted %s (the rest is held, voided already or "
                "outside the window %d..%d)", peer, claim, ranges, contiguous + 1, upper,
            )  # fmt: skip
        if not ranges:
            return None
        action = {
            "action": "peer_void",
            "by": "system",
            "peer": peer,
            "void": [list(r) for r in ranges],
            "envelope": base64.b64encode(env.raw).decode(),
        }
        append_action(ctx, tx, action, peer=peer)
        return ranges

    return unit


async def record_peer_void(
    ctx: LineContext, env: Envelope, test: LinkTestPayload
) -> list[tuple[int, int]] | None:
    if not test.void:
        return None
    result: list[tuple[int, int]] | None = await ctx.writer.submit(
        record_peer_void_unit(ctx, env, test)
    )
    return result
