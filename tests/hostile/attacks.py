"""The attacks of a peer with valid keys, each with what the target must do about it.

Owns one coroutine per attack of issue 7 ("The line: a peer with valid keys"), written
once against ``Target`` so that the same attack runs in-process (both stores) and
against a live station over mutual TLS. Each attack asserts the specific refusal code
(docs: tests/hostile/README.md and the shared codes table), that the target's store is
exactly as it was (every table, compared row by row; the attacks that must change it
assert exactly what is added), and that the target still answers its operators.
Must not touch: the target's internals; only ``Target`` and ``HostilePeer``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from hotline.crypto import primitives
from hotline.ledger.entry import Entry, EntryKind
from hotline.ledger.tree import MemoryTree
from hotline.link import framing
from hotline.wire.envelope import Kind
from tests.crypto.helpers import new_identity
from tests.hostile.peer import ack_plaintext, message_plaintext, polygon_site_notice
from tests.hostile.target import Target, diff

Attack = Callable[[Target], Awaitable[None]]
ATTACKS: dict[str, Attack] = {}

#: COMMON.md's default of ``max_sequence_ahead``
MAX_SEQUENCE_AHEAD = 4096
#: COMMON.md: times inside a payload before this are out of range
Y2020_US = 1_577_836_800_000_000
ROUTINE_DEADLINE_US = 21_600 * 1_000_000


def attack(fn: Attack) -> Attack:
    ATTACKS[fn.__name__] = fn
    return fn


async def honest(t: Target, n: int = 1, text: str = "honest") -> list[bytes]:
    """``n`` honest messages from the peer, stored; their receipts."""
    now = t.now_us()
    raws = [t.peer.message(now, t.peer.take_seq(), f"{text} {i}") for i in range(n)]
    return await t.accept(raws)


async def unchanged(t: Target, refusal: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``refusal`` and assert it left every table of the store as it was."""
    before = t.snapshot()
    result = await refusal()
    changes = diff(before, t.snapshot())
    assert not changes, f"a refusal changed the store: {changes}"
    return result


# --- sequence numbers and message ids -------------------------------------------------


@attack
async def replay_other_bytes(t: Target) -> None:
    """A used sequence number with other bytes (equivocation) is refused as ``replay``."""
    await honest(t)
    used = t.peer.next_seq - 1
    now = t.now_us()
    other_text = t.peer.message(now, used, "what I really said")
    other_id = t.peer.message(now, used, "honest 0", message_id=uuid.uuid4())
    codes = await unchanged(t, lambda: t.refused([other_text, other_id]))
    assert codes == ["replay", "replay"]
    await t.still_answers()


#: a message text written to break search and the printable log: FTS5 and tsquery syntax,
#: a NUL, markup for HTML and Rich, a terminal escape, a bidirectional override
SEARCH_BAIT = (
    'NEAR(a b) OR "x" * ^ col:term AND NOT & | ! <-> \u0000 \x00 '
    + "\x00"
    + "<script>alert(1)</script> [bold red]ALARM[/] \x1b[2J \u202e Знахідка"
)


@attack
async def text_that_targets_search_and_the_log(t: Target) -> None:
    """A message whose text is query syntax, a NUL and markup is stored as text: found by
    its words (never taken as syntax), and printed as text in the log."""
    raw = t.peer.message(t.now_us(), t.peer.take_seq(), SEARCH_BAIT)
    [receipt] = await t.accept([raw])
    assert receipt
    found = await t.operator("GET", "/api/v1/search", params={"q": "знахідка near"})
    assert [h["text"] for h in found["items"]] == [SEARCH_BAIT]
    for q in ("NEAR(a b)", "col:term", '"x" *', "<script>"):
        page = await t.operator("GET", "/api/v1/search", params={"q": q})
        assert [h["text"] for h in page["items"]] == [SEARCH_BAIT], q
    r = await t.operator_http.get(
        "/api/v1/log", params={"from": "2020-01-01", "to": "2099-12-31", "format": "html"}
    )
    assert r.status_code == 200, r.text
    assert "<script" not in r.text
    assert "\x1b" not in r.text
    assert "\u202e" not in r.text
    await t.still_answers()


@attack
async def exact_duplicate(t: Target) -> None:
    """The same bytes twice (in one batch, then again) are stored once and answered with
    the same receipt each time."""
    raw = t.peer.message(t.now_us(), t.peer.take_seq(), "say it twice")
    before = t.snapshot()
    first, second = await t.accept([raw, raw])
    assert first == second
    added = diff(before, t.snapshot())
    assert not added.pop("ledger_nodes", ([], []))[0], "a stored tree node changed"
    for table in [t for t in added if t.startswith("message_fts")]:
        added.pop(table)  # SQLite's FTS5 index (its shadow tables) follows message_search
    assert {table: (len(rem), len(add)) for table, (rem, add) in added.items()} == {
        "entries": (0, 1),
        "inbound": (0, 1),
        "messages": (0, 1),
        "message_search": (0, 1),  # its searchable text (migration 0011)
        "peers": (1, 1),  # its contiguous mark moved
    }
    [again] = await unchanged(t, lambda: t.accept([raw]))
    assert again == first
    receipt = t.peer.receipt(again)
    assert receipt.envelope_hash == primitives.sha256(raw).hex()
    await t.still_answers()


