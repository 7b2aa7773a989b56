"""The duty rota: who is on watch when, per role; and the work it routes.

Owns setting and clearing rota entries (``rota_set`` / ``rota_clear`` actions, naming
the officer who set them), ``on_watch`` (who is on watch in a role at a time) and the
"action required" source of the watch's own work (``action_items``: escalation steps and
handovers waiting for acknowledgement). The rule that routes work: an item for a role
goes to the officers on watch in that role now; when the rota names nobody in that role
now, to every officer holding it (a station with no rota works as before). Times are
our own, start inclusive, end exclusive; entries may overlap (two officers on watch).

Must not touch: SQL (store/watch.py), accounts (service/officers.py owns usernames: the
rota names a username and does not check that the account exists).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.engine import Connection

from hotline.errors import InputError, NotFoundError
from hotline.service.actions import ActionItem
from hotline.service.appending import append_action
from hotline.service.context import LineContext
from hotline.service.roles import LADDER, Action, Principal, Role, parse_roles, require
from hotline.store import watch as store
from hotline.store.writer import WriteTx
from hotline.wire.envelope import Precedence
from hotline.wire.messages import INT64_MAX, MIN_TIME_US

#: the longest shift an entry may cover (31 days)
MAX_SPAN_US = 31 * 86400 * 1_000_000
#: most entries the rota holds
MAX_ENTRIES = 10_000
ENTRY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


def on_watch(conn: Connection, role: str, at_us: int) -> list[str]:
    """The usernames on watch in ``role`` at ``at_us``."""
    return store.on_watch(conn, role, at_us)


def now_on_watch(conn: Connection, at_us: int) -> dict[str, list[str]]:
    """Per role, who is on watch at ``at_us`` (every role, an empty list for none)."""
    return {role.value: store.on_watch(conn, role.value, at_us) for role in Role}


def entry(row: Any) -> dict[str, Any]:
    return {
        "entry_id": row.entry_id,
        "username": row.username,
        "role": row.role,
        "from_us": row.from_us,
        "to_us": row.to_us,
        "set_by": row.set_by,
        "set_at_us": row.set_at_us,
        "entry_idx": row.entry_idx,
    }


def entries(
    conn: Connection, *, role: str | None = None, at_us: int | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """The rota's entries by start time (``at_us``: only those covering that time)."""
    return [entry(r) for r in store.rota_list(conn, role=role, at_us=at_us, limit=limit)]


def check_entry(entry_id: str, username: str, role: str, from_us: int, to_us: int) -> None:
    """Refuse a rota entry that is malformed (``bad_rota``, ``bad_role``)."""
    if not ENTRY_ID.match(entry_id):
        raise InputError("a rota entry id is 1 to 64 letters, digits, '.', '_' or '-'",
                         code="bad_rota")  # fmt: skip
    if not USERNAME.match(username):
        raise InputError("a username is 1 to 64 letters, digits, '.', '_', '@' or '-'",
                         code="bad_rota")  # fmt: skip
    parse_roles([role])
    if not MIN_TIME_US <= from_us < to_us <= INT64_MAX:
        raise InputError(
            "a shift starts before it ends, both after 2020",
            code="bad_rota",
            hint="give from and to as times with a zone, e.g. 2026-11-30T08:00Z",
        )
    if to_us - from_us > MAX_SPAN_US:
        raise InputError("a shift is at most 31 days long", code="bad_rota",
                         hint="split a longer watch into several entries")  # fmt: skip


