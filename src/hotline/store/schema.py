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
    #: the role alarmed (an escalation step's; None: whoever is on watch), migration 0009
    Column("role", String(32), nullable=True),
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
    #: the path of the last attempt; once delivered, the path that carried it (0016)
    Column("path", String(16), nullable=True),
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

# --- the two-person rule: approvals (migration 0008) ---------------------------------------

#: approval requests of the two-person rule, projected from the ``approval_*`` operator
#: actions (service/approvals.py): a message on a channel that requires a second
#: officer's approval waits here until it is approved (and sent), refused, withdrawn or
#: past its deadline. ``request`` is the request as recorded (JSON: channel, peers,
#: precedence, payload, requesting officer); ``message_ids`` the messages its approval sent.
approvals = Table(
    "approvals",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("channel", String(64), nullable=False),
    Column("requester", String(100), nullable=False),
    #: pending, approved, refused, withdrawn, expired
    Column("state", String(16), nullable=False),
    Column("precedence", SmallInteger, nullable=False),
    Column("requested_at_us", BigInteger, nullable=False),
    Column("deadline_us", BigInteger, nullable=False),
    Column("decided_by", String(100), nullable=True),
    Column("decided_at_us", BigInteger, nullable=True),
    Column("reason", Text, nullable=True),
    Column("request", Text, nullable=False),
    Column("message_ids", Text, nullable=True),
    #: the ledger entry of the ``approval_request`` action
    Column("entry_idx", BigInteger, nullable=False),
    Index("ix_approvals_state_deadline", "state", "deadline_us"),
)
# --- escalation, duty rota and handover (issue 8, "watch"; migration 0009) ----------------

#: projection of ``rota_set`` / ``rota_clear`` actions: who is on watch when, per role
rota = Table(
    "rota",
    metadata,
    Column("entry_id", String(64), primary_key=True),
    #: the officer on watch (a username; the officers' record owns the accounts)
    Column("username", String(64), nullable=False),
    Column("role", String(32), nullable=False),
    #: our times, start inclusive, end exclusive
    Column("from_us", BigInteger, nullable=False),
    Column("to_us", BigInteger, nullable=False),
    Column("set_by", String(100), nullable=False),
    Column("set_at_us", BigInteger, nullable=False),
    Column("entry_idx", BigInteger, nullable=False),
    Index("ix_rota_role", "role", "from_us"),
)

