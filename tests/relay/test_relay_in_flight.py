"""Several frames in flight at once over a real NATS relay (JetStream at 127.0.0.1:4222):
a batch goes as several frames, a round as several requests, all answered in order; one
refused in the middle of them; link tests that piled up in the stream answered once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hotline.crypto import primitives
from hotline.link import relay as relaymod
from hotline.link import relayframe
from tests.relay.test_relay import BOUND_S, FakeMsg, Pair, relay_pair, run, until


def gate_bravo(p: Pair) -> tuple[list[relayframe.Kind], asyncio.Event]:
    """Bravo takes no frame until the returned event is set; the list names the kinds of
    the frames that reached it (checked), in the order they did."""
    bravo = p.relays["bravo"]
    real_take = bravo.take
    reached: list[relayframe.Kind] = []
    release = asyncio.Event()

    async def take(frame: relayframe.Frame) -> None:
        reached.append(frame.kind)
        await release.wait()
        await real_take(frame)

    bravo.take = take  # type: ignore[method-assign]
    return reached, release


def test_a_batch_goes_as_several_frames_in_flight_at_once(
    tmp_path: Path, nats_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five envelopes, two per frame: three frames reach bravo before it answers any (one
    after the other, bravo would see one); the results come back in order (the outbox
    checks each receipt against its envelope) and bravo holds each message once."""
    monkeypatch.setattr(relaymod, "FRAME_ENVELOPES", 2)

    async def scenario() -> None:
        async with relay_pair(tmp_path, prefix) as p:
            reached, release = gate_bravo(p)
            sent = [await p.send(f"in flight {i}") for i in range(5)]
            lane = p.outbox.lanes[1]
            round_ = asyncio.create_task(p.outbox._lane_round(lane))
            await until("three frames at bravo", lambda: len(reached) >= 3)
            assert reached == [relayframe.Kind.BATCH] * 3
            release.set()
            await asyncio.wait_for(round_, BOUND_S)
            assert {p.state(m.message_id) for m in sent} == {"delivered"}
            assert sorted(m["sequence"] for m in p.received()) == [1, 2, 3, 4, 5]

    run(scenario)


def test_a_round_holds_several_requests_in_flight(
    tmp_path: Path, nats_url: str, prefix: str
) -> None:
    """The relay carries ``requests_at_once`` requests at once: with two envelopes per
    request, one round takes seven envelopes in four requests, all at bravo before it
    answers one, and delivers them all."""

    async def scenario() -> None:
        async with relay_pair(tmp_path, prefix, max_batch_envelopes=2) as p:
            assert p.transport.requests_at_once >= 4
            reached, release = gate_bravo(p)
            sent = [await p.send(f"request {i}") for i in range(7)]
            lane = p.outbox.lanes[1]
            round_ = asyncio.create_task(p.outbox._lane_round(lane))
            await until("four requests at bravo", lambda: len(reached) >= 4)
            release.set()
            await asyncio.wait_for(round_, BOUND_S)
            assert {p.state(m.message_id) for m in sent} == {"delivered"}
            assert sorted(m["sequence"] for m in p.received()) == list(range(1, 8))

    run(scenario)


def test_a_request_refused_in_the_middle_costs_only_its_envelope(
    tmp_path: Path, nats_url: str, prefix: str
) -> None:
    """Of four requests in flight, bravo refuses the second whole (an envelope larger
    than it takes): the others are delivered in the same round, the refused one is split
    until the large envelope is alone and parked; bravo holds every other message once."""

    async def scenario() -> None:
        async with relay_pair(
            tmp_path, prefix, max_batch_envelopes=3, bravo={"max_envelope_bytes": 2048}
        ) as p:
            sent = [await p.send(f"small {i}") for i in range(4)]
            big = await p.send("large " * 600)
            sent += [await p.send(f"small {i}") for i in range(5, 10)]
            await p.outbox._lane_round(p.outbox.lanes[1])
            assert {p.state(m.message_id) for m in sent} == {"delivered"}
            assert p.state(big.message_id) == "refused"
            got = sorted(m["sequence"] for m in p.received())
            assert got == [1, 2, 3, 4, 6, 7, 8, 9, 10]

    run(scenario)


def test_only_the_newest_link_test_of_a_sender_is_answered(
    tmp_path: Path, nats_url: str, prefix: str
) -> None:
    """Link tests that piled up in the stream (the station was down): of those fetched
    together, each sender's newest is answered, the older ones acked unanswered. A forged
    newer one does not silence the genuine one: it does not check, and is dropped."""

    async def scenario() -> None:
        async with relay_pair(tmp_path, prefix) as p:
            bravo = p.relays["bravo"]
            subject = relayframe.inbound_subject(prefix, "bravo", "alpha")
            alpha = primitives.Signer(p.alpha.identity.signing_seed)
            mallory = primitives.Signer(primitives.new_signing_key())

            def test_frame(signer: primitives.Signer, n: int) -> FakeMsg:
                data = relayframe.encode(
                    signer, relayframe.Kind.LINK_TEST, "alpha", "bravo", bytes([n]) * 16, b"t"
                )
                return FakeMsg(subject, data)

            old, new, forged = test_frame(alpha, 1), test_frame(alpha, 2), test_frame(mallory, 3)
            batch = FakeMsg(
                subject,
                relayframe.encode(
                    alpha, relayframe.Kind.BATCH, "alpha", "bravo", bytes([4]) * 16, b"b"
                ),
            )
            kept = await bravo._sort([old, batch, new, forged])  # type: ignore[list-item]
            assert [m for m, _ in kept] == [batch, new]
            assert [f.correlation for _, f in kept] == [bytes([4]) * 16, bytes([2]) * 16]
            assert old.acked
            assert forged.acked
            assert not new.acked
            assert not batch.acked
            assert (bravo.superseded, bravo.dropped) == (1, 1)

    run(scenario)


def test_a_batch_frame_that_does_not_decode_is_refused_and_the_next_is_taken(
    tmp_path: Path, nats_url: str, prefix: str
) -> None:
    """A signed BATCH frame whose body is not a batch is answered REFUSED with the
    framing's code (decoded in the same worker thread as the checks), nothing is stored,
    and the sender's next batch is checked and stored as usual."""

    async def scenario() -> None:
        async with relay_pair(tmp_path, prefix) as p:
            bravo = p.relays["bravo"]
            subject = relayframe.inbound_subject(prefix, "bravo", "alpha")
            alpha = primitives.Signer(p.alpha.identity.signing_seed)
            data = relayframe.encode(
                alpha, relayframe.Kind.BATCH, "alpha", "bravo", bytes([5]) * 16, b"b"
            )
            kind, body = await bravo._answer(bravo.check(subject, data))
            assert (kind, body) == (relayframe.Kind.REFUSED, b"bad_batch")
            assert p.received() == []
            sent = await p.send("after the refused frame")
            await asyncio.wait_for(p.outbox._lane_round(p.outbox.lanes[1]), BOUND_S)
            assert p.state(sent.message_id) == "delivered"
            assert [m["sequence"] for m in p.received()] == [1]

    run(scenario)
