"""Search over messages: the operator's query syntax, the filters, the paging cursor.

Owns turning what an operator typed into checked values before any SQL sees it:

- the query: words (every one must match), ``"quoted phrases"`` and a prefix with ``*``
  (``conv*``). Words are split into tokens of letters, digits and combining marks only,
  so no character of the user's syntax reaches FTS5's MATCH or PostgreSQL's tsquery
  parser (store/search.py quotes the tokens again); a word holding punctuation
  (``hello-world``) is searched as the phrase of its parts. An unclosed quote, a query
  with no word, too many terms or a too-long word is ``bad_query``;
- the filters (channel, peer, precedence, direction, state, a period of our stored time)
  and the keyset cursor (``bad_cursor``), and limit ≤ ``MAX_LIMIT``;
- the shape of a hit (plain dicts for the API): our times, the peer's claims beside them,
  and at most ``EXCERPT_CHARS`` of the text.

The search itself runs in a worker thread on a reader connection. Must not touch: SQL
(store/search.py), writes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, get_args

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hotline.errors import InputError
from hotline.service.queries import message_state
from hotline.service.roles import Action, Principal, require
from hotline.store import search as store
from hotline.store.search import Filters, State, Term
from hotline.wire.envelope import Precedence

MAX_QUERY_CHARS = 500
MAX_TERMS = 16
MAX_TOKEN_CHARS = 100
MAX_LIMIT = 200
EXCERPT_CHARS = 500
STATES: tuple[str, ...] = get_args(State)
_CURSOR = re.compile(r"e:(\d{1,19})")
_HINT = (
    'search for words (all must match), "a quoted phrase", or a prefix like conv*; '
    "punctuation is ignored"
)


def _bad(message: str) -> InputError:
    return InputError(message, code="bad_query", hint=_HINT)


def _is_word_char(c: str) -> bool:
    return c.isalnum() or unicodedata.category(c)[0] == "M"


def tokens(text: str) -> list[str]:
    """The searchable tokens of ``text``: runs of letters, digits and combining marks."""
    out, cur = [], []
    for c in text:
        if _is_word_char(c):
            cur.append(c)
        elif cur:
            out.append("".join(cur))
            cur = []
    if cur:
        out.append("".join(cur))
    return out


def _term(chunk: str, *, phrase: bool) -> Term | None:
    prefix = not phrase and chunk.endswith("*")
    toks = tokens(chunk)
    for t in toks:
        if len(t) > MAX_TOKEN_CHARS:
            raise _bad(f"a word is longer than {MAX_TOKEN_CHARS} characters")
    if not toks:
        return None
    if len(toks) > 1:
        return Term("phrase", tuple(toks))
    return Term("prefix" if prefix else "word", (toks[0],))


def parse_query(q: str) -> list[Term]:
    """The terms of an operator's query (empty: no query, the filters alone)."""
    if len(q) > MAX_QUERY_CHARS:
        raise _bad(f"the query is longer than {MAX_QUERY_CHARS} characters")
    terms: list[Term] = []
    i, n = 0, len(q)
    while i < n:
        c = q[i]
        if c.isspace():
            i += 1
            continue
        if c == '"':
            end = q.find('"', i + 1)
            if end < 0:
                raise _bad("a quoted phrase is not closed")
            term = _term(q[i + 1 : end], phrase=True)
            i = end + 1
        else:
            j = i
            while j < n and not q[j].isspace() and q[j] != '"':
                j += 1
            term = _term(q[i:j], phrase=False)
            i = j
        if term is not None:
            terms.append(term)
    if q.strip() and not terms:
        raise _bad("the query has no word to search for")
    if len(terms) > MAX_TERMS:
        raise _bad(f"the query has more than {MAX_TERMS} terms")
    return terms


# --- filters, period, cursor ---------------------------------------------------------------


def parse_time(value: str, *, end: bool) -> int:
    """A date (``2026-11-30``) or an ISO date and time (UTC unless it says otherwise) as
    microseconds. A date alone as the ``end`` of a period means the end of that day."""
    v = value.strip()
    try:
        if len(v) == 10:
            day = dt.date.fromisoformat(v)
            at = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
            if end:
                at += dt.timedelta(days=1)
        else:
            at = dt.datetime.fromisoformat(v)
            if at.tzinfo is None:
                at = at.replace(tzinfo=dt.UTC)
        return int(at.timestamp() * 1_000_000)
    except (ValueError, OverflowError):
        raise InputError(
            f"{value[:40]!r} is not a date or a time",
            code="bad_period",
            hint="write a date as 2026-11-30 or a time as 2026-11-30T14:00:00Z",
        ) from None


def period(from_: str | None, to: str | None) -> tuple[int | None, int | None]:
    """(from_us inclusive, to_us exclusive) of a period given as dates or times."""
    start = None if from_ is None else parse_time(from_, end=False)
    stop = None if to is None else parse_time(to, end=True)
    if start is not None and stop is not None and start >= stop:
        raise InputError(
            "the period ends before it starts", code="bad_period", hint="check --from and --to"
        )
    return start, stop


