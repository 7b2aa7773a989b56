"""The station under attack, as the hostile peer and the test see it.

Owns the two ways to reach a target (in-process: its real peer app and operator app
through ``httpx.ASGITransport``; live: a real station process over pinned mutual TLS and
its operator API over HTTP), reading every table of its store for before/after
comparisons, and the checks every attack ends with (refusal codes, an unchanged store,
operators still answered). Invariant: attacks use only ``Target``'s methods, so one
attack runs unchanged against both kinds of target. Must not touch: the target's store
other than reading it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hotline.link import framing
from hotline.store import schema
from tests.hostile.peer import HostilePeer

#: every code a refused envelope or request may carry (COMMON.md's table, and the codes
#: wire decoding has always used); ``store`` is not one: it means a real database failure
DOCUMENTED_CODES = frozenset(
    {
        "replay",
        "seq_window",
        "old_message_id",
        "bad_time",
        "clock_skew",
        "too_large",
        "bad_batch",
        "bad_envelope",
        "bad_signature",
        "misaddressed",
        "unknown_peer",
        "bad_payload",
        "bad_kind",
        "geometry_too_large",
        # wire decoding's finer codes for a malformed envelope
        "truncated",
        "bad_version",
        "bad_suite",
        "decrypt_failed",
        # channels at several levels (issue 8: docs/operations.md, "Channels")
        "unknown_channel",
        "bad_channel",
        "bad_level",
        "proposer_not_member",
        "not_a_member",
        "unknown_member",
        "channel_conflict",
        "too_many_proposals",
        "bad_channel_vote",
    }
)

Snapshot = dict[str, list[tuple[Any, ...]]]


def read_store(engine: Engine, md: sa.MetaData | None = None) -> Snapshot:
    """Every row of every table of the store (reflected, so that tables other branches
    add are compared too), each table's rows in a stable order."""
    if md is None:
        md = sa.MetaData()
        md.reflect(engine)
    out: Snapshot = {}
    with engine.connect() as conn:
        for name, table in sorted(md.tables.items()):
            rows = [tuple(r) for r in conn.execute(sa.select(table))]
            out[name] = sorted(rows, key=repr)
    return out


def diff(before: Snapshot, after: Snapshot) -> dict[str, tuple[list[Any], list[Any]]]:
    """Per changed table: (rows removed or changed, rows added or changed)."""
    out = {}
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name, []), after.get(name, [])
        removed = [r for r in b if r not in a]
        added = [r for r in a if r not in b]
        if removed or added:
            out[name] = (removed, added)
    return out


@dataclass
class Target:
    """One station under attack and the scripted peer attacking it."""

    peer: HostilePeer
    peer_http: httpx.AsyncClient  #: the target's peer endpoint, as our peer
    operator_http: httpx.AsyncClient  #: the target's operator API, with its token
    store: Engine  #: read access to the target's store
    now_us: Callable[[], int]  #: the target's clock (what "now" means to it)
    limits: dict[str, Any]  #: the target's input limits (max_envelope_bytes, ...)
    #: another peer of the target (not us), or None when it has only us
    other_peer: str | None = None
    #: live targets deliver what operators send; wait for it so that it cannot land
    #: in the middle of the next attack's before/after comparison
    wait_delivered: bool = False
    _tables: sa.MetaData | None = field(default=None, repr=False)

    # --- the peer endpoint ------------------------------------------------------------

    async def post(self, path: str, body: bytes) -> httpx.Response:
        return await self.peer_http.post(
            path, content=body, headers={"content-type": framing.CONTENT_TYPE}
        )

    async def deliver(self, raws: list[bytes]) -> list[framing.Result]:
        """Post one batch; the answer must be per envelope (HTTP 200, one result each)."""
        r = await self.post("/peer/v1/envelopes", framing.encode_batch(raws))
        assert r.status_code == 200, (r.status_code, r.headers.get("x-hotline-error"))
        return framing.decode_results(r.content, expected=len(raws))

    async def accept(self, raws: list[bytes]) -> list[bytes]:
        """Deliver envelopes that must all be stored; their receipts."""
        results = await self.deliver(raws)
        refused = [r.refused for r in results if r.receipt is None]
        assert not refused, f"honest envelopes refused: {refused}"
        return [r.receipt for r in results if r.receipt is not None]

    async def refused(self, raws: list[bytes]) -> list[str]:
        """Deliver envelopes that must all be refused; their codes (never ``store``)."""
        results = await self.deliver(raws)
        codes = [r.refused or "" if r.receipt is None else "ACCEPTED" for r in results]
        assert "ACCEPTED" not in codes, f"a hostile envelope was accepted: {codes}"
        assert all(c in DOCUMENTED_CODES for c in codes), codes
        return codes

    async def refused_request(self, path: str, body: bytes) -> str:
        """A request the target must refuse: with a whole-request 4xx and its code, or
        (for a batch) HTTP 200 whose every result is refused with one code."""
        r = await self.post(path, body)
        assert r.status_code < 500, r.status_code
        if r.status_code == 200 and path == "/peer/v1/envelopes":
            results = framing.decode_results(r.content, expected=_batch_count(body))
            codes = {res.refused for res in results}
            assert all(res.receipt is None for res in results), "accepted"
            assert len(codes) == 1, codes
            code = codes.pop() or ""
        else:
            assert 400 <= r.status_code < 500, r.status_code
            code = r.headers.get("x-hotline-error", "")
        assert code in DOCUMENTED_CODES, code
        return code

    # --- the store and the operators ------------------------------------------------------

    def resync(self) -> None:
        """Take up our sequence numbers where the target's contiguous mark stands (a live
        target outlives one attack; one that failed may have left it elsewhere)."""
        p = schema.peers
        with self.store.connect() as conn:
            mark = conn.execute(
                sa.select(p.c.in_contiguous).where(p.c.station_id == self.peer.station_id)
            ).scalar_one()
        self.peer.next_seq = int(mark) + 1

    def snapshot(self) -> Snapshot:
        if self._tables is None:
            self._tables = sa.MetaData()
            self._tables.reflect(self.store)
        return read_store(self.store, self._tables)

    async def operator(self, method: str, path: str, **kw: Any) -> Any:
        r = await self.operator_http.request(method, path, **kw)
        assert r.status_code < 300, (method, path, r.status_code, r.text)
        return r.json()

    async def send_to_peer(self, text: str) -> dict[str, Any]:
        """An operator of the target writes to us; the stored message as the API shows it."""
        sent = await self.operator(
            "POST", "/api/v1/messages", json={"peer": self.peer.station_id, "text": text}
        )
        mid = sent["message_id"]
        if self.wait_delivered:
            await self.until_delivered(mid)
        found: dict[str, Any] = await self.operator("GET", f"/api/v1/messages/{mid}")
        return found

    async def until_delivered(self, mid: str, timeout_s: float = 60.0) -> None:
        for _ in range(int(timeout_s / 0.1)):
            state = (await self.operator("GET", f"/api/v1/messages/{mid}"))["state"]
            if state in ("delivered", "acknowledged"):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"message {mid} was not delivered in {timeout_s:.0f}s")

    async def still_answers(self) -> None:
        """The target keeps serving its operators: its status, and a send that succeeds."""
        status = await self.operator("GET", "/api/v1/status")
        assert status["station"] == self.peer.target_id
        msg = await self.send_to_peer("still answering")
        assert msg["direction"] == "out"
        assert msg["body"]["text"] == "still answering"


def _batch_count(body: bytes) -> int:
    return int.from_bytes(body[4:8], "big") if len(body) >= 8 else 0