async def set_entry(
    ctx: LineContext,
    principal: Principal,
    entry_id: str,
    *,
    username: str,
    role: str,
    from_us: int,
    to_us: int,
) -> dict[str, Any]:
    """Create or replace rota entry ``entry_id`` (``rota_set`` on the record)."""
    require(principal, Action.ROTA, what="change the rota")
    check_entry(entry_id, username, role, from_us, to_us)

    def unit(tx: WriteTx) -> dict[str, Any] | InputError:
        if store.rota_get(tx.conn, entry_id) is None and store.rota_count(tx.conn) >= MAX_ENTRIES:
            return InputError(f"the rota holds {MAX_ENTRIES} entries", code="rota_full",
                              hint="clear past entries (hotline rota clear ID)")  # fmt: skip
        action = {"action": "rota_set", "entry_id": entry_id, "username": username,
                  "role": role, "from_us": from_us, "to_us": to_us,
                  "officer": principal.username}  # fmt: skip
        append_action(ctx, tx, action)
        out = entry(store.rota_get(tx.conn, entry_id))
        tx.after_commit(lambda: ctx.events.publish("rota.changed", change="set", **out))
        return out

    result = await ctx.writer.submit(unit)
    if isinstance(result, InputError):
        raise result
    return result


async def clear_entry(ctx: LineContext, principal: Principal, entry_id: str) -> None:
    """Remove rota entry ``entry_id`` (``rota_clear`` on the record)."""
    require(principal, Action.ROTA, what="change the rota")

    def unit(tx: WriteTx) -> NotFoundError | None:
        if store.rota_get(tx.conn, entry_id) is None:
            return NotFoundError(f"no rota entry {entry_id!r}", hint="hotline rota show")
        append_action(ctx, tx, {"action": "rota_clear", "entry_id": entry_id,
                                "officer": principal.username})  # fmt: skip
        tx.after_commit(lambda: ctx.events.publish("rota.changed", change="clear",
                                                   entry_id=entry_id))  # fmt: skip
        return None

    result = await ctx.writer.submit(unit)
    if result is not None:
        raise result


# --- the work it routes ("action required") --------------------------------------------------


def routed_to(conn: Connection, principal: Principal, role: str, now_us: int) -> bool:
    """Whether work for ``role`` goes to ``principal`` now: it holds the role, and the
    rota names it on watch in that role (or names nobody in that role now)."""
    if role not in {r.value for r in principal.roles}:
        return False
    watching = store.on_watch(conn, role, now_us)
    return not watching or principal.username in watching


#: escalation steps and handovers listed at most per source call
MAX_ITEMS = 200


def action_items(conn: Connection, principal: Principal, now_us: int) -> list[ActionItem]:
    """The ``SOURCES`` entry: open escalation steps for a role routed to ``principal``
    (the highest step of each message), handovers it may acknowledge."""
    items: dict[str, ActionItem] = {}
    for r in store.escalations(conn, open_only=True, limit=MAX_ITEMS):
        if r.message_id in items or not routed_to(conn, principal, r.role, now_us):
            continue
        prec = Precedence(r.precedence if r.precedence is not None else Precedence.ROUTINE)
        whose = "the peer has not" if r.origin == "local" else "we have not"
        items[r.message_id] = ActionItem(
            kind="escalation",
            ref=r.message_id,
            precedence=int(prec),
            due_at_us=r.ack_deadline_us,
            summary=f"escalation step {r.step} ({r.role}): {prec.name} message on "
            f"{r.channel}, {whose} acknowledged it past its deadline",
            channel=r.channel,
            peer=r.peer,
        )
    out = list(items.values())
    if principal.may(Action.HANDOVER) and _on_any_watch(conn, principal, now_us):
        for h in store.handovers(conn, open_only=True, limit=MAX_ITEMS):
            if h.written_by == principal.username:
                continue
            out.append(ActionItem(
                kind="handover", ref=h.handover_id, precedence=int(Precedence.PRIORITY),
                due_at_us=None, summary=f"acknowledge the handover written by {h.written_by}",
            ))  # fmt: skip
    return out


def _on_any_watch(conn: Connection, principal: Principal, now_us: int) -> bool:
    """A handover goes to whoever is on watch in one of the ladder's roles the principal
    holds (or, when the rota names nobody in such a role now, to every holder)."""
    return any(routed_to(conn, principal, role.value, now_us) for role in LADDER)
