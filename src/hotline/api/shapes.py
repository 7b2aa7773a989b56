"""The JSON shapes the operator API answers with, as response models.

Owns the documented form of every 2xx body (they become /openapi.json's schemas). Each
model names the fields operators rely on; every model allows further fields, so a field
added by the service shows up in answers before it is documented here (and a removed
optional field is simply absent). Must not touch: how the values are computed (the
service and its read side do that).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hotline.api.suspension import Dissemination

PrecedenceName = Literal["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"]


class Shape(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- messages, acknowledgements ------------------------------------------------------------


class SendResponse(Shape):
    """A message stored, sealed and queued for its peer."""

    message_id: str
    peer: str
    sequence: int
    precedence: PrecedenceName
    state: str = Field(description="`queued` when it is answered.")
    group: str | None = Field(
        default=None,
        description="On a channel with several members: the id shared by the envelopes "
        "sent to each (GET /api/v1/channels/groups/{group_id} shows each one's state).",
    )
    recipients: list[SentTo] = Field(
        default=[], description="Each recipient's envelope (the first is also given above)."
    )


class SentTo(Shape):
    """One recipient's envelope of a message."""

    peer: str
    message_id: str
    sequence: int


class SendingOfficer(Shape):
    """The officer who sent a message, as the sending station put it in the sealed
    payload: for a received message, the peer's statement (its officer and role)."""

    username: str
    display_name: str
    role: str


class Message(Shape):
    """One message with its delivery state and times (microseconds since the epoch)."""

    message_id: str
    direction: Literal["in", "out"]
    peer: str
    channel: str
    precedence: PrecedenceName
    sequence: int
    type: str
    body: dict[str, Any] = Field(description="The message payload: text, data, in_reply_to.")
    state: str = Field(
        description="out: queued → sent → delivered → acknowledged, or refused; "
        "in: received → acknowledged"
    )
    operator: str | None = None
    officer: SendingOfficer | None = Field(
        default=None, description="Who sent it: username, display name and role."
    )
    queued_at_us: int | None = None
    sent_at_us: int | None = None
    first_sent_us: int | None = None
    path: str | None = Field(
        default=None,
        description="The path of the last attempt; once delivered, the path that carried it.",
    )
    attempts: int | None = None
    last_error: str | None = None
    refused: str | None = Field(
        default=None, description="out, state refused: the code the peer refused it with."
    )
    void: bool | None = Field(
        default=None,
        description="out: its sequence number was declared void after the peer refused it "
        "for good; it is never sent again (send a corrected message).",
    )
    delivered_at_us: int | None = None
    ack_required: bool | None = None
    ack_deadline_us: int | None = None
    acknowledged_at_us: int | None = None
    acknowledged_by: str | None = None
    ack_note: str | None = None
    ack_overdue: bool | None = None
    entry_idx: int | None = None
    disseminations: list[Dissemination] | None = Field(
        default=None,
        description="To whom and when it was passed on: our records (a message we "
        "received) or the peer's (one we sent), oldest first (api/suspension.py).",
    )


class Channel(Shape):
    channel: str
    messages: int
    last_at_us: int | None = None


# --- the station, its peers, the line ------------------------------------------------------


class _Health(Shape):
    state: str
    failures: int | None = None
    rtt_ms: float | None = None
    skew_ms: float | None = None
    last_test_at_us: int | None = None
    last_ok_at_us: int | None = None
    last_error: str | None = None


class PathStatus(_Health):
    """One path of a line (https, nats): its own health from its own link tests."""

    path: str


class LinkStatus(_Health):
    """A line's health: UNTESTED, UP, DEGRADED or DOWN, with the last measurements: the
    best of its paths' (``paths``, most preferred first; DOWN only when every path is)."""

    peer: str
    paths: list[PathStatus] = []


class Counts(Shape):
    entries: int
    sent: int
    received: int
    queued: int


class Status(Shape):
    station: str
    display_name: str
    fingerprint: str
    version: str
    counts: Counts
    links: list[LinkStatus]
    alarms: int = Field(description="Open alarms (GET /api/v1/alarms lists them).")


class Card(Shape):
    card: str = Field(description="This station's signed card, to give to a peer.")
    fingerprint: str


class PeerInfo(Shape):
    station_id: str
    display_name: str
    fingerprint: str
    endpoints: list[str]


class PeerAdded(Shape):
    station_id: str
    fingerprint: str


