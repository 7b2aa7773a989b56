"""The hand-carried path: bundle files exported for a peer and imported from it.

Owns what goes into a bundle for a peer (every envelope queued for it that it has not
receipted and that is not parked, in send order, then the receipts owed to it: see
store/bundles.py) and what importing one does: the file is checked whole before
anything changes (wire/bundle.py: size, header, recipient, sender, signature, then that
every record names the bundle's sender and us), a bundle already imported is refused,
the envelopes go through ``intake.take_batch`` (the same checks and store as the HTTPS
endpoint: a duplicate gets the stored receipt), the receipts through
``Line.record_receipt`` (recorded once), and the answer is the bundle for the sender
(receipts for what came in, and whatever is pending for it). Each export and import is an
operator action on the ledger naming the bundle, its peer and the sequence numbers it
carried. Imports run one at a time (a lock), so one file imported twice at once is still
imported once. The bundle's id is recorded after its contents are stored: a crash in
between lets the same file be imported again, which stores nothing twice (the store
keeps one envelope per sender and sequence number, one receipt per envelope).
Must not touch: how the file travels (api, cli), SQL (store/), the other paths'
delivery state (a bundle does not count as a delivery attempt).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hotline.errors import EnvelopeError, HotlineError, InputError
from hotline.link import intake
from hotline.service.appending import append_action
from hotline.service.line import Line
from hotline.store import bundles as store
from hotline.store import outbox
from hotline.store.writer import WriteTx
from hotline.wire import batchreceipt
from hotline.wire import bundle as wire
from hotline.wire import envelope as envelope_wire
from hotline.wire.envelope import Kind, Precedence

log = logging.getLogger(__name__)
_ALL_PRECEDENCES = [p.value for p in Precedence]


@dataclass(frozen=True, slots=True)
class Exported:
    """A bundle written for a peer (``data`` is the file)."""

    bundle_id: str
    peer: str
    data: bytes
    sequences: tuple[int, ...]
    receipts: int
    answers: str | None = None


@dataclass(frozen=True, slots=True)
class Imported:
    """What importing a bundle did, and the answer to carry back (None: nothing to)."""

    bundle_id: str
    peer: str
    stored: tuple[int, ...]
    duplicates: tuple[int, ...]
    refused: dict[str, int]
    receipts_recorded: int
    receipts_known: int
    receipts_refused: dict[str, int]
    answered: str | None
    answer: Exported | None = field(default=None)


class Bundles:
    """Export and import of bundle files for one line."""

    def __init__(self, line: Line) -> None:
        self._line = line
        self._lock = asyncio.Lock()

    @property
    def line(self) -> Line:
        return self._line

    async def export(self, peer: str, operator: str | None) -> Exported:
        """Everything pending for ``peer`` as one signed file; refused when there is
        nothing to carry."""
        out = await self._export(peer, operator, answers=None, first=(), empty=False)
        if out is None:
            raise InputError(
                f"nothing is pending for {peer}: no envelope without a receipt, no receipt owed",
                code="nothing_to_carry",
            )
        return out

    async def import_(self, raw: bytes, operator: str | None) -> Imported:
        """Ingest a bundle file exactly once and make the answering bundle."""
        line = self._line
        limit = line.settings.bundle_max_bytes
        if len(raw) > limit:  # before anything else, even the lock
            raise EnvelopeError(f"bundle larger than {limit} bytes", code="too_large")
        async with self._lock:
            b = await asyncio.to_thread(self._open, raw)
            peer = b.header.sender
            seqs = await asyncio.to_thread(self._seqs, b)
            stored_before = await self._read(lambda c: store.held_sequences(c, peer, seqs))
            results = []
            step = line.settings.max_batch_envelopes
            for i in range(0, len(b.envelopes), step):
                results += await intake.take_batch(line, list(b.envelopes[i : i + step]))
            stored: list[int] = []
            duplicates: list[int] = []
            owed: list[bytes] = []
            refused = Counter[str]()
            for seq, r in zip(seqs, results, strict=True):
                if r.receipt is None:
                    refused[r.refused or "refused"] += 1
                    continue
                owed.append(r.receipt)
                (duplicates if seq in stored_before else stored).append(seq)
            recorded = known = 0
            receipts_refused = Counter[str]()
            for outcome in await line.record_receipts(peer, list(b.receipts), carried_by="bundle"):
                if isinstance(outcome, HotlineError):
                    log.warning("refused a receipt in bundle %s: %s", b.header.bundle_id,
                                outcome)  # fmt: skip
                    receipts_refused[outcome.code] += 1
                elif outcome:
                    recorded += 1
                else:
                    known += 1
            now = line.clock.now_us()
            h = b.header
            action = {
                "action": "bundle_import", "by": operator or "system", "peer": peer,
                "bundle_id": h.bundle_id, "digest": b.digest.hex(), "answers": h.answers,
                "sequences": sorted(stored), "duplicates": sorted(duplicates),
                "refused": dict(refused), "receipts": recorded,
            }  # fmt: skip

            def unit(tx: WriteTx) -> str | None:
                idx = append_action(line.ctx, tx, action, peer=peer)
                store.add(
                    tx.conn,
                    store.BundleRow(
                        peer, "in", h.bundle_id, h.created_at_us, now, h.envelopes, h.receipts,
                        0, h.answers, None, b.digest, idx,
                    ),
                )  # fmt: skip
                if h.answers is not None and store.mark_answered(tx.conn, peer, h.answers, now):
                    return h.answers
                return None

            answered = await line.writer.submit(unit)
            # a bundle that carried anything is answered, even by an empty bundle: the
            # answer tells its sender which of its receipts we hold (its mark moves)
            answer = await self._export(
                peer, operator, answers=h.bundle_id, first=owed,
                empty=bool(b.envelopes or b.receipts),
            )  # fmt: skip
        log.info(
            "imported bundle %s from %s: %d stored, %d duplicate, %d refused, %d receipts",
            h.bundle_id, peer, len(stored), len(duplicates), sum(refused.values()), recorded,
        )  # fmt: skip
        return Imported(
            h.bundle_id, peer, tuple(stored), tuple(duplicates), dict(refused), recorded,
            known, dict(receipts_refused), answered, answer,
        )  # fmt: skip

    # --- the parts ----------------------------------------------------------------------

    def _open(self, raw: bytes) -> wire.Bundle:
        """The checked bundle (a thread); raises before any change when it does not
        check, was imported already, or carries a record not between its sender and us."""
        line = self._line
        me = line.station_id
        b = wire.open_bundle(
            raw,
            max_bytes=line.settings.bundle_max_bytes,
            recipient=me,
            key_of=lambda sid: line.peers.get(sid).card.signing_key,
            max_records=line.settings.bundle_max_envelopes,
            max_record_bytes=line.settings.max_envelope_bytes,
        )
        peer = b.header.sender
        with line.reader.connect() as conn:
            if store.known(conn, peer, "in", b.header.bundle_id):
                raise InputError(
                    f"bundle {b.header.bundle_id} from {peer} was imported already",
                    code="bundle_imported",
                    hint="nothing was changed; to answer it again, export a bundle for "
                    f"{peer} (hotline bundle export --peer {peer} FILE)",
                )
        limit = line.settings.max_envelope_bytes
        for raw_env in b.envelopes:
            h = envelope_wire.decode(raw_env, max_bytes=limit).header
            if h.sender != peer or h.recipient != me or h.kind is Kind.RECEIPT:
                raise EnvelopeError("an envelope in the bundle is not from its sender to us",
                                    code="bad_bundle")  # fmt: skip
        for raw_r in b.receipts:  # either form: the signed (root) envelope's header
            h = batchreceipt.signed_header(raw_r, max_envelope_bytes=limit)
            if h.sender != peer or h.recipient != me or h.kind is not Kind.RECEIPT:
                raise EnvelopeError("a receipt in the bundle is not from its sender to us",
                                    code="bad_bundle")  # fmt: skip
        return b

    def _seqs(self, b: wire.Bundle) -> list[int]:
        """The sequence numbers of the bundle's envelopes, in order (a thread)."""
        limit = self._line.settings.max_envelope_bytes
        return [envelope_wire.decode(r, max_bytes=limit).header.sequence for r in b.envelopes]

    async def _read(self, fn: Any) -> Any:
        def run() -> Any:
            with self._line.reader.connect() as conn:
                return fn(conn)

        return await asyncio.to_thread(run)

    async def _export(
        self,
        peer: str,
        operator: str | None,
        *,
        answers: str | None,
        first: list[bytes] | tuple[()],
        empty: bool,
    ) -> Exported | None:
        """The bundle for ``peer`` (recorded and on the ledger), or None when it would
        carry nothing and ``empty`` is False."""
        line = self._line
        line.peers.get(peer)  # UnknownPeerError for a stranger
        s = line.settings
        budget = s.bundle_max_bytes - wire.overhead()

        def gather() -> tuple[list[tuple[int, bytes]], list[tuple[int, int, bytes]]]:
            with line.reader.connect() as conn:
                queued = outbox.candidates(conn, peer, _ALL_PRECEDENCES,
                                           limit=s.bundle_max_envelopes)  # fmt: skip
                envs = outbox.envelopes(conn, [idx for idx, _ in queued])
                mark = store.receipts_mark(conn, peer)
                owed = store.owed_receipts(conn, peer, mark, limit=s.bundle_max_envelopes)
            return envs, owed

        envs, owed = await asyncio.to_thread(gather)
        chosen: list[bytes] = []
        sequences: list[int] = []
        for _idx, raw in envs:
            if wire.record_size(raw) > budget:
                break
            budget -= wire.record_size(raw)
            chosen.append(raw)
            sequences.append(envelope_wire.decode(raw, max_bytes=len(raw)).header.sequence)
        receipts: list[bytes] = []
        seen: set[bytes] = set()
        for raw in first:
            if raw not in seen and wire.record_size(raw) <= budget:
                budget -= wire.record_size(raw)
                receipts.append(raw)
                seen.add(raw)
        through = 0
        for idx, _seq, raw in owed:
            if raw in seen:
                through = idx
                continue
            if wire.record_size(raw) > budget or len(receipts) >= s.bundle_max_envelopes:
                break
            budget -= wire.record_size(raw)
            receipts.append(raw)
            seen.add(raw)
            through = idx
        if not chosen and not receipts and not empty:
            return None
        bundle_id = wire.new_bundle_id()
        now = line.clock.now_us()
        data = wire.encode(
            bundle_id=bundle_id, sender=line.station_id, recipient=peer, created_at_us=now,
            envelopes=chosen, receipts=receipts, answers=answers, signer=line.ctx.signer,
        )  # fmt: skip
        digest = wire.digest(data)
        action = {
            "action": "bundle_export", "by": operator or "system", "peer": peer,
            "bundle_id": bundle_id, "digest": digest.hex(), "answers": answers,
            "sequences": sequences, "receipts": len(receipts),
        }  # fmt: skip

        def unit(tx: WriteTx) -> None:
            idx = append_action(line.ctx, tx, action, peer=peer)
            store.add(
                tx.conn,
                store.BundleRow(
                    peer, "out", bundle_id, now, now, len(chosen), len(receipts), through,
                    answers, None, digest, idx,
                ),
            )  # fmt: skip

        await line.writer.submit(unit)
        log.info("exported bundle %s for %s: %d envelopes, %d receipts",
                 bundle_id, peer, len(chosen), len(receipts))  # fmt: skip
        return Exported(bundle_id, peer, data, tuple(sequences), len(receipts), answers)