def precedence_value(name: str | None) -> int | None:
    if name is None:
        return None
    try:
        return int(Precedence[name.upper()])
    except KeyError:
        raise InputError(
            f"unknown precedence {name[:20]!r}",
            code="bad_precedence",
            hint="precedence is FLASH, IMMEDIATE, PRIORITY or ROUTINE",
        ) from None


def encode_cursor(entry_idx: int) -> str:
    return base64.urlsafe_b64encode(f"e:{entry_idx}".encode()).decode().rstrip("=")


def decode_cursor(token: str) -> int:
    bad = InputError(
        "the paging cursor is not one this station gave",
        code="bad_cursor",
        hint="pass the `next` value of the previous page unchanged, or start again without it",
    )
    if len(token) > 64:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise bad from None
    m = _CURSOR.fullmatch(raw)
    if m is None or int(m.group(1)) >= 2**63:
        raise bad
    return int(m.group(1))


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """What an operator asked for, as typed (the API's query string, the CLI's options)."""

    q: str = ""
    channel: str | None = None
    peer: str | None = None
    precedence: str | None = None
    direction: str | None = None
    state: str | None = None
    from_: str | None = None
    to: str | None = None
    cursor: str | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class Prepared:
    terms: list[Term]
    filters: Filters
    before_idx: int | None
    limit: int


def prepare(req: SearchRequest) -> Prepared:
    """Check every part of a request; an ``InputError`` names the first wrong one."""
    if not 1 <= req.limit <= MAX_LIMIT:
        raise InputError(f"limit must be 1 to {MAX_LIMIT}", code="bad_input")
    if req.state is not None and req.state not in STATES:
        raise InputError(
            f"unknown state {req.state[:30]!r}",
            code="bad_input",
            hint="state is one of " + ", ".join(STATES),
        )
    if req.direction is not None and req.direction not in ("in", "out"):
        raise InputError("direction is in or out", code="bad_input")
    start, stop = period(req.from_, req.to)
    filters = Filters(
        channel=req.channel,
        peer=req.peer,
        precedence=precedence_value(req.precedence),
        direction=req.direction,
        state=req.state,  # type: ignore[arg-type]  # checked against STATES above
        from_us=start,
        to_us=stop,
    )
    before = None if req.cursor is None else decode_cursor(req.cursor)
    return Prepared(parse_query(req.q), filters, before, req.limit)


# --- running it ----------------------------------------------------------------------------


def excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def hit(row: Any, now_us: int) -> dict[str, Any]:
    """One result as operators read it (times ours; the peer's claim labelled so)."""
    body = json.loads(row.body)
    text = str(body.get("text") or "")
    overdue = (
        row.ack_required
        and row.acknowledged_at_us is None
        and row.ack_deadline_us is not None
        and row.ack_deadline_us < now_us
    )
    return {
        "message_id": row.message_id,
        "direction": row.direction,
        "peer": row.peer,
        "channel": row.channel,
        "precedence": Precedence(row.precedence).name,
        "type": row.type,
        "text": excerpt(text),
        "truncated": len(text) > EXCERPT_CHARS,
        "officer": body.get("officer"),
        "operator": row.operator,
        "in_reply_to": row.in_reply_to,
        "state": message_state(row, now_us),
        "answered": bool(row.answered),
        "ack_required": bool(row.ack_required),
        "ack_overdue": bool(overdue),
        "stored_at_us": row.stored_at_us,
        "sent_at_us": row.sent_at_us,
        "delivered_at_us": row.delivered_at_us,
        "ack_deadline_us": row.ack_deadline_us,
        "acknowledged_at_us": row.acknowledged_at_us,
        "ack_claimed_at_us": row.ack_claimed_at_us,
        "acknowledged_by": row.acknowledged_by,
        "entry_idx": row.entry_idx,
    }


def search_sync(engine: Engine, now_us: int, p: Prepared) -> dict[str, Any]:
    """Run a prepared search on a reader connection (call it in a worker thread)."""
    with engine.connect() as conn:
        try:
            rows = store.search(
                conn, p.terms, p.filters, now_us=now_us, before_idx=p.before_idx,
                limit=p.limit + 1,
            )  # fmt: skip
        except sa.exc.DBAPIError as exc:  # the backend refused the query itself
            reason = type(exc.orig).__name__
            raise _bad(f"the database could not run this query ({reason})") from None
    more = len(rows) > p.limit
    rows = rows[: p.limit]
    return {
        "items": [hit(r, now_us) for r in rows],
        "next": encode_cursor(int(rows[-1].entry_idx)) if more else None,
    }


async def search(
    engine: Engine, now_us: int, principal: Principal, req: SearchRequest
) -> dict[str, Any]:
    """Search messages for an officer who may read (``Action.READ``); a page of hits and
    the cursor of the next page (None: the last page)."""
    require(principal, Action.READ, what="search messages")
    prepared = prepare(req)
    return await asyncio.to_thread(search_sync, engine, now_us, prepared)