@attack
async def sequence_at_the_window_edge(t: Target) -> None:
    """``max_sequence_ahead`` above the contiguous mark is still inside the window: stored,
    and its gap is reported as one range (asked for again), not refused."""
    await honest(t)
    contiguous = t.peer.next_seq - 1
    edge = contiguous + MAX_SEQUENCE_AHEAD
    [raw] = await t.accept([t.peer.message(t.now_us(), edge, "at the edge")])
    assert t.peer.receipt(raw).missing == [(contiguous + 1, edge - 1)]
    [raw] = await honest(t)
    assert t.peer.receipt(raw).missing == [(contiguous + 2, edge - 1)]
    await t.still_answers()


@attack
async def far_future_sequence(t: Target) -> None:
    """Sequence numbers beyond the window (and beyond int64) are ``seq_window``; the next
    honest envelope's receipt carries no missing range they would have opened."""
    [raw] = await honest(t)
    #: what was missing before the attack (a live target may hold a gap from an earlier one)
    top = max((hi for _lo, hi in t.peer.receipt(raw).missing), default=0)
    contiguous = t.peer.next_seq - 1
    now = t.now_us()
    raws = [
        t.peer.message(now, contiguous + MAX_SEQUENCE_AHEAD + 1),
        t.peer.message(now, contiguous + 1_000_000),
        t.peer.message(now, 2**62),
        t.peer.message(now, 2**63 - 1),
        t.peer.message(now, 2**63),
        t.peer.message(now, 2**64 - 1),
    ]
    codes = await unchanged(t, lambda: t.refused(raws))
    assert codes == ["seq_window"] * len(raws)
    [raw] = await honest(t)
    missing = t.peer.receipt(raw).missing
    assert all(hi <= top for _lo, hi in missing), missing
    await t.still_answers()


@attack
async def old_message_id(t: Target) -> None:
    """A new sequence number carrying a message id already received from us is
    ``old_message_id``."""
    seq = t.peer.take_seq()
    mid = uuid.uuid4()
    await t.accept([t.peer.message(t.now_us(), seq, "first", message_id=mid)])
    again = t.peer.message(t.now_us(), t.peer.next_seq, "second, same id", message_id=mid)
    codes = await unchanged(t, lambda: t.refused([again]))
    assert codes == ["old_message_id"]
    await honest(t)
    await t.still_answers()


@attack
async def message_id_of_the_targets_own_message(t: Target) -> None:
    """The peer knows the ids of the messages the target sent it: a new envelope
    reusing one is refused (``old_message_id``), never a database error (``store``)."""
    ours = await t.send_to_peer("our message, whose id the peer has seen")
    raw = t.peer.message(
        t.now_us(), t.peer.next_seq, "not yours", message_id=uuid.UUID(ours["message_id"])
    )
    codes = await unchanged(t, lambda: t.refused([raw]))
    assert codes == ["old_message_id"]
    await t.still_answers()


# --- claimed times ----------------------------------------------------------------------


@attack
async def acknowledgement_times_out_of_range(t: Target) -> None:
    """An acknowledgement dated 1970, before 2020, before the message, after the
    envelope, or 2^62 / 2^63+ (anywhere a time is claimed) is ``bad_time``; a truthful
    one is then accepted."""
    ours = await t.send_to_peer("acknowledge this, truthfully")
    mid, sent_at = ours["message_id"], int(ours["sent_at_us"])
    skew_us = int(float(t.limits.get("max_clock_skew_s", 300.0)) * 1_000_000)
    now = t.now_us()
    claims = [
        0,
        -1,
        Y2020_US - 1,
        sent_at - 1,
        now + skew_us + 60_000_000,
        2**62,
        2**63 - 1,
        2**63,
        2**64 + 5,
        -(2**63) - 1,
        10**30,
    ]
    raws = [
        t.peer.envelope(
            now, kind=int(Kind.ACK), sequence=t.peer.next_seq, plaintext=ack_plaintext(mid, at)
        )
        for at in claims
    ]
    codes = await unchanged(t, lambda: t.refused(raws))
    assert codes == ["bad_time"] * len(claims), dict(zip(claims, codes, strict=True))
    truthful = t.peer.envelope(
        t.now_us(), kind=int(Kind.ACK), sequence=t.peer.take_seq(),
        plaintext=ack_plaintext(mid, t.now_us()),
    )  # fmt: skip
    await t.accept([truthful])
    acked = await t.operator("GET", f"/api/v1/messages/{mid}")
    assert acked["state"] == "acknowledged"
    await t.still_answers()


