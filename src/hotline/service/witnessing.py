"""Mutual witnessing of the two ledgers of a line, and the cross-check of receipts.

Owns, as a **log**: signing checkpoints of this station's ledger (C2SP tlog-checkpoint,
signed note with the station's log key), building the add-checkpoint request a peer
witnesses, storing the peer's cosignature; and, for receipts: asking the peer for
inclusion proofs and checking them against a checkpoint of the peer's log that this
station cosigned. As a **witness**: checking a peer's checkpoint and consistency proof
against the state stored for it (atomically, by the writer), cosigning it, and keeping
the evidence and raising a CRITICAL alarm on a fork.

Everything rides inside the link test's sealed envelopes. Database reads, parsing and
proof checks run in worker threads, writes in the writer: nothing here blocks the event
loop. Must not touch: transport, link health (``link``), message projections.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from hotline.errors import ForkError, HotlineError, ProofError, SignatureError
from hotline.ledger import checkpoint as cps
from hotline.ledger import merkle
from hotline.ledger import witness as wit
from hotline.ledger.cosignature import CosignatureVerifier, Cosigner
from hotline.ledger.entry import ZERO_HASH, Entry, EntryKind
from hotline.ledger.note import Ed25519Verifier, NoteSigner
from hotline.service.events import raise_alarm
from hotline.service.line import Line
from hotline.store import operational, tree, witnessdb
from hotline.store.projections import action_bytes
from hotline.store.writer import WriteTx
from hotline.wire.messages import MAX_PROVE, InclusionProof, LinkTestReplyPayload

log = logging.getLogger(__name__)


def origin_of(station_id: str) -> str:
    """The checkpoint origin (and log key name) of a station's ledger."""
    return f"hotline/{station_id}/log"


def cosigner_of(station_id: str) -> str:
    """The key name a station cosigns other stations' checkpoints with."""
    return f"hotline/{station_id}/witness"


@dataclass(frozen=True, slots=True)
class Offer:
    """What this station puts in a link test for a peer to witness and prove."""

    request: str
    checkpoint: cps.Checkpoint
    prove: list[tuple[int, int]]
    #: the checkpoint of the peer's log (that we cosigned) the proofs must lead to
    proved_against: tuple[int, bytes] | None = None


