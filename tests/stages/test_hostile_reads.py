"""A valid-keyed hostile peer and the ``read`` typed message: a read naming a message we
never sent, or one we sent to another station, or a flood of readers, stays on the
ledger as what the peer said and is IGNORED by the projection with a code on a
``read_ignored`` alarm (one open alarm per code); garbage data is refused at the inbox
(``bad_payload``); a repeated read by the same officer changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errors import EnvelopeError, InputError
from hotline.service import queries, stages
from hotline.station import Station
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload
from tests.service.conftest import make_identity
from tests.stages.conftest import Pair
from tests.stages.test_ladder import rebuilt_equals_live


async def peer_reads(p: Pair, message_id: str, officer: str = "wo.evil") -> None:
    """Bravo (hostile, valid keys) tells alpha its ``officer`` read ``message_id``."""
    await p.bravo.line.send(
        peer="alpha", channel="working", precedence=Precedence.ROUTINE,
        payload=MessagePayload(type="read", text="read", ack_required=False,
                               data={"message_id": message_id, "officer": officer}),
    )  # fmt: skip
    await p.flush()


def read_alarms(station: Station) -> list[tuple[str, str]]:
    with station.read_engine.connect() as conn:
        rows = queries.alarms(conn, station.line.clock.now_us())
    return sorted((a["peer"], a["ref"]) for a in rows if a["kind"] == "read_ignored")


def readers(station: Station, mid: str) -> list[str]:
    with station.read_engine.connect() as conn:
        found = queries.message_with_stages(conn, station.line.clock.now_us(), mid)
    assert found is not None
    return [s["by"] for s in found["recipients"][0]["stages"] if s["stage"] == "read"]


def test_reads_of_messages_not_ours_are_ignored_with_a_code(run_pair: Callable[..., None]) -> None:
    async def scenario(p: Pair) -> None:
        # a message of alpha's to a third station, and one bravo sent to alpha
        _card, unit = p.alpha.line.peer_add_unit(make_identity("charlie").card().to_text(), "t")
        await p.alpha.writer.submit(unit)
        to_charlie = await p.send("for charlie only", dst="charlie")
        from_bravo = await p.send("bravo's own", src=p.bravo, dst="alpha")
        await p.flush()
        await peer_reads(p, str(uuid.uuid4()))
        await peer_reads(p, str(to_charlie.message_id))
        await peer_reads(p, str(from_bravo.message_id))
        assert read_alarms(p.alpha) == [("bravo", "not_yours"), ("bravo", "unknown_message")]
        assert readers(p.alpha, str(to_charlie.message_id)) == []
        assert readers(p.alpha, str(from_bravo.message_id)) == []
        await peer_reads(p, str(uuid.uuid4()))  # again: still one open alarm per code
        assert len(read_alarms(p.alpha)) == 2

    run_pair(scenario)


def test_a_flood_of_reads_is_bounded(run_pair: Callable[..., None]) -> None:
    async def scenario(p: Pair) -> None:
        mid = str((await p.send("watch this")).message_id)
        await p.flush()
        for i in range(stages.MAX_READERS + 3):
            await peer_reads(p, mid, officer=f"officer-{i:03d}")
        await peer_reads(p, mid, officer="officer-000")  # the same officer again
        assert len(readers(p.alpha, mid)) == stages.MAX_READERS
        assert read_alarms(p.alpha) == [("bravo", "read_flood")]
        await rebuilt_equals_live(p.alpha)  # the same reads kept, the same ignored
        assert read_alarms(p.alpha) == [("bravo", "read_flood")]

    run_pair(scenario)


@pytest.mark.parametrize(
    "data",
    [
        {"message_id": "not-a-uuid", "officer": "x"},
        {"message_id": str(uuid.UUID(int=1)), "officer": ""},
        {"message_id": str(uuid.UUID(int=1)), "officer": "x" * 101},
        {"message_id": str(uuid.UUID(int=1)), "officer": "x", "extra": 1},
        {"officer": "x"},
    ],
)
def test_bad_read_data_is_refused(data: dict[str, Any]) -> None:
    with pytest.raises(InputError) as err:
        stages.check_read(data)
    assert err.value.code == "bad_message_data"


@settings(max_examples=200, deadline=None)
@given(data=st.dictionaries(st.sampled_from(["message_id", "officer", "x"]),
                            st.none() | st.integers() | st.text(max_size=120) | st.booleans(),
                            max_size=3))  # fmt: skip
def test_hypothesis_garbage_read_data_raises_input_error_only(data: dict[str, Any]) -> None:
    try:
        parsed = stages.parse_read(data)
    except InputError:
        return
    assert 1 <= len(parsed.officer) <= 100


def test_the_inbox_refuses_garbage_read_data(run_pair: Callable[..., None]) -> None:
    async def scenario(p: Pair) -> None:
        del p.bravo.line.validators["read"]  # a hostile bravo checks nothing
        p.bravo.line.validators["read"] = lambda data: None
        await p.bravo.line.send(
            peer="alpha", channel="working", precedence=Precedence.ROUTINE,
            payload=MessagePayload(type="read", data={"message_id": 5}, ack_required=False),
        )  # fmt: skip
        [raw] = p.outbound(p.bravo, "alpha")
        with pytest.raises(EnvelopeError) as err:
            p.alpha.line.check_inbound(raw)
        assert err.value.code == "bad_payload"

    run_pair(scenario)