@attack
async def link_test_times_out_of_range(t: Target) -> None:
    """A link test claiming t1 of 1970, 2^62 or 2^63+ is refused ``bad_time`` (a 4xx
    with the code), never a 500; nothing is stored."""
    for t1 in (0, 2**62, 2**63, 2**64 + 1, -(2**63) - 1):
        raw, _ = t.peer.link_test(t.now_us(), t1_us=t1)
        code = await unchanged(t, functools.partial(t.refused_request, "/peer/v1/link-test", raw))
        assert code == "bad_time", (t1, code)
    raw, nonce = t.peer.link_test(t.now_us())
    r = await t.post("/peer/v1/link-test", raw)
    assert r.status_code == 200
    t.peer.link_reply(r.content, nonce)
    await t.still_answers()


@attack
async def link_test_claims_a_far_last_sequence(t: Target) -> None:
    """A link test claiming our last sequence number is far ahead (2^62, beyond int64)
    is answered with missing ranges inside the sequence window only (or refused with
    ``seq_window``; beyond int64 also ``bad_payload``), never a 500; nothing is stored."""
    await honest(t)
    contiguous = t.peer.next_seq - 1
    for last in (contiguous + 10**6, 2**62, 2**63 + 1):
        raw, nonce = t.peer.link_test(t.now_us(), last_sequence=last)

        async def post(raw: bytes = raw) -> Any:
            return await t.post("/peer/v1/link-test", raw)

        r = await unchanged(t, post)
        if r.status_code != 200:
            assert 400 <= r.status_code < 500, (last, r.status_code)
            # beyond int64 the field itself is invalid: either code says why
            allowed = {"seq_window"} if last < 2**63 else {"seq_window", "bad_payload"}
            assert r.headers.get("x-hotline-error") in allowed, (last, r.headers)
            continue
        missing = t.peer.link_reply(r.content, nonce).missing
        assert all(hi <= contiguous + MAX_SEQUENCE_AHEAD for _lo, hi in missing), missing
    await t.still_answers()


@attack
async def envelope_dated_in_the_future(t: Target) -> None:
    """An envelope dated beyond the allowed clock skew (up to 2^63-1) is ``clock_skew``."""
    skew_us = int(float(t.limits.get("max_clock_skew_s", 300.0)) * 1_000_000)
    now = t.now_us()
    raws = [
        t.peer.message(now + skew_us + 60_000_000, t.peer.next_seq),
        t.peer.message(2**62, t.peer.next_seq),
        t.peer.message(2**63 - 1, t.peer.next_seq),
    ]
    codes = await unchanged(t, lambda: t.refused(raws))
    assert codes == ["clock_skew"] * len(raws)
    await honest(t)
    await t.still_answers()


@attack
async def envelope_dated_in_the_past(t: Target) -> None:
    """An envelope dated 1970, or with a sent time of 2^63+ (negative as int64), is either
    refused ``bad_time`` or kept as the peer's claim: then the acknowledgement deadline
    runs on the target's own receive time, never on the peer's clock."""
    for sent_at in (0, 2**63, 2**64 - 1, Y2020_US - 1):
        mid = uuid.uuid4()
        raw = t.peer.message(sent_at, t.peer.next_seq, "backdated", message_id=mid)
        [result] = await t.deliver([raw])
        if result.receipt is None:
            assert result.refused == "bad_time", (sent_at, result.refused)
            continue
        t.peer.take_seq()
        got = await t.operator("GET", f"/api/v1/messages/{mid}")
        assert got["ack_deadline_us"] is not None
        assert got["ack_deadline_us"] > t.now_us(), (sent_at, got)
        assert not got["ack_overdue"]
    await t.still_answers()


# --- addressing, kinds and signatures ---------------------------------------------------


@attack
async def misaddressed(t: Target) -> None:
    """Envelopes addressed to another station (or to the sender) are ``misaddressed``."""
    now, seq = t.now_us(), t.peer.next_seq
    raws = [
        t.peer.message(now, seq, recipient=t.other_peer or "bravo"),
        t.peer.message(now, seq, recipient=t.peer.station_id),
    ]
    codes = await unchanged(t, lambda: t.refused(raws))
    assert codes == ["misaddressed", "misaddressed"]
    await honest(t)
    await t.still_answers()


