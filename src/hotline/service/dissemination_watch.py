"""The dissemination watch: a peer's notice involved in an open conflict that nobody
passed on in time raises ``not_disseminated``.

Owns ``DisseminationWatch``, the station's supervised background task: each round (a
tenth of ``dissemination_deadline_s``, between 1 s and 60 s), inside one writer unit, it
reads the registry's open conflicts (under the registry's lock, never writing them),
finds the received message that carried each peer's site or activity notice in one
(service/dissemination.py learns which), keeps the ``dissemination_due`` list current
(the "action required" source) and raises or clears the alarm. Must not touch: SQL
(store/suspension.py), the registry's state.

Hospitals and convoys that were notified have been struck because the notice never
reached the unit that fired: this is for that.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

from hotline.errors import NotFoundError
from hotline.service.context import LineContext
from hotline.service.dissemination import projection_of
from hotline.service.registry import RegistryProjection
from hotline.store import operational
from hotline.store import suspension as db
from hotline.store.writer import WriteTx
from hotline.supervise import forever


def _us(t: dt.datetime) -> int:
    return int(t.timestamp() * 1_000_000)


class DisseminationWatch:
    """Raises ``not_disseminated`` for each received notice involved in an open conflict
    that was not recorded as passed on within ``dissemination_deadline_s`` of the
    conflict opening (or of its arrival, if later); clears it once it is, or once the
    conflict ends. Keeps ``dissemination_due`` (the action-required list) current."""

    def __init__(self, ctx: LineContext, registry: RegistryProjection) -> None:
        self.ctx = ctx
        self.registry = registry
        s = ctx.settings.dissemination_deadline_s
        self.interval_s = max(1.0, min(60.0, s / 10))

    def _candidates(self) -> list[tuple[str, int, str]]:
        """(notice id, conflict opened at, summary) of each peer's notice in a conflict."""
        reg, me = self.registry, self.ctx.station_id
        out = []
        with reg.lock:
            for oc in reg.open_conflicts.values():
                c = oc.conflict
                sides = (
                    ("site", c.site_id, c.site_station, f"activity {c.activity_id}"),
                    ("activity", c.activity_id, c.activity_station, f"site {c.site_id}"),
                )
                for kind, oid, station, other in sides:
                    if station == me:
                        continue
                    try:
                        rec = (
                            reg.registry.site(oid) if kind == "site" else reg.registry.activity(oid)
                        )
                    except NotFoundError:
                        continue
                    summary = (
                        f"pass on {station}'s {kind} {oid}: in conflict with {other} "
                        f"({c.distance_m:,.0f} m)"
                    )
                    out.append((rec.versions[-1].notice_id, _us(oc.opened_at), summary))
        return out

    def unit(self, tx: WriteTx) -> list[dict[str, Any]]:
        """One round, inside the writer: returns the alarms newly raised."""
        ctx, conn = self.ctx, tx.conn
        now = ctx.clock.now_us()
        deadline = int(ctx.settings.dissemination_deadline_s * 1_000_000)
        ext = projection_of(ctx)
        wanted: dict[str, tuple[str, int, str]] = {}
        for notice_id, opened, summary in self._candidates():
            mid = ext.message_of(notice_id)
            if mid is not None and (mid not in wanted or opened < wanted[mid][1]):
                wanted[mid] = (notice_id, opened, summary)
        rows = db.received(conn, wanted)
        done = db.disseminated(conn, wanted)
        due_rows, overdue = [], {}
        for r in rows:
            notice_id, opened, summary = wanted[r.message_id]
            due = max(opened, int(r.stored_at_us)) + deadline
            due_rows.append(
                {
                    "message_id": r.message_id,
                    "peer": r.peer,
                    "channel": r.channel,
                    "precedence": int(r.precedence),
                    "notice_id": notice_id,
                    "due_at_us": due,
                    "summary": summary,
                }
            )
            if r.message_id not in done and now >= due:
                overdue[r.message_id] = (r, notice_id, due, summary)
        db.replace_due(conn, due_rows)
        for alarm in operational.open_alarms(conn):
            if alarm["kind"] == "not_disseminated" and alarm["ref"] not in overdue:
                operational.clear_alarm(
                    conn, kind="not_disseminated", peer=alarm["peer"], ref=alarm["ref"], now_us=now
                )
        raised = []
        minutes = ctx.settings.dissemination_deadline_s / 60
        for mid, (r, notice_id, due, summary) in overdue.items():
            detail = (
                f"{r.peer}'s notice {notice_id} (message {mid}) is involved in an open "
                f"conflict and was not recorded as passed on within {minutes:g} minutes: "
                f"{summary}; pass it to the unit concerned, then record it "
                f"(hotline disseminate {mid} --to ...)"
            )
            if operational.raise_alarm(
                conn,
                kind="not_disseminated",
                severity="HIGH",
                peer=r.peer,
                ref=mid,
                detail=detail,
                now_us=now,
            ):
                raised.append(
                    {
                        "peer": r.peer,
                        "message_id": mid,
                        "notice_id": notice_id,
                        "channel": r.channel,
                        "due_at_us": due,
                        "detail": detail,
                    }
                )
        for content in raised:
            tx.after_commit(_publisher(ctx, content))
        return raised

    async def check_once(self) -> list[dict[str, Any]]:
        raised: list[dict[str, Any]] = await self.ctx.writer.submit(self.unit)
        return raised

    async def _round(self) -> None:
        await self.check_once()
        await asyncio.sleep(self.interval_s)

    async def run(self) -> None:
        """The station's background task."""
        await forever("dissemination-watch", self._round)


def _publisher(ctx: LineContext, content: dict[str, Any]) -> Callable[[], None]:
    return lambda: ctx.events.publish("not_disseminated", **content)
