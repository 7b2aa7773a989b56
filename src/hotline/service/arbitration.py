"""Having this station's checkpoints cosigned by third-party witnesses (arbiters) over HTTP.

Owns, per configured witness (setting ``witnesses``: "URL VKEY"): the round that sends the
station's newest signed checkpoint (the one its latest link test offered, so the peer's
and the arbiter's cosignatures land on one note) to ``URL/add-checkpoint`` as a C2SP
tlog-witness request, with the consistency proof from the newest size this witness
cosigned; a 409 is answered once with the size it names; the returned line is verified
with the witness's vkey and stored in ``cosignatures`` under :func:`witness_name` (``@``
cannot start a station id) with a local ``WITNESS`` ledger entry. Rounds run every
``link_test_interval_s`` and after each operator-requested link test (:meth:`wake`).
Must not touch: the link, peers' witnessing (``witnessing``), transcripts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx

from hotline.errors import HotlineError
from hotline.ledger import checkpoint as cps
from hotline.ledger import witness as wit
from hotline.ledger.cosignature import CosignatureVerifier
from hotline.ledger.entry import ZERO_HASH, Entry, EntryKind
from hotline.service.line import Line
from hotline.service.transcripts import witness_action, witness_name
from hotline.service.witnessing import Witnessing
from hotline.store import transcripts as stored
from hotline.store import tree, witnessdb
from hotline.store.projections import action_bytes
from hotline.store.writer import WriteTx
from hotline.supervise import forever

log = logging.getLogger(__name__)


def parse_witness(item: str) -> tuple[str, CosignatureVerifier]:
    """``"URL VKEY"`` (as the setting validated it) -> (add-checkpoint URL, key)."""
    url, _, vkey = item.strip().partition(" ")
    return url.rstrip("/") + "/add-checkpoint", CosignatureVerifier.from_vkey(vkey.strip())


class Arbitration:
    """One third-party witness of this station's log."""

    def __init__(
        self,
        line: Line,
        witnessing: Witnessing,
        witness: str,
        interval_s: float,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.line = line
        self.witnessing = witnessing
        self.url, self.key = parse_witness(witness)
        self.name = witness_name(self.key)
        self.interval_s = interval_s
        self._client = httpx.AsyncClient(timeout=timeout_s, trust_env=False, transport=transport)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def run(self) -> None:
        """A round now, then every ``interval_s`` or when woken, until cancelled."""
        await forever(f"witness {self.name}", self._loop_round)

    async def _loop_round(self) -> None:
        try:
            await self.round()
        except (HotlineError, httpx.HTTPError) as exc:
            log.warning("witness %s: %s", self.name, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.interval_s)
        self._wake.clear()

    async def round(self) -> dict[str, Any]:
        """Have the newest signed checkpoint cosigned by this witness; a summary back."""
        # reads in a worker thread: the event loop never waits for the database
        target = await asyncio.to_thread(self._newest)
        if target is None:
            await self.witnessing.offer(self.name)  # signs one; nothing was ever offered
            target = await asyncio.to_thread(self._newest)
        if target is None:  # pragma: no cover - offer() always stores a checkpoint
            return {"cosigned": False}
        size, note = target
        cosigned = await asyncio.to_thread(self._cosigned)
        if cosigned is not None and cosigned >= size:
            return {"cosigned": cosigned == size, "checkpoint_size": size}
        old = cosigned or 0
        for _ in range(2):
            body = await asyncio.to_thread(self._request, old, size, note)
            r = await self._client.post(self.url, content=body)
            if r.status_code == 409 and r.headers.get("content-type", "").startswith(
                "text/x.tlog.size"
            ):
                stored = r.text.strip()
                if not stored.isdigit() or int(stored) > size:
                    break
                old = int(stored)
                continue
            if r.status_code != 200:
                break
            cp = cps.parse_checkpoint(note.split("\n\n", 1)[0] + "\n")
            line = r.text if r.text.endswith("\n") else r.text + "\n"
            self.key.verify_line(cp.format(), line)
            await self._store(cp, line)
            return {"cosigned": True, "checkpoint_size": size}
        log.warning(
            "witness %s refused checkpoint %d: %s %s", self.name, size, r.status_code, r.text
        )
        return {"cosigned": False, "checkpoint_size": size, "status": r.status_code}

    def _newest(self) -> tuple[int, str] | None:
        with self.line.reader.connect() as conn:
            return witnessdb.newest_checkpoint(conn)

    def _cosigned(self) -> int | None:
        """The newest size this witness cosigned for us; None: never."""
        with self.line.reader.connect() as conn:
            return witnessdb.cosigned_size(conn, self.name)

    def _request(self, old: int, size: int, note: str) -> bytes:
        with self.line.reader.connect() as conn:
            proof = (
                tree.consistency_proof(conn, old, size, tree.ledger_size(conn))
                if 0 < old < size
                else []
            )
        return wit.AddCheckpoint(old, tuple(proof), note).format()

    async def _store(self, cp: cps.Checkpoint, line: str) -> None:
        def unit(tx: WriteTx) -> None:
            if witnessdb.has_cosignature(tx.conn, self.name, cp.size):
                return
            now = self.line.clock.now_us()
            if stored.first_cosignature_by(tx.conn, self.name):  # its key goes on record
                action = witness_action(self.key, self.url)
                tx.append(
                    Entry(EntryKind.OPERATOR_ACTION, "", 0, ZERO_HASH, now, action_bytes(action))
                )
            witnessdb.add_cosignature(tx.conn, self.name, cp.size, line, now)
            doc = {
                "witness": "cosigned_by_arbiter",
                "arbiter": self.key.vkey,
                "size": cp.size,
                "root": cp.root.hex(),
                "line": line,
            }
            tx.append(Entry(EntryKind.WITNESS, "", 0, ZERO_HASH, now, action_bytes(doc)))

        await self.line.writer.submit(unit)