@attack
async def wrong_kind(t: Target) -> None:
    """Receipts, link tests and link test replies are not delivered on the envelope
    endpoint (``bad_kind``), a message is not a link test (``bad_kind``), an unknown kind
    is a bad envelope, and a message carrying an acknowledgement's payload is
    ``bad_payload``."""
    now, seq = t.now_us(), t.peer.next_seq
    receipt = t.peer.envelope(
        now, kind=int(Kind.RECEIPT), sequence=0, suite=primitives.SUITE_NONE,
        plaintext=b"{}",
    )  # fmt: skip
    link_test, _ = t.peer.link_test(now)
    reply = t.peer.envelope(now, kind=int(Kind.LINK_TEST_REPLY), sequence=0, plaintext=b"{}")
    unknown = t.peer.envelope(now, kind=9, sequence=seq)
    ack_as_message = t.peer.envelope(
        now, sequence=seq, plaintext=ack_plaintext(str(uuid.uuid4()), now)
    )
    codes = await unchanged(t, lambda: t.refused([receipt, link_test, reply, unknown]))
    assert codes == ["bad_kind", "bad_kind", "bad_kind", "bad_envelope"]
    codes = await unchanged(t, lambda: t.refused([ack_as_message]))
    assert codes == ["bad_payload"]
    message = t.peer.message(now, seq)
    code = await unchanged(t, lambda: t.refused_request("/peer/v1/link-test", message))
    assert code == "bad_kind"
    await honest(t)
    await t.still_answers()


@attack
async def channel_over_64_bytes(t: Target) -> None:
    """A channel name longer than the wire allows (64 bytes) is a ``bad_envelope``, not a
    database error when it reaches a 64-character column."""
    now, seq = t.now_us(), t.peer.next_seq
    raws = [t.peer.message(now, seq, channel="c" * 65), t.peer.message(now, seq, channel="ж" * 40)]
    codes = await unchanged(t, lambda: t.refused(raws))
    assert codes == ["bad_envelope", "bad_envelope"]
    await honest(t)
    await t.still_answers()


@attack
async def bad_signature(t: Target) -> None:
    """A valid peer signing with another key (one of its own other keys, a stranger's),
    or signing as another peer, is ``bad_signature`` (``unknown_peer`` for a station the
    target does not know)."""
    now, seq = t.now_us(), t.peer.next_seq
    raws = [
        t.peer.message(now, seq, signing_seed=t.peer.identity.log_seed),
        t.peer.message(now, seq, signing_seed=new_identity("mallory").signing_seed),
    ]
    expected = ["bad_signature", "bad_signature"]
    if t.other_peer is not None:
        raws.append(t.peer.message(now, 1, sender=t.other_peer))
        expected.append("bad_signature")
    raws.append(t.peer.message(now, 1, sender="ghost"))
    expected.append("unknown_peer")
    codes = await unchanged(t, lambda: t.refused(raws))
    assert codes == expected
    await honest(t)
    await t.still_answers()


# --- sizes ---------------------------------------------------------------------------------


@attack
async def oversized_envelope(t: Target) -> None:
    """An envelope one byte over the limit (validly sealed and signed) is ``too_large``."""
    limit = int(t.limits["max_envelope_bytes"])
    small = t.peer.message(t.now_us(), t.peer.next_seq, "")
    pad = limit + 1 - len(small)
    raw = t.peer.envelope(
        t.now_us(), sequence=t.peer.next_seq, plaintext=message_plaintext("x" * pad)
    )
    assert len(raw) == limit + 1
    body = framing.encode_batch([raw])
    code = await unchanged(t, lambda: t.refused_request("/peer/v1/envelopes", body))
    assert code == "too_large"
    await honest(t)
    await t.still_answers()


@attack
async def oversized_batch(t: Target) -> None:
    """A request body over the limit is ``too_large`` before it is read; a batch of more
    envelopes than allowed, a truncated one and one with trailing bytes are
    ``bad_batch``."""
    ok = t.peer.message(t.now_us(), t.peer.next_seq)
    count = int(t.limits.get("max_batch_envelopes", 256))
    huge = b"HTLB" + (1).to_bytes(4, "big") + b"\0" * int(t.limits["max_request_bytes"])
    too_many = framing.encode_batch([ok] * (count + 1))
    truncated = framing.encode_batch([ok, ok])[:-10]
    trailing = framing.encode_batch([ok]) + b"\0"
    lying_count = b"HTLB" + (0xFFFFFFFF).to_bytes(4, "big")
    for body, code in [
        (huge, "too_large"),
        (too_many, "bad_batch"),
        (truncated, "bad_batch"),
        (trailing, "bad_batch"),
        (lying_count, "bad_batch"),
        (b"not a batch", "bad_batch"),
    ]:
        got = await unchanged(t, functools.partial(t.refused_request, "/peer/v1/envelopes", body))
        assert got == code, (body[:16], got)
    await honest(t)
    await t.still_answers()


@attack
async def geometry_over_the_vertex_limit(t: Target) -> None:
    """A site notice one vertex over ``geometry_max_vertices`` is ``geometry_too_large``."""
    limit = int(t.limits.get("geometry_max_vertices", 10_000))
    raw = t.peer.envelope(
        t.now_us(), sequence=t.peer.next_seq, plaintext=polygon_site_notice(limit + 1)
    )
    codes = await unchanged(t, lambda: t.refused([raw]))
    assert codes == ["geometry_too_large"]
    await t.still_answers()


