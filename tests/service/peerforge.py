"""A hostile counterpart in tests: envelopes validly signed by alpha (or bravo) with any
header and any payload, sealed to the other station, as a peer with valid keys may send.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from hotline.crypto import primitives
from hotline.wire import envelope as wire
from hotline.wire.envelope import Header, Kind, Precedence
from tests.service.conftest import Pair


def seal(p: Pair, kind: Kind, body: bytes, *, src: str = "alpha", **changes: Any) -> bytes:
    """An envelope of ``kind`` from ``src`` to the other station, signed with ``src``'s
    real key, carrying ``body`` (sealed unless a receipt); header fields in ``changes``."""
    me, other = (p.alpha, p.bravo) if src == "alpha" else (p.bravo, p.alpha)
    header = Header(
        kind, Precedence.ROUTINE, wire.DEFAULT_SUITE if kind.sealed else primitives.SUITE_NONE,
        me.line.station_id, other.line.station_id, "working", 1, uuid.uuid4(),
        p.clock.now_us(),
    )  # fmt: skip
    header = dataclasses.replace(header, **changes)
    key = other.line.card.card.encryption_key if kind.sealed else None
    return wire.seal_envelope(header, body, primitives.Signer(me.identity.signing_seed), key).raw


def message(p: Pair, seq: int, text: str = "x", **changes: Any) -> bytes:
    """A text MESSAGE from alpha to bravo at ``seq``."""
    body = b'{"type":"text","text":"' + text.encode() + b'"}'
    return seal(p, Kind.MESSAGE, body, sequence=seq, **changes)


def next_seq(p: Pair, station: Any, peer: str) -> int:
    """The next sequence number ``station`` would use towards ``peer``."""
    import sqlalchemy as sa

    from hotline.store import schema

    with station.read_engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(schema.peers.c.next_out_seq).where(schema.peers.c.station_id == peer)
            ).scalar_one()
        )