class PathTestResult(Shape):
    """What one link test on one path measured (it is recorded in the ledger too)."""

    ok: bool
    state: str
    peer: str | None = None
    path: str | None = Field(default=None, description="The path the test went on.")
    rtt_ms: float | None = None
    skew_ms: float | None = None
    error: str | None = Field(default=None, description="The failure's code when not ok.")
    checkpoint_size: int | None = None
    cosigned: bool | None = None
    witness_error: str | None = None
    receipts_proved: int | None = None
    receipts_failed: int | None = None


class LinkTestResult(PathTestResult):
    """What a link test measured; on a line with several paths, one test per path."""

    paths: list[PathTestResult] = Field(
        default=[],
        description="One result per path when the line has several (the top "
        "level is the first that answered, in order of preference).",
    )


class Alarm(Shape):
    """An open alarm: stored (link down, refusals, conflicts) or a deadline passed."""

    kind: str
    severity: str
    detail: str
    raised_at_us: int | None = None
    peer: str | None = None
    ref: str | None = None
    id: int | None = None
    cleared_at_us: int | None = None
    source: str | None = Field(default=None, description="`station` or `deadline`.")
    acknowledged_at_us: int | None = Field(
        default=None, description="When an officer acknowledged it (our time)."
    )
    acknowledged_by: str | None = None
    ack_note: str | None = None


# --- the record ----------------------------------------------------------------------------


class CosignedCheckpoint(Shape):
    origin: str
    ledger_size: int
    size: int
    note: str = Field(description="The C2SP signed note with every cosignature line.")
    cosigned_by: list[str]


class InclusionProof(Shape):
    message_id: str
    leaf_index: int
    tree_size: int
    leaf_hash: str
    root: str
    proof: list[str]


class ConsistencyProof(Shape):
    old: int
    new: int
    old_root: str
    new_root: str
    proof: list[str]


# --- deconfliction -------------------------------------------------------------------------

NOTICE = "Notification is information, never permission."


class RecordVersion(Shape):
    version: int
    notice_id: str
    action: str
    notified_by: str
    at: str
    acknowledged_by: dict[str, str] = Field(description="station id → when it acknowledged.")


class Record(Shape):
    """A site or an activity with every version notified."""

    id: str
    kind: str
    owner: str
    live: bool
    current: dict[str, Any] | None
    versions: list[RecordVersion]
    reconfirm_by: str | None = None
    stale: bool | None = None


class SiteList(Shape):
    sites: list[Record]
    notice: str = Field(description=NOTICE)


class ActivityList(Shape):
    activities: list[Record]
    notice: str = Field(description=NOTICE)


class Conflict(Shape):
    site_id: str
    activity_id: str
    site_station: str
    activity_station: str
    distance_m: float
    protected_distance_m: float
    rule: str | None = None
    window_start: str | None = None
    window_end: str | None = None
    opened_at: str | None = None
    notice_id: str | None = None
    draft_concern: dict[str, Any]


class ConflictList(Shape):
    conflicts: list[Conflict]
    notice: str = Field(description=NOTICE)


class ConcernStep(Shape):
    step: str
    by: str
    at: str
    text: str | None = None


class Concern(Shape):
    concern_id: str
    raised_by: str
    state: str
    raised: dict[str, Any]
    steps: list[ConcernStep]


class ConcernList(Shape):
    concerns: list[Concern]


class SentNotice(Shape):
    message_id: str
    peer: str
    sequence: int


class SentNotices(Shape):
    sent: list[SentNotice]
    notice: str = Field(description=NOTICE)


class Imported(Shape):
    imported: list[str] = Field(description="Site ids notified.")
    notice: str = Field(description=NOTICE)


class PreviewSite(Shape):
    site_id: str
    name: str
    category: str


class ImportPreview(Shape):
    """What an import of the file would notify; nothing was sent or stored."""

    count: int = Field(description="Sites the import would notify.")
    categories: dict[str, int] = Field(description="How many of each category.")
    sites: list[PreviewSite] = Field(description="The first sites (up to 50), in file order.")
    recipients: list[str] = Field(description="The peers the import would notify.")
    notice: str = Field(description=NOTICE)


class RegistryExport(Shape):
    """A GeoJSON FeatureCollection (or ED-318 zones, which are one too)."""

    type: str
    features: list[dict[str, Any]]


class RefusedNotice(Shape):
    message_id: str
    code: str
    reason: str
    sender: str | None = Field(default=None, alias="from")