@attack
async def geometry_of_a_million_vertices(t: Target) -> None:
    """A site notice with a 10^6-vertex polygon (8 MB) is refused before it is parsed
    (``bad_payload``: more JSON values than any message holds; parsing it would hold the
    interpreter for a second and starve the active's election heartbeat), and operators
    are answered while the target refuses it."""
    raw = t.peer.envelope(
        t.now_us(), sequence=t.peer.next_seq, plaintext=polygon_site_notice(1_000_000)
    )
    assert len(raw) <= int(t.limits["max_envelope_bytes"]), "raise the target's limits"
    before = t.snapshot()
    refusal = asyncio.create_task(t.refused([raw]))
    await asyncio.sleep(0)  # the refusal is in flight
    status = await t.operator("GET", "/api/v1/status")
    assert status["station"] == t.peer.target_id
    codes = await refusal
    assert codes == ["bad_payload"]
    assert not diff(before, t.snapshot())
    await t.still_answers()


@attack
async def punctuation_in_text_is_not_structure(t: Target) -> None:
    """A text of 99,000 brackets and commas is a string, not 99,000 values: it passes
    the count of JSON values taken before the parse, and is stored."""
    raw = t.peer.message(t.now_us(), t.peer.take_seq(), "[,{" * 33_000)
    assert len(await t.accept([raw])) == 1
    await t.still_answers()


# --- floods ------------------------------------------------------------------------------


@attack
async def batch_of_signed_replays(t: Target) -> None:
    """256 validly signed replays are each refused ``replay`` and change nothing; in a
    mixed batch the replays are refused and every new envelope is stored."""
    n = int(t.limits.get("max_batch_envelopes", 256))
    first = t.peer.next_seq
    await honest(t, n, "original")
    now = t.now_us()
    replays = [t.peer.message(now, first + i, f"rewritten {i}") for i in range(n)]
    operators = asyncio.create_task(t.operator("GET", "/api/v1/status"))
    codes = await unchanged(t, lambda: t.refused(replays))
    assert (await operators)["station"] == t.peer.target_id
    assert codes == ["replay"] * n
    half = n // 2
    new = [t.peer.message(now, t.peer.take_seq(), f"new {i}") for i in range(half)]
    mixed: list[bytes] = [x for pair in zip(replays[:half], new, strict=True) for x in pair]
    before = t.snapshot()
    results = await t.deliver(mixed)
    assert [r.refused for r in results[0::2]] == ["replay"] * half
    receipts = [r.receipt for r in results[1::2]]
    assert all(r is not None for r in receipts)
    for raw, receipt in zip(new, receipts, strict=True):
        assert receipt is not None
        assert t.peer.receipt(receipt).envelope_hash == primitives.sha256(raw).hex()
    changes = diff(before, t.snapshot())
    for table in ("entries", "inbound", "messages"):
        removed, added = changes[table]
        assert (len(removed), len(added)) == (0, half), table
    await t.still_answers()


# --- link tests with forged checkpoints -------------------------------------------------


def _entries_added(changes: dict[str, tuple[list[Any], list[Any]]]) -> list[Entry]:
    removed, added = changes.get("entries", ([], []))
    assert not removed, "a ledger entry changed"
    leaf_at = 6  # entries' columns: idx kind peer peer_seq envelope_hash recorded_at_us leaf
    return [Entry.decode(bytes(row[leaf_at])) for row in sorted(added)]


def _witness_state(t: Target) -> tuple[int, bytes, str] | None:
    rows = [r for r in t.snapshot().get("witness_state", []) if r[0] == t.peer.station_id]
    if not rows:
        return None
    _peer, size, root, note, _at = rows[0]
    return int(size), bytes(root), str(note)


async def _link_test(t: Target, witness: str) -> tuple[bytes, Any]:
    raw, nonce = t.peer.link_test(t.now_us(), witness=witness)
    r = await t.post("/peer/v1/link-test", raw)
    assert r.status_code == 200, (r.status_code, r.headers.get("x-hotline-error"))
    return raw, t.peer.link_reply(r.content, nonce)


def _check_fork(
    t: Target,
    changes: dict[str, tuple[list[Any], list[Any]]],
    envelope: bytes,
    cosigned: str,
    offered: str,
) -> None:
    """Exactly one ledger entry (the fork evidence, both signed notes and the signed link
    test that carried the lie) and a CRITICAL fork alarm; nothing else but the ledger's
    derived tree nodes."""
    assert set(changes) <= {"entries", "ledger_nodes", "alarms"}, set(changes)
    assert not changes.get("ledger_nodes", ([], []))[0], "a stored tree node changed"
    [entry] = _entries_added(changes)
    assert (entry.kind, entry.peer) == (EntryKind.WITNESS, t.peer.station_id)
    doc = json.loads(entry.data)
    assert doc["witness"] == "fork_evidence"
    assert (doc["cosigned_note"], doc["offered_note"]) == (cosigned, offered)
    assert doc["envelope"] == envelope.hex()
    alarms = t.snapshot()["alarms"]
    forks = [a for a in alarms if a[1] == "fork" and a[3] == t.peer.station_id and a[7] is None]
    assert [a[2] for a in forks] == ["CRITICAL"], forks