#: projection of escalation steps: ours (``escalation`` actions, origin "local") and the
#: peer's (its ``escalation`` typed messages, origin "peer"; an ignored one keeps its code)
escalations = Table(
    "escalations",
    metadata,
    #: the ledger entry that recorded it (the action, or the peer's envelope)
    Column("entry_idx", BigInteger, primary_key=True, autoincrement=False),
    Column("message_id", String(36), nullable=False),
    Column("origin", String(8), nullable=False),  # "local" | "peer"
    Column("peer", String(32), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("step", SmallInteger, nullable=False),
    Column("role", String(32), nullable=False),
    Column("both_sides", Boolean, nullable=False),
    Column("status", String(10), nullable=False),  # "raised" | "ignored"
    Column("code", String(32), nullable=True),
    #: our recorded time
    Column("at_us", BigInteger, nullable=False),
    #: the peer's CLAIM: its envelope's sent time (origin "peer" only)
    Column("claimed_at_us", BigInteger, nullable=True),
    Index("ix_escalations_message", "message_id", "origin", "step"),
)

#: projection of ``handover`` / ``handover_ack`` actions
handovers = Table(
    "handovers",
    metadata,
    Column("handover_id", String(36), primary_key=True),
    Column("written_by", String(100), nullable=False),
    Column("written_at_us", BigInteger, nullable=False),
    Column("note", Text, nullable=False),
    #: the station's summary at the moment of writing (JSON, as recorded in the action)
    Column("summary", Text, nullable=False),
    Column("entry_idx", BigInteger, nullable=False),
    Column("acknowledged_by", String(100), nullable=True),
    Column("acknowledged_at_us", BigInteger, nullable=True),
    Column("ack_note", Text, nullable=True),
    Index("ix_handovers_written", "written_at_us"),
)

#: the watch projection's tables (wiped and rebuilt from the ledger by its extension)
WATCH_TABLES = (rota, escalations, handovers)
# --- message stages and acknowledgements (issue 8, migration 0010) -------------------------

#: who read a message and when (projection of ``read`` actions: our officers opening an
#: inbound message; and of the peer's ``read`` typed messages naming one of ours). The
#: first read per officer counts; ``station`` is who read it (ours or the peer's id).
message_reads = Table(
    "message_reads",
    metadata,
    Column("message_id", String(36), primary_key=True),
    Column("station", String(32), primary_key=True),
    Column("officer", String(100), primary_key=True),
    #: OUR time: when we recorded the read (our action, or the peer's message arriving)
    Column("read_at_us", BigInteger, nullable=False),
    #: the peer's CLAIM of when its officer read it (its message's sent time); None: ours
    Column("claimed_at_us", BigInteger, nullable=True),
    Column("entry_idx", BigInteger, nullable=False),
)

#: the first reply (``in_reply_to``) to a message, sent or received
message_answers = Table(
    "message_answers",
    metadata,
    Column("message_id", String(36), primary_key=True),
    Column("reply_id", String(36), nullable=False),
    #: "out": we answered it; "in": the peer answered it
    Column("direction", String(3), nullable=False),
    Column("answered_at_us", BigInteger, nullable=False),
    Column("entry_idx", BigInteger, nullable=False),
)

#: an alarm's acknowledgement (an ``alarm_ack`` action on the record: by whom, when, note)
alarms.append_column(Column("acknowledged_at_us", BigInteger, nullable=True))
alarms.append_column(Column("acknowledged_by", String(100), nullable=True))
alarms.append_column(Column("ack_note", Text, nullable=True))
# --- search over messages (migration 0011) ------------------------------------------------

#: the searchable text of each message (its text and the strings of its typed data), kept
#: in step with ``messages`` by database triggers (migration 0011): a message row stored,
#: live or by a rebuild, adds its row here; a wiped one removes it. Over ``doc`` the
#: full-text index: on SQLite the FTS5 table ``message_fts`` (external content, rowid =
#: ``doc_id``, kept in step by triggers), on PostgreSQL a GIN index on
#: ``to_tsvector('simple', doc)``. ``in_reply_to`` answers "answered".
message_search = Table(
    "message_search",
    metadata,
    Column("doc_id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(36), nullable=False, unique=True),
    Column("in_reply_to", String(36), nullable=True),
    Column("doc", Text, nullable=False),
    Index("ix_message_search_reply", "in_reply_to"),
)

#: search pages newest first by ledger index (migration 0011)
Index("ix_messages_entry", messages.c.entry_idx)

#: what migration 0011 creates that no Table above declares (SQLAlchemy has no type for
#: them): SQLite's FTS5 table ``message_fts`` and its shadow tables, and PostgreSQL's GIN
#: expression index on ``message_search.doc``. Schema comparisons leave these names out.
UNDECLARED = frozenset(
    {
        "message_fts",
        "message_fts_config",
        "message_fts_data",
        "message_fts_docsize",
        "message_fts_idx",
        "ix_message_search_fts",
    }
)


# --- officers and roles (issue 8, migration 0012) ------------------------------------------

#: the officers' record: accounts as the ledger's officer_* actions say (no secrets), a
#: projection rebuilt from the ledger (service/officers.py OfficerRecord)
officer_record = Table(
    "officer_record",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("display_name", String(100), nullable=False),
    #: role names, comma-separated, sorted
    Column("roles", String(200), nullable=False),
    #: language tags, comma-separated
    Column("languages", String(200), nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    #: the administrator who made the last change
    Column("updated_by", String(64), nullable=False),
    Column("entry_idx", BigInteger, nullable=False),
)

#: officers' secrets (local state, never on the ledger): the Argon2id password hash, the
#: TOTP secret, and the per-account backoff after wrong passwords
officers = Table(
    "officers",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", String(255), nullable=False),
    Column("totp_secret", String(64), nullable=True),
    #: a secret enrolled but not yet confirmed by a code
    Column("totp_pending", String(64), nullable=True),
    Column("failures", Integer, nullable=False),
    Column("locked_until_us", BigInteger, nullable=False),
)

#: officers' API tokens: only the SHA-256 of the token is kept (local state)
officer_tokens = Table(
    "officer_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("label", String(100), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("expires_at_us", BigInteger, nullable=False),
    Column("revoked_at_us", BigInteger, nullable=True),
    Index("ix_officer_tokens_username", "username"),
)

#: browser sessions: the SHA-256 of the session id and of its CSRF token (local state)
officer_sessions = Table(
    "officer_sessions",
    metadata,
    Column("session_hash", LargeBinary(32), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("csrf_hash", LargeBinary(32), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("expires_at_us", BigInteger, nullable=False),
    Index("ix_officer_sessions_username", "username"),
)


# --- suspension and dissemination (issue 8, migration 0013) -------------------------------

#: every declaration and resumption of a suspension, ours (the ``suspend`` action) and a
#: peer's (its ``suspension`` message), with what it did (``outcome``: ``applied``,
#: ``no_effect``, ``not_theirs`` for a peer's claim to resume our suspension, ``too_many``).
#: The current state is the applied rows replayed in order (service/suspension.py).
suspensions = Table(
    "suspensions",
    metadata,
    Column("entry_idx", BigInteger, primary_key=True, autoincrement=False),
    Column("peer", String(64), primary_key=True),
    #: "" for the whole line with the peer
    Column("channel", String(64), nullable=False),
    #: the station that declared it (this one or the peer)
    Column("declared_by", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    #: our officer (our declarations); the peer's are in its message
    Column("officer", String(100), nullable=True),
    #: our recorded time
    Column("at_us", BigInteger, nullable=False),
    #: the peer's message: its id and its claimed sent time
    Column("message_id", String(36), nullable=True),
    Column("claimed_at_us", BigInteger, nullable=True),
    Column("outcome", String(16), nullable=False),
    Index("ix_suspensions_peer", "peer", "channel"),
)

#: dissemination records: direction "out", we passed a received message on (the
#: ``disseminate`` action); "in", the peer reports passing on one of ours (its
#: ``dissemination`` message). ``passed_at_us`` is the time claimed (by our officer, or by
#: the peer); ``recorded_at_us`` ours. ``outcome`` is ``recorded`` or why a peer's record
#: was kept only as a claim (``unknown_message``, ``bad_time``).
disseminations = Table(
    "disseminations",
    metadata,
    Column("entry_idx", BigInteger, primary_key=True, autoincrement=False),
    Column("message_id", String(36), nullable=False),
    Column("direction", String(3), nullable=False),
    Column("peer", String(64), nullable=False),
    Column("to_whom", String(200), nullable=False),
    Column("passed_at_us", BigInteger, nullable=False),
    Column("recorded_at_us", BigInteger, nullable=False),
    Column("officer", String(100), nullable=False),
    Column("note", Text, nullable=True),
    #: the peer's ``dissemination`` message that carried it (direction "in")
    Column("record_id", String(36), nullable=True),
    Column("outcome", String(16), nullable=False),
    Index("ix_disseminations_message", "message_id"),
)

#: conflict notices awaiting dissemination (operational, like alarms: not in the ledger;
#: rewritten by the dissemination watch each round from the registry's open conflicts)
dissemination_due = Table(
    "dissemination_due",
    metadata,
    Column("message_id", String(36), primary_key=True),
    Column("peer", String(64), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("precedence", SmallInteger, nullable=False),
    Column("notice_id", String(128), nullable=False),
    Column("due_at_us", BigInteger, nullable=False),
    Column("summary", Text, nullable=False),
)


# --- channels at several levels (issue 8, migration 0014) ----------------------------------

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

#: the last link tests of each peer (a ring: ``link_history_size`` rows per peer, the
#: oldest pruned in the writer unit that adds one), migration 0015
link_history = Table(
    "link_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("peer", String(32), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("state", String(10), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("rtt_ms", Integer, nullable=True),
    Column("skew_ms", Integer, nullable=True),
    Column("error", String(64), nullable=True),
    #: the path the test went on (0016; None: before paths, https)
    Column("path", String(16), nullable=True),
    Index("ix_link_history_peer", "peer", "id"),
)

#: the health of each path to each peer (migration 0016); ``link_status`` holds the line's
#: health, the best of its paths
path_status = Table(
    "path_status",
    metadata,
    Column("peer", String(32), primary_key=True),
    Column("path", String(16), primary_key=True),
    Column("state", String(10), nullable=False),
    Column("rtt_ms", Integer, nullable=True),
    Column("skew_ms", Integer, nullable=True),
    Column("last_test_at_us", BigInteger, nullable=True),
    Column("last_ok_at_us", BigInteger, nullable=True),
    Column("failures", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
)

#: bundle files carried by hand (migration 0018): one row per bundle exported ("out") or
#: imported ("in"), keyed by the peer and the bundle's id. Operational, written in the
#: writer unit that appends the ``bundle_export``/``bundle_import`` action (which names
#: the same facts on the ledger). An "out" row's ``receipts_through`` is the highest
#: inbound entry whose receipt it carried; ``answered_at_us`` is set when the peer's
#: answering bundle (``answers``) was imported: receipts up to there are no longer owed.
bundles = Table(
    "bundles",
    metadata,
    Column("peer", String(32), primary_key=True),
    Column("direction", String(3), primary_key=True),
    Column("bundle_id", String(32), primary_key=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("recorded_at_us", BigInteger, nullable=False),
    Column("envelopes", Integer, nullable=False),
    Column("receipts", Integer, nullable=False),
    Column("receipts_through", BigInteger, nullable=False),
    Column("answers", String(32), nullable=True),
    Column("answered_at_us", BigInteger, nullable=True),
    Column("digest", LargeBinary(32), nullable=False),
    Column("entry_idx", BigInteger, nullable=False),
)

#: the station's active process (active/standby on PostgreSQL): one row (id 1); ``epoch``
#: grows by one at each promotion and every writer commit checks it (store/leader.py),
#: migration 0017
leader = Table(
    "leader",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("epoch", BigInteger, nullable=False),
    Column("process_name", String(200), nullable=False),
    Column("api_url", String(300), nullable=False),
    Column("peer_url", String(300), nullable=False),
    Column("promoted_at_us", BigInteger, nullable=False),
)

#: the deconfliction registry as of ledger entry ``valid_to_idx`` (migration 0019): one
#: head row (id 1) and its ``parts`` (compressed bodies, in order). Written by the writer
#: (store/registry_snapshot.py); a start loads it and replays only later entries. Not
#: evidence: a snapshot that does not match (format, fingerprint, digest, leaf hash) is
#: ignored and the registry is rebuilt from the ledger's messages.
registry_snapshot = Table(
    "registry_snapshot",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("format", Integer, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("valid_to_idx", BigInteger, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("parts", Integer, nullable=False),
    Column("digest", LargeBinary(32), nullable=False),
    Column("written_at_us", BigInteger, nullable=False),
)
registry_snapshot_parts = Table(
    "registry_snapshot_parts",
    metadata,
    Column("part", Integer, primary_key=True, autoincrement=False),
    Column("body", LargeBinary, nullable=False),
)