class Witnessing:
    def __init__(self, line: Line) -> None:
        self.line = line
        sid = line.station_id
        self.log_signer = NoteSigner(origin_of(sid), line.identity.log_seed)
        self.cosigner = Cosigner(cosigner_of(sid), line.identity.cosign_seed)
        self._old_hint: dict[str, int] = {}
        #: called with (peer, reply) for every reply to our link tests that this sees (the
        #: station's resync listens here while the link tester has no reply hook of its own)

    # --- keys of peers, from their cards ---------------------------------------------

    def peer_log_key(self, peer: str) -> Ed25519Verifier:
        return Ed25519Verifier(origin_of(peer), self.line.peers.get(peer).card.log_key)

    def peer_cosign_key(self, peer: str) -> CosignatureVerifier:
        return CosignatureVerifier(cosigner_of(peer), self.line.peers.get(peer).card.cosign_key)

    # --- as a log ----------------------------------------------------------------------

    async def offer(self, peer: str) -> Offer:
        """Sign a checkpoint of our ledger as it is now and build the request for ``peer``."""

        def read(
            conn: Connection,
        ) -> tuple[int, bytes, int, tuple[list[tuple[int, int]], tuple[int, bytes] | None]]:
            size = tree.ledger_size(conn)
            root = tree.root_at(conn, size, size) if size else merkle.EMPTY_ROOT
            cosigned = witnessdb.cosigned_size(conn, peer)
            return size, root, int(cosigned or 0), self._to_prove(conn, peer)

        def read_now() -> tuple[
            int, bytes, int, tuple[list[tuple[int, int]], tuple[int, bytes] | None]
        ]:
            with self.line.reader.connect() as conn:
                return read(conn)

        size, root, cosigned, (prove, against) = await asyncio.to_thread(read_now)
        old = min(self._old_hint.pop(peer, cosigned), size)
        cp = cps.Checkpoint(origin_of(self.line.station_id), size, root)

        def unit(tx: WriteTx) -> tuple[str, list[bytes]]:
            note = witnessdb.checkpoint_note(tx.conn, size)
            if note is None:
                note = cps.sign_checkpoint(cp, self.log_signer)
                witnessdb.add_checkpoint(tx.conn, size, root, note, self.line.clock.now_us())
            proof = tree.consistency_proof(tx.conn, old, size, size) if 0 < old < size else []
            return str(note), proof

        note, proof = await self.line.writer.submit(unit)
        request = wit.AddCheckpoint(old, tuple(proof), note).format().decode()
        return Offer(request, cp, prove, against)

    def _to_prove(
        self, conn: Connection, peer: str
    ) -> tuple[list[tuple[int, int]], tuple[int, bytes] | None]:
        """Receipts not yet proved that the peer's cosigned checkpoint covers, and it."""
        state = witnessdb.witness_state(conn, peer)
        if state is None or not state[0]:
            return [], None
        witnessed, root, _ = state
        rows = witnessdb.unproved_receipts(conn, peer, witnessed, MAX_PROVE)
        return [(i, witnessed) for i in rows], (witnessed, root)

    async def take_reply(
        self, peer: str, offer: Offer, reply: LinkTestReplyPayload
    ) -> dict[str, Any]:
        """Store the peer's cosignature and check the proofs it sent; a summary back."""
        out: dict[str, Any] = {"checkpoint_size": offer.checkpoint.size}
        if reply.cosignature is not None:
            body = offer.checkpoint.format()
            try:
                self.peer_cosign_key(peer).verify_line(body, reply.cosignature)
            except HotlineError as exc:
                out["cosigned"] = False
                out["witness_error"] = exc.code
                log.error("cosignature from %s does not verify: %s", peer, exc)
            else:
                await self._store_cosignature(peer, offer.checkpoint, reply.cosignature)
                out["cosigned"] = True
        else:
            out["cosigned"] = False
            out["witness_error"] = reply.witness_error
            if reply.witness_error == "witness_conflict" and reply.witness_size is not None:
                self._old_hint[peer] = reply.witness_size
        if reply.proofs:
            out["receipts_proved"], out["receipts_failed"] = await self._check_proofs(
                peer, reply.proofs, offer
            )
        return out

    async def _store_cosignature(self, peer: str, cp: cps.Checkpoint, line: str) -> None:
        def unit(tx: WriteTx) -> None:
            if witnessdb.has_cosignature(tx.conn, peer, cp.size):
                return
            now = self.line.clock.now_us()
            witnessdb.add_cosignature(tx.conn, peer, cp.size, line, now)
            self._record(
                tx,
                peer,
                {
                    "witness": "cosigned_by_peer",
                    "peer": peer,
                    "size": cp.size,
                    "root": cp.root.hex(),
                    "line": line,
                },
            )

        await self.line.writer.submit(unit)

    async def _check_proofs(
        self, peer: str, proofs: list[InclusionProof], offer: Offer
    ) -> tuple[int, int]:
        """Each proof must show our envelope, as the peer logged it, in the checkpoint of
        the peer's log that we cosigned and asked against. A receipt that cannot be proved
        is an alarm (so is a proof against another size than we asked); a proof for a leaf
        we did not ask about is ignored."""
        asked = {index for index, _ in offer.prove}
        wanted = {p.leaf_index: p for p in proofs if p.leaf_index in asked}
        if offer.proved_against is None or not wanted:
            return 0, 0
        against = offer.proved_against
        # reading our envelopes and checking up to 64 proofs: off the event loop
        good, bad = await asyncio.to_thread(self._verify_proofs, peer, wanted, against)

        def unit(tx: WriteTx) -> None:
            now = self.line.clock.now_us()
            held = witnessdb.proved_sequences(tx.conn, peer, [seq for seq, _ in good])
            for seq, size in good:
                if seq not in held:  # two tests in flight may prove the same receipt
                    witnessdb.add_receipt_proof(tx.conn, peer, seq, size, now)
            for seq, why in bad:
                raise_alarm(
                    tx,
                    self.line.events,
                    operational.raise_alarm,
                    kind="receipt_unproved",
                    severity="HIGH",
                    peer=peer,
                    ref=str(seq),
                    now_us=now,
                    detail=f"{peer}'s receipt for our sequence {seq} is not in its cosigned "
                    f"log: {why}",
                )

        if good or bad:
            await self.line.writer.submit(unit)
        return len(good), len(bad)

    def _verify_proofs(
        self,
        peer: str,
        wanted: dict[int, InclusionProof],
        against: tuple[int, bytes],
    ) -> tuple[list[tuple[int, int]], list[tuple[int, str]]]:
        """Check the proofs of our receipted envelopes (a worker thread: reads, hashing)."""
        against_size, against_root = against
        with self.line.reader.connect() as conn:
            rows = witnessdb.receipted_envelopes(conn, peer, wanted)
        good: list[tuple[int, int]] = []
        bad: list[tuple[int, str]] = []
        for row in rows:
            p = wanted[int(row.leaf_index)]
            ours = Entry.decode(bytes(row.leaf))
            theirs = Entry(
                EntryKind.ENVELOPE_IN,
                self.line.station_id,
                ours.peer_seq,
                bytes(row.envelope_hash),
                int(row.stored_at_us),
                ours.data,
            )
            try:
                if p.tree_size != against_size:
                    raise ProofError("proof is not against the checkpoint we cosigned")
                merkle.verify_inclusion(
                    merkle.leaf_hash(theirs.encode()),
                    p.leaf_index,
                    p.tree_size,
                    [bytes.fromhex(h) for h in p.hashes],
                    against_root,
                )
                good.append((int(row.sequence), p.tree_size))
            except HotlineError as exc:
                bad.append((int(row.sequence), exc.message))
        return good, bad

    # --- as a witness -----------------------------------------------------------------

    async def witness(
        self, peer: str, request: str, envelope: bytes | None = None
    ) -> dict[str, Any]:
        """Check and cosign ``peer``'s checkpoint; the reply fields for the link test.

        ``envelope`` is the peer's signed link test that carried the request: kept with
        the evidence of a fork, it makes the contradiction attributable to the peer."""
        try:
            req = await asyncio.to_thread(wit.parse_add_checkpoint, request.encode("utf-8"))
        except HotlineError as exc:
            return {"witness_error": exc.code}
        log_key = self.peer_log_key(peer)

        def unit(tx: WriteTx) -> dict[str, Any]:
            held = witnessdb.witness_state(tx.conn, peer)
            state = None if held is None else wit.WitnessState(*held)
            now = self.line.clock.now_us()
            try:
                new, cosig = wit.add_checkpoint(
                    state, req, log_key, self.cosigner, max(1, now // 1_000_000)
                )
            except wit.WitnessConflict as exc:
                return {"witness_error": exc.code, "witness_size": exc.stored_size}
            except (ForkError, ProofError) as exc:
                if isinstance(exc, ProofError) and state is None:
                    # nothing cosigned yet: a bad proof contradicts nothing we hold
                    log.warning("checkpoint from %s refused: %s", peer, exc)
                    return {"witness_error": exc.code}
                # The peer signed (in its link test envelope) a checkpoint and a proof that
                # do not extend the checkpoint we cosigned: the rule is that a failed proof,
                # like two roots for one size, is evidence of a fork.
                self._fork(tx, peer, state, req, exc, envelope)
                return {"witness_error": "fork"}
            except (SignatureError, HotlineError) as exc:
                log.warning("checkpoint from %s refused: %s", peer, exc)
                return {"witness_error": exc.code}
            witnessdb.put_witness_state(
                tx.conn, peer, new.size, new.root, new.note, now, new=held is None
            )
            self._record(
                tx,
                peer,
                {
                    "witness": "cosigned_for_peer",
                    "peer": peer,
                    "size": new.size,
                    "root": new.root.hex(),
                    "note": new.note,
                    "line": cosig.line(),
                },
            )
            return {"cosignature": cosig.line()}

        result: dict[str, Any] = await self.line.writer.submit(unit)
        return result

    def _fork(
        self,
        tx: WriteTx,
        peer: str,
        state: wit.WitnessState | None,
        req: wit.AddCheckpoint,
        exc: HotlineError,
        envelope: bytes | None = None,
    ) -> None:
        """Keep the evidence on the ledger and raise the alarm; the line is marked."""
        log.critical("evidence of a fork in %s's ledger: %s", peer, exc)
        evidence = {
            "witness": "fork_evidence",
            "peer": peer,
            "error": exc.code,
            "detail": exc.message,
            "cosigned_note": None if state is None else state.note,
            "offered_note": req.note,
            "envelope": None if envelope is None else envelope.hex(),
            "old_size": req.old_size,
            "proof": [h.hex() for h in req.proof],
        }
        self._record(tx, peer, evidence)
        raise_alarm(
            tx,
            self.line.events,
            operational.raise_alarm,
            kind="fork",
            severity="CRITICAL",
            peer=peer,
            ref=None,
            now_us=self.line.clock.now_us(),
            detail=f"{peer}'s ledger contradicts a checkpoint we cosigned ({exc.code}); the "
            "evidence (both signed checkpoints and the proof) is on our ledger",
        )

    def proofs(self, prove: list[tuple[int, int]]) -> list[InclusionProof]:
        """Inclusion proofs of our leaves, for sizes of our log that exist."""
        with self.line.reader.connect() as conn:
            size = tree.ledger_size(conn)
            wanted = [(i, n) for i, n in prove[:MAX_PROVE] if 0 <= i < n <= size]
            proofs = tree.inclusion_proofs(conn, wanted, size)
        return [
            InclusionProof(leaf_index=i, tree_size=n, hashes=[h.hex() for h in hashes])
            for (i, n), hashes in zip(wanted, proofs, strict=True)
        ]

    # --- helpers ------------------------------------------------------------------------

    def _record(self, tx: WriteTx, peer: str, doc: dict[str, Any]) -> None:
        tx.append(
            Entry(
                EntryKind.WITNESS, peer, 0, ZERO_HASH, self.line.clock.now_us(), action_bytes(doc)
            )
        )


def latest_cosigned(conn: Connection, by: str | None = None) -> dict[str, Any] | None:
    """Our newest checkpoint with every peer cosignature it has, as one signed note;
    with ``by``, the newest that ``by`` cosigned (another peer's test may have signed a
    newer one since)."""
    if by is None:
        newest = witnessdb.newest_cosigned_checkpoint(conn)
    else:
        size = witnessdb.cosigned_size(conn, by)
        note = None if size is None else witnessdb.checkpoint_note(conn, size)
        newest = None if size is None or note is None else (size, note)
    if newest is None:
        return None
    size, note = newest
    lines = witnessdb.cosignature_lines(conn, size)
    from hotline.ledger.note import add_signature_lines

    return {
        "size": size,
        "note": add_signature_lines(note, [line for _, line in lines]),
        "cosigned_by": [peer for peer, _ in lines],
    }