@attack
async def forged_checkpoint_fork(t: Target) -> None:
    """Link tests carrying checkpoints of the peer's log that contradict the one the target
    cosigned (another root for the same size; a larger size whose consistency proof does
    not lead from the cosigned root) are kept as fork evidence with a CRITICAL alarm:
    exactly one ledger entry each, the cosigned state unchanged, no cosignature."""
    state = _witness_state(t)
    if state is None:  # nothing cosigned yet: a first checkpoint of our (pretend) log
        note = t.peer.checkpoint_note(5, primitives.sha256(b"our log"))
        _, reply = await _link_test(t, t.peer.add_checkpoint(0, [], note))
        assert reply.cosignature is not None, reply
        state = _witness_state(t)
        assert state is not None
    size, root, cosigned = state

    other = t.peer.checkpoint_note(size, primitives.sha256(b"another history"))
    before = t.snapshot()
    raw, reply = await _link_test(t, t.peer.add_checkpoint(size, [], other))
    assert (reply.cosignature, reply.witness_error) == (None, "fork")
    _check_fork(t, diff(before, t.snapshot()), raw, cosigned, other)
    assert _witness_state(t) == state

    # a larger checkpoint of another history, with its own (valid) consistency proof
    # from the cosigned size: it cannot extend the root the target cosigned
    history = MemoryTree()
    history.append(primitives.sha256(b"another leaf %d" % i) for i in range(size * 2 + 3))
    assert history.root(size) != root
    proof = history.consistency_proof(size)
    extended = t.peer.checkpoint_note(history.size, history.root())
    before = t.snapshot()
    raw, reply = await _link_test(t, t.peer.add_checkpoint(size, proof, extended))
    assert (reply.cosignature, reply.witness_error) == (None, "fork")
    _check_fork(t, diff(before, t.snapshot()), raw, cosigned, extended)
    assert _witness_state(t) == state
    await t.still_answers()


@attack
async def checkpoint_signed_with_another_key(t: Target) -> None:
    """A checkpoint not signed by the peer's log key is refused in the reply, not a fork:
    nothing stored, no alarm."""
    state = _witness_state(t)
    size = 0 if state is None else state[0]
    note = t.peer.checkpoint_note(
        size + 1, primitives.sha256(b"x"), log_seed=new_identity("mallory").log_seed
    )
    request = t.peer.add_checkpoint(size, [], note)
    raw, nonce = t.peer.link_test(t.now_us(), witness=request)

    async def post() -> Any:
        r = await t.post("/peer/v1/link-test", raw)
        assert r.status_code == 200
        return t.peer.link_reply(r.content, nonce)

    reply = await unchanged(t, post)
    assert reply.cosignature is None
    assert reply.witness_error not in (None, "fork")
    await t.still_answers()


# --- escalation (issue 8, "watch") ---------------------------------------------------------


def _escalation(t: Target, data: Any, text: str = "escalation") -> bytes:
    doc = {"type": "escalation", "text": text, "data": data, "ack_required": False}
    return t.peer.envelope(t.now_us(), sequence=t.peer.take_seq(),
                           plaintext=json.dumps(doc).encode())  # fmt: skip


async def _escalation_alarms(t: Target, mid: str) -> list[dict[str, Any]]:
    alarms = await t.operator("GET", "/api/v1/alarms")
    return [a for a in alarms if a["kind"] == "escalation" and a["ref"] == mid]


