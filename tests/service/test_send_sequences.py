"""Sending seals and signs before the writer's unit (service/sender.py, outseq.py): the
sequence number is the station's guess, checked against the store inside the unit. The
numbers on the record stay gap-free and in order whatever happens between the guess
and the commit: a send refused after it took its number, a unit that raises (alone or
in a group commit), a writer that refuses a whole batch, a number taken inside the
writer by an acknowledgement; and every envelope carries the number it is recorded
under."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from hotline.errors import HotlineError, InputError, StoreError
from hotline.ledger.entry import Entry, EntryKind
from hotline.service import sender
from hotline.store import schema
from hotline.store.leader import FencedError
from hotline.wire import envelope as wire
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload
from tests.service.conftest import Pair


def recorded(p: Pair) -> list[tuple[int, int]]:
    """(number on the record, number in the envelope) of each envelope alpha queued for
    bravo, in ledger order."""
    e = schema.entries
    with p.alpha.read_engine.connect() as conn:
        rows = conn.execute(
            sa.select(e.c.leaf).where(e.c.kind == int(EntryKind.ENVELOPE_OUT)).order_by(e.c.idx)
        ).all()
    out = []
    for (leaf,) in rows:
        entry = Entry.decode(bytes(leaf))
        header = wire.decode(entry.data, max_bytes=len(entry.data)).header
        out.append((entry.peer_seq, header.sequence))
    return out


def send(p: Pair, text: str, also: Any = None) -> Any:
    return sender.send(
        p.alpha.line.ctx,
        peer="bravo",
        channel="working",
        precedence=Precedence.ROUTINE,
        payload=MessagePayload(text=text),
        also=also,
    )


def refuse(_conn: Any, _sent: Any) -> None:
    raise StoreError("the unit fails after its append")


def test_a_message_is_sealed_and_signed_outside_the_writer(
    run_pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the station knows the next number (after its first send), a send seals on
    the loop: the writer thread only appends."""
    threads: list[int] = []
    real = wire.seal_envelope

    def seal(*args: Any, **kwargs: Any) -> wire.Envelope:
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(wire, "seal_envelope", seal)

    async def scenario(p: Pair) -> None:
        here = threading.get_ident()
        await p.send("first")  # the number is not known yet: sealed in the unit
        threads.clear()
        for i in range(3):
            await p.send(f"then {i}")
        assert threads == [here] * 3
        assert recorded(p) == [(n, n) for n in range(1, 5)]

    run_pair(scenario)


def test_sequence_numbers_stay_gap_free_and_in_order_when_sends_fail(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await p.send("one")
        await p.send("two")
        # refused after its number was taken and its envelope sealed (too large)
        with pytest.raises(InputError) as refused:
            await p.send("x" * 3000)
        assert refused.value.code == "too_large"
        # the unit raises after its append: rolled back, its number unused
        with pytest.raises(StoreError):
            await send(p, "rolled back", also=refuse)
        # the writer refuses the whole batch before running the unit
        p.alpha.writer.fenced = FencedError("fenced for the test")
        with pytest.raises(StoreError):
            await p.send("never written")
        p.alpha.writer.fenced = None
        # an acknowledgement takes a number inside the writer, behind the guess's back
        incoming = await p.send("to be acknowledged", src=p.bravo, dst="alpha")
        await p.flush()
        await p.alpha.line.acknowledge(str(incoming.message_id), "duty officer")
        # sends in one group commit, one of them failing in the middle
        results = await asyncio.gather(
            *(send(p, f"group {i}", also=refuse if i == 4 else None) for i in range(10)),
            return_exceptions=True,
        )
        assert [isinstance(r, HotlineError) for r in results] == [i == 4 for i in range(10)]
        await p.send("last")
        numbers = recorded(p)
        assert numbers == [(n, n) for n in range(1, len(numbers) + 1)]
        assert len(numbers) == 2 + 1 + 9 + 1  # the acknowledgement is the third
        # in order: the group's sends that committed hold increasing numbers in the
        # order they were submitted
        seqs = [r.sequence for r in results if not isinstance(r, BaseException)]
        assert seqs == sorted(seqs) == list(range(4, 13))
        await p.flush()  # bravo takes every number: none missing, none twice
        assert p.outbound(p.alpha, "bravo") == []

    run_pair(scenario, max_envelope_bytes=2048)
