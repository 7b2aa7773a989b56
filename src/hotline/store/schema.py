"""Tables of a station's store.

``entries`` is the append-only ledger (a trigger refuses UPDATE and DELETE); everything
else is either a projection of entries (rebuildable: ``messages``, ``outbox``,
``inbound``, ``peers``) or operational state that the ledger does not need to prove
(``link_status``, ``alarms``, ``ledger_nodes`` which is derivable from the leaf hashes).
Must not touch: business rules; this module only declares.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

metadata = MetaData()

entries = Table(
    "entries",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", SmallInteger, nullable=False),
    Column("peer", String(32), nullable=False),
    Column("peer_seq", BigInteger, nullable=False),
    Column("envelope_hash", LargeBinary(32), nullable=False),
    Column("recorded_at_us", BigInteger, nullable=False),
    Column("leaf", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Index("ix_entries_hash", "envelope_hash"),
)

ledger_nodes = Table(
    "ledger_nodes",
    metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

peers = Table(
    "peers",
    metadata,
    Column("station_id", String(32), primary_key=True),
    Column("card", Text, nullable=False),
    Column("added_at_us", BigInteger, nullable=False),
    Column("next_out_seq", BigInteger, nullable=False),
    #: every inbound sequence number up to this one has been received
    Column("in_contiguous", BigInteger, nullable=False),
    #: set by a ``peer_remove`` action: the peer's envelopes are refused, its history stays
    Column("removed_at_us", BigInteger, nullable=True),
)

messages = Table(
    "messages",
    metadata,
    Column("message_id", String(36), primary_key=True),
    Column("direction", String(3), nullable=False),  # "out" | "in"
    Column("peer", String(32), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("precedence", SmallInteger, nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("kind", SmallInteger, nullable=False),
    Column("type", String(32), nullable=False),
    Column("body", Text, nullable=False),  # the checked payload JSON
    Column("operator", String(100), nullable=True),
    Column("sent_at_us", BigInteger, nullable=False),
    Column("stored_at_us", BigInteger, nullable=False),
    Column("delivered_at_us", BigInteger, nullable=True),
    Column("ack_required", Boolean, nullable=False),
    Column("ack_deadline_us", BigInteger, nullable=True),
    #: OUR time: when we recorded the acknowledgement (ours, or the peer's ACK envelope)
    Column("acknowledged_at_us", BigInteger, nullable=True),
    Column("acknowledged_by", String(100), nullable=True),
    Column("ack_note", Text, nullable=True),
    Column("entry_idx", BigInteger, nullable=False),
    #: the peer's CLAIM of when it acknowledged (its ACK payload; migration 0003)
    Column("ack_claimed_at_us", BigInteger, nullable=True),
    Index("ix_messages_channel", "channel", "stored_at_us"),
    Index("ix_messages_peer", "peer", "direction", "sequence"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("entry_idx", BigInteger, primary_key=True, autoincrement=False),
    Column("peer", String(32), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("precedence", SmallInteger, nullable=False),
    Column("envelope_hash", LargeBinary(32), nullable=False),
    Index("ix_outbox_order", "peer", "precedence", "sequence"),
    Index("ix_outbox_hash", "envelope_hash", unique=True),
)

inbound = Table(
    "inbound",
    metadata,
    Column("peer", String(32), primary_key=True),
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("envelope_hash", LargeBinary(32), nullable=False),
    Column("entry_idx", BigInteger, nullable=False),
    Column("receipt", LargeBinary, nullable=False),
    #: the envelope's message id (migration 0003; None on rows stored before it)
    Column("message_id", String(36), nullable=True),
    Index("ix_inbound_message", "peer", "message_id", unique=True),
)

link_status = Table(
    "link_status",
    metadata,
    Column("peer", String(32), primary_key=True),
    Column("state", String(10), nullable=False),
    Column("rtt_ms", Integer, nullable=True),
    Column("skew_ms", Integer, nullable=True),
    Column("last_test_at_us", BigInteger, nullable=True),
    Column("last_ok_at_us", BigInteger, nullable=True),
    Column("failures", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    #: envelopes the peer refused, and the last refusal's code (migration 0004)
    Column("refused", Integer, nullable=False, server_default="0"),
    Column("last_refused", String(64), nullable=True),
)

alarms = Table(
    "alarms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("peer", String(32), nullable=True),
    Column("ref", String(64), nullable=True),
    Column("detail", Text, nullable=False),
    Column("raised_at_us", BigInteger, nullable=False),
    Column("cleared_at_us", BigInteger, nullable=True),
    Index("ix_alarms_open", "kind", "peer", "cleared_at_us"),
)

# --- the ledger's witnessing (migration 0002) --------------------------------------------

#: checkpoints of our own ledger that we signed (C2SP signed notes, verbatim)
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("issued_at_us", BigInteger, nullable=False),
)

#: a peer's cosignature of one of our checkpoints (tlog-cosignature/v1 line)
cosignatures = Table(
    "cosignatures",
    metadata,
    Column("peer", String(32), primary_key=True),
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("line", Text, nullable=False),
    Column("received_at_us", BigInteger, nullable=False),
)

#: per peer whose log we witness: the latest checkpoint of theirs we cosigned
witness_state = Table(
    "witness_state",
    metadata,
    Column("peer", String(32), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
)

#: projection of RECEIPT_IN entries: where the peer says it logged our envelope
receipts = Table(
    "receipts",
    metadata,
    Column("peer", String(32), primary_key=True),
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("envelope_hash", LargeBinary(32), nullable=False),
    Column("leaf_index", BigInteger, nullable=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("stored_at_us", BigInteger, nullable=False),
    Index("ix_receipts_leaf", "peer", "leaf_index"),
)

#: receipts proved included in a checkpoint of the peer's log that we cosigned
receipt_proofs = Table(
    "receipt_proofs",
    metadata,
    Column("peer", String(32), primary_key=True),
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("proved_at_us", BigInteger, nullable=False),
)

#: transmission attempts of queued envelopes (operational: when first sent, how often)
deliveries = Table(
    "deliveries",
    metadata,
    Column("entry_idx", BigInteger, primary_key=True, autoincrement=False),
    Column("attempts", Integer, nullable=False),
    #: when it first left on the wire (None: every attempt failed to connect)
    Column("first_sent_us", BigInteger, nullable=True),
    Column("last_attempt_us", BigInteger, nullable=False),
    Column("last_error", String(64), nullable=True),
    #: the peer refused it with this code: parked, not sent again until the operator asks
    #: or the peer's advertised limits change (migration 0004)
    Column("refused", String(64), nullable=True),
    Column("refused_at_us", BigInteger, nullable=True),
)

#: sequence numbers declared void (migration 0007): direction "out", numbers we declared
#: void after the peer refused their envelope for good (``void`` action, ``code`` is the
#: peer's refusal); direction "in", numbers the peer declared void in a signed link test
#: (``peer_void`` action). A voided inbound number counts as held for the contiguous mark;
#: an envelope that arrives at it later is refused ``void``.
voids = Table(
    "voids",
    metadata,
    Column("peer", String(32), primary_key=True),
    Column("direction", String(3), primary_key=True),
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    #: the ledger entry that recorded it (the ``void`` or ``peer_void`` action)
    Column("entry_idx", BigInteger, nullable=False),
    Column("code", String(64), nullable=True),
)

#: projections wiped and rebuilt from ``entries`` by ``projections.rebuild``
PROJECTIONS = (messages, outbox, inbound, receipts, peers, voids)

# --- the operator API's idempotency keys (migration 0006) ---------------------------------

#: the first result of a send made with an Idempotency-Key (operational: not in the ledger)
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(255), primary_key=True),
    #: SHA-256 of the request as the API read it (a key reused with another body is refused)
    Column("request_hash", LargeBinary(32), nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("response", Text, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("expires_at_us", BigInteger, nullable=False),
    Index("ix_idempotency_expiry", "expires_at_us"),
)

# --- channels at several levels (issue 8, migration 0009) ----------------------------------

#: channel proposals, as projected from the channel_propose messages on the ledger:
#: ``state`` proposed, agreed, declined, superseded (a later version or proposal for the
#: same name), refused (``reason``: the code it broke)
channel_proposals = Table(
    "channel_proposals",
    metadata,
    Column("proposal_id", String(64), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("proposer", String(64), nullable=False),
    Column("spec", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", String(64), nullable=True),
    Column("proposed_at_us", BigInteger, nullable=False),
    Column("decided_at_us", BigInteger, nullable=True),
    Column("entry_idx", BigInteger, nullable=False),
    Index("ix_channel_proposals_name", "name"),
)

#: each member's answer to a proposal (kept even when it arrives before the proposal)
channel_votes = Table(
    "channel_votes",
    metadata,
    Column("proposal_id", String(64), primary_key=True),
    Column("station", String(64), primary_key=True),
    Column("vote", String(8), nullable=False),
    Column("reason", String(500), nullable=True),
    Column("at_us", BigInteger, nullable=False),
    Column("entry_idx", BigInteger, nullable=False),
)

#: the envelopes of one message on a several-member channel: one row per recipient
channel_groups = Table(
    "channel_groups",
    metadata,
    Column("message_id", String(36), primary_key=True),
    Column("group_id", String(36), nullable=False),
    Column("entry_idx", BigInteger, nullable=False),
    Index("ix_channel_groups_group", "group_id"),
)