@attack
async def escalation_claims(t: Target) -> None:
    """A peer's escalation must be bounded (malformed: ``bad_payload``, store unchanged)
    and name an open message it sent us: one for a message we never received from it,
    for our own message, for one that needs no acknowledgement, or a step already taken
    (a flood of them) is kept on the record but ``ignored`` with its code and raises no
    alarm; a true one raises one alarm for its role."""
    real = str(uuid.uuid4())
    bad = [
        {"message_id": real, "step": 0, "role": "principal"},
        {"message_id": real, "step": 9, "role": "principal"},
        {"message_id": real, "step": 1, "role": "administrator"},
        {"message_id": "not-a-uuid-but-thirty-six-characters", "step": 1, "role": "principal"},
        {"message_id": real, "step": 1, "role": "principal", "more": 1},
        {"message_id": real, "step": "1", "role": "principal"},
        {"message_id": real, "step": 1},
        None,
    ]
    for data in bad:
        raw = _escalation(t, data)
        t.peer.next_seq -= 1  # refused: the number stays free
        assert await unchanged(t, lambda raw=raw: t.refused([raw])) == ["bad_payload"]
    ours = (await t.send_to_peer("our own message"))["message_id"]
    # a message it sent us that needs an acknowledgement, and one that does not
    [asked] = await honest(t, 1, "acknowledge me")
    asked_id = str(t.peer.receipt(asked).message_id)
    quiet = t.peer.envelope(t.now_us(), sequence=t.peer.take_seq(),
                            plaintext=message_plaintext("fyi", ack_required=False))  # fmt: skip
    [quiet_receipt] = await t.accept([quiet])
    quiet_id = str(t.peer.receipt(quiet_receipt).message_id)
    cases = {str(uuid.uuid4()): "unknown_message", ours: "unknown_message",
             quiet_id: "no_ack_required"}  # fmt: skip
    for mid, code in cases.items():
        await t.accept([_escalation(t, {"message_id": mid, "step": 1, "role": "principal"})])
        [row] = await t.operator("GET", "/api/v1/escalations", params={"message_id": mid})
        assert (row["status"], row["code"]) == ("ignored", code)
        assert await _escalation_alarms(t, mid) == []
    step = {"message_id": asked_id, "step": 1, "role": "senior_watch_officer"}
    await t.accept([_escalation(t, step)])
    await t.accept([_escalation(t, step) for _ in range(20)])  # a flood of the same step
    rows = await t.operator("GET", "/api/v1/escalations", params={"message_id": asked_id})
    assert sorted((r["status"], r["code"]) for r in rows) == [
        ("ignored", "duplicate")] * 20 + [("raised", None)]  # fmt: skip
    [alarm] = await _escalation_alarms(t, asked_id)
    assert alarm["role"] == "senior_watch_officer"


# --- message stages (issue 8) -----------------------------------------------------------


def _read(message_id: object, officer: object = "wo.mallory") -> bytes:
    data = {"message_id": message_id, "officer": officer}
    return message_plaintext("read", type="read", ack_required=False, data=data)


@attack
async def read_of_a_message_not_ours(t: Target) -> None:
    """A ``read`` whose data does not fit is ``bad_payload`` (store unchanged); one naming
    a message the target never sent to the peer is stored as the peer's word and ignored
    by the stages projection: no read recorded, one ``read_ignored`` alarm with the code
    ``unknown_message``, and no second alarm for the next such read."""
    now, seq = t.now_us(), t.peer.next_seq
    garbage = [
        t.peer.envelope(now, sequence=seq, plaintext=_read(5)),
        t.peer.envelope(now, sequence=seq, plaintext=_read(str(uuid.uuid4()), "x" * 101)),
    ]
    codes = await unchanged(t, lambda: t.refused(garbage))
    assert codes == ["bad_payload", "bad_payload"]
    before = t.snapshot()
    raw = t.peer.envelope(now, sequence=t.peer.take_seq(), plaintext=_read(str(uuid.uuid4())))
    await t.accept([raw])
    added = diff(before, t.snapshot())
    added.pop("ledger_nodes", None)
    alarms = added.pop("alarms", ([], []))[1]
    for table in [t for t in added if t.startswith("message_fts")]:
        added.pop(table)  # SQLite's FTS5 index (its shadow tables) follows message_search
    assert {table: (len(rem), len(add)) for table, (rem, add) in added.items()} == {
        "entries": (0, 1), "inbound": (0, 1), "messages": (0, 1), "peers": (1, 1),
        "message_search": (0, 1),
    }  # fmt: skip
    # (id, kind, severity, peer, ref, ...); a live target may hold it from an earlier run
    assert [(r[1], r[4]) for r in alarms] in ([("read_ignored", "unknown_message")], [])
    before = t.snapshot()
    raw = t.peer.envelope(now, sequence=t.peer.take_seq(), plaintext=_read(str(uuid.uuid4())))
    await t.accept([raw])
    assert "alarms" not in diff(before, t.snapshot())


@attack
async def officer_claim_out_of_bounds(t: Target) -> None:
    """The sending officer a message names (issue 8) is bounded and closed: a username
    over 64 characters, a display name over 100, a role over 40, an empty username, an
    extra field, or not an object are each ``bad_payload``; a proper one is stored and
    shown to the operators as the peer's claim."""
    now, seq = t.now_us(), t.peer.next_seq
    good = {"username": "ko", "display_name": "Col. Ko", "role": "principal"}
    bad = [
        {**good, "username": "k" * 65},
        {**good, "display_name": "K" * 101},
        {**good, "role": "r" * 41},
        {**good, "username": ""},
        {**good, "rank": "general"},
        "Col. Ko",
    ]
    raws = [
        t.peer.envelope(now, sequence=seq, plaintext=message_plaintext("x", officer=o)) for o in bad
    ]
    codes = await unchanged(t, lambda: t.refused(raws))
    assert codes == ["bad_payload"] * len(bad)
    raw = t.peer.envelope(now, sequence=t.peer.take_seq(),
                          plaintext=message_plaintext("claimed", officer=good))  # fmt: skip
    await t.accept([raw])
    shown = await t.operator("GET", "/api/v1/messages", params={"peer": t.peer.station_id})
    [mine] = [m for m in shown if m["body"].get("text") == "claimed"]
    assert mine["officer"] == good


