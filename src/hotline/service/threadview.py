"""The read side of the console's threads tab: channels grouped by level with unread and
overdue counts, the proposals awaiting this station, and a channel's thread as cards.

Owns how a channel's messages become cards: one card per message, a message sent to
several members (one envelope each, the same ``body.group``) shown once with a line of
stages per recipient, replies placed under what they answer (depth-first, oldest first)
with their depth, and whether the officer has opened a received one. Typed messages
(reads, channel agreement) are not cards: their effect shows as stages. Who may read a
channel is service/channels.py's (``readable``); the callers filter with it.
Must not touch: writes, SQL (store/threadview.py, store/reads.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from hotline.service import channels, queries
from hotline.store import threadview as db
from hotline.wire.channels import LEVELS, ChannelSpec

#: the newest text messages of a channel a thread shows at most
THREAD_LIMIT = 200
#: deepest indentation shown (a deeper reply is drawn at this depth)
MAX_DEPTH = 6
#: the level of a channel that has messages on the record but is no longer in the book
RECORD_LEVEL = "on the record"


@dataclass(frozen=True, slots=True)
class ChannelRow:
    name: str
    level: str
    standing: bool
    members: tuple[str, ...]
    unread: int
    overdue: int
    two_person: bool
    brevity_words: int


def level_label(level: str) -> str:
    return level.replace("_", " ")


def channel_groups(
    conn: Connection,
    specs: Iterable[ChannelSpec],
    readable: set[str],
    *,
    station: str,
    officer: str,
    now_us: int,
    levels: Iterable[str],
    two_person: Iterable[str] = (),
) -> list[tuple[str, list[ChannelRow]]]:
    """The channels the officer may read, grouped by level (the known levels first, in
    their order), each with its unread and overdue counts; ``two_person`` names the
    channels that need a second officer (service/approvals.py ``requires_approval``)."""
    unread = db.unread_by_channel(conn, station, officer)
    overdue = db.overdue_by_channel(conn, now_us)
    by_level: dict[str, list[ChannelRow]] = {}
    named = set()
    tp = set(two_person)
    for spec in specs:
        named.add(spec.name)
        if spec.name not in readable:
            continue
        row = ChannelRow(
            name=spec.name,
            level=spec.level,
            standing=spec.standing,
            members=tuple(spec.members),
            unread=unread.get(spec.name, 0),
            overdue=overdue.get(spec.name, 0),
            two_person=spec.name in tp,
            brevity_words=spec.brevity_words,
        )
        by_level.setdefault(spec.level, []).append(row)
    for name in db.channels_with_messages(conn):
        if name in named:
            continue  # in the book: shown above if readable, hidden if not
        by_level.setdefault(RECORD_LEVEL, []).append(
            ChannelRow(name, RECORD_LEVEL, False, (), unread.get(name, 0),
                       overdue.get(name, 0), False, 0)
        )  # fmt: skip
    order = [*LEVELS, *[lv for lv in levels if lv not in LEVELS]]
    order += sorted(lv for lv in by_level if lv not in order and lv != RECORD_LEVEL)
    order.append(RECORD_LEVEL)
    return [(lv, sorted(by_level[lv], key=lambda r: r.name)) for lv in order if lv in by_level]


def awaiting(conn: Connection, station: str) -> list[dict[str, Any]]:
    """Channel proposals naming this station as a member that it has not answered."""
    return [
        {
            "name": row.name,
            "proposer": row.proposer,
            "version": int(row.version),
            "level": spec.level,
            "members": list(spec.members),
            "two_person": spec.two_person,
            "brevity_words": spec.brevity_words,
        }
        for row, spec in channels.awaiting(conn, station)
    ]


def has_messages(conn: Connection, channel: str) -> bool:
    return channel in db.channels_with_messages(conn)


@dataclass
class Card:
    """One message (or one group send) of a thread."""

    key: str  #: the group id, or the message id
    message: dict[str, Any]  #: the first envelope's message (queries._message shape)
    recipients: list[dict[str, Any]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    depth: int = 0
    parent: str | None = None  #: the message id it answers
    parent_missing: bool = False  #: it answers a message not in this page of the thread
    unread: bool = False


def _read_by(recipient: dict[str, Any], station: str, officer: str) -> bool:
    return any(
        s["stage"] == "read" and s["by"] == officer and s["ref"] == station
        for s in recipient["stages"]
    )


def thread_cards(
    conn: Connection,
    now_us: int,
    channel: str,
    *,
    station: str,
    officer: str,
    limit: int = THREAD_LIMIT,
) -> list[Card]:
    """A channel's text messages as cards, oldest thread first, each reply under what it
    answers (with its depth)."""
    rows = queries.list_with_stages(conn, now_us, channel=channel, limit=limit, msg_type="text")
    cards: dict[str, Card] = {}
    owner: dict[str, str] = {}  # message id -> card key
    for m in reversed(rows):  # oldest first
        if m["type"] != "text":
            continue
        body = m["body"] if isinstance(m["body"], dict) else {}
        group = body.get("group")
        key = str(group) if group and m["direction"] == "out" else m["message_id"]
        card = cards.get(key)
        if card is None:
            card = cards[key] = Card(key=key, message=m, parent=body.get("in_reply_to"))
        card.ids.append(m["message_id"])
        for r in m["recipients"]:
            card.recipients.append({**r, "message_id": m["message_id"]})
            if m["direction"] == "in" and not _read_by(r, station, officer):
                card.unread = True
        owner[m["message_id"]] = key
    children: dict[str | None, list[Card]] = {}
    for card in cards.values():
        parent_key = owner.get(card.parent) if card.parent else None
        if card.parent and parent_key is None:
            card.parent_missing = True
        if parent_key == card.key:
            parent_key = None
        children.setdefault(parent_key, []).append(card)
    ordered: list[Card] = []
    seen: set[str] = set()

    def walk(parent: str | None, depth: int) -> None:
        for card in children.get(parent, []):
            if card.key in seen:
                continue
            seen.add(card.key)
            card.depth = min(depth, MAX_DEPTH)
            ordered.append(card)
            walk(card.key, depth + 1)

    walk(None, 0)
    for card in cards.values():  # a cycle of replies (never expected): shown at the top
        if card.key not in seen:
            seen.add(card.key)
            ordered.append(card)
    return ordered