# --- channels at several levels (issue 8) --------------------------------------------------


def channel_plaintext(kind: str, data: dict[str, Any]) -> bytes:
    """A typed channel-agreement message (control: no acknowledgement asked)."""
    return message_plaintext("", type=kind, data=data, ack_required=False)


def proposal(name: str, members: list[str], level: str = "working", **terms: Any) -> bytes:
    spec = {"name": name, "level": level, "members": members, **terms}
    return channel_plaintext("channel_propose", {"version": 1, "spec": spec})


@attack
async def message_on_a_channel_not_agreed(t: Target) -> None:
    """A message on a channel that is neither standing nor agreed with the sender as a
    member is ``unknown_channel`` before anything is stored; an acknowledgement too."""
    now, seq = t.now_us(), t.peer.next_seq
    raws = [
        t.peer.message(now, seq, "to the ministers", channel="ministers"),
        t.peer.message(now, seq, "typo", channel="workin"),
        t.peer.envelope(now, sequence=seq, kind=int(Kind.ACK), channel="ministers",
                        plaintext=b'{"message_id":"' + str(uuid.uuid4()).encode() + b'"}'),
    ]  # fmt: skip
    codes = await unchanged(t, lambda: t.refused(raws))
    assert codes == ["unknown_channel"] * 3
    # the standing channels work pairwise without agreement
    await t.accept([t.peer.message(now, t.peer.take_seq(), "ok", channel="deconfliction")])
    await t.still_answers()


@attack
async def channel_proposals_that_break_the_rules(t: Target) -> None:
    """Proposals the target can judge alone are refused with their code, the store
    unchanged: itself missing, the target not named, a member the target does not peer
    with, a standing channel's name, a level not configured; an acceptance that claims
    to be another station's (a field that does not exist) is ``bad_payload``."""
    now, seq = t.now_us(), t.peer.next_seq
    me, other = t.peer.station_id, "bravo"
    cases = [
        (proposal("cos", ["alpha", other]), "proposer_not_member"),
        (proposal("cos", [me, other]), "not_a_member"),
        (proposal("cos", ["alpha", me, "zulu"]), "unknown_member"),
        (proposal("working", ["alpha", me]), "channel_conflict"),
        (proposal("cos", ["alpha", me], level="emperors"), "bad_level"),
        (
            channel_plaintext(
                "channel_accept", {"proposal": "ab" * 32, "name": "cos", "station": other}
            ),
            "bad_payload",
        ),
    ]
    raws = [t.peer.envelope(now, sequence=seq, plaintext=p) for p, _ in cases]
    codes = await unchanged(t, lambda: t.refused(raws))
    assert codes == [code for _, code in cases]
    await honest(t)
    await t.still_answers()


@attack
async def channel_proposal_flood(t: Target) -> None:
    """A peer may have 16 proposals pending at the target; the 17th is
    ``too_many_proposals``. Proposing a pending name again supersedes the older proposal
    (it takes no new place); the proposer cannot accept its own proposal
    (``not_a_member``)."""
    now, me = t.now_us(), t.peer.station_id
    names = [f"flood-{i}-{uuid.uuid4().hex[:6]}" for i in range(16)]
    await t.accept(
        [
            t.peer.envelope(now, sequence=t.peer.take_seq(), plaintext=proposal(n, ["alpha", me]))
            for n in names
        ]
    )
    seq = t.peer.next_seq
    extra = t.peer.envelope(now, sequence=seq, plaintext=proposal("one-more", ["alpha", me]))
    assert await unchanged(t, lambda: t.refused([extra])) == ["too_many_proposals"]
    again = proposal(names[0], ["alpha", me], brevity_words=10)
    await t.accept([t.peer.envelope(now, sequence=t.peer.take_seq(), plaintext=again)])
    states = {
        (r["name"], r["state"])
        for r in (await t.operator("GET", "/api/v1/channels"))
        if r["name"] == names[0]
    }
    assert states == {(names[0], "superseded"), (names[0], "proposed")}
    pid = next(
        r["proposal_id"]
        for r in await t.operator("GET", "/api/v1/channels")
        if r["name"] == names[1]
    )
    own = channel_plaintext("channel_accept", {"proposal": pid, "name": names[1]})
    seq = t.peer.next_seq
    own_raw = t.peer.envelope(now, sequence=seq, plaintext=own)
    assert await unchanged(t, lambda: t.refused([own_raw])) == ["not_a_member"]
    await honest(t)
    await t.still_answers()
