"""Read-side views of the deconfliction registry for the console: the registry's tables,
one record's history, and every concern with its workflow and who took each step.

Owns shaping what the projection holds (``RegistryProjection``, read under its lock) into
plain dicts for a page, and finding the officer behind each concern step (the typed
message that carried it: our officer, or the officer the peer named, a claim shown as
text). A concern is "drafted" while only the draft of an open conflict exists, then
raised → acknowledged → answered → closed. Must not touch: writes, registry rules.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy.engine import Connection

from hotline.errors import NotFoundError
from hotline.service.registry import (
    RegistryProjection,
    conflict_json,
    record_json,
)
from hotline.store import reads

#: the workflow, in order ("drafted" exists only on the station that found the conflict)
WORKFLOW = ("drafted", "raised", "acknowledged", "answered", "closed")
#: most rows of each table a page shows (stale sites first); the rest are counted
MAX_ROWS = 1000
STEP_STATE = {"raise": "raised", "acknowledge": "acknowledged", "answer": "answered",
              "close": "closed"}  # fmt: skip


def registry_tables(
    proj: RegistryProjection, now: dt.datetime, max_rows: int = MAX_ROWS
) -> dict[str, Any]:
    """Sites (stale first) and activities, ended ones too, each as ``record_json`` and at
    most ``max_rows`` of each (``*_total`` counts them all), and the refused notices."""
    with proj.lock:
        reg = proj.registry
        site_recs = list(reg.sites(include_ended=True))
        act_recs = list(reg.activities(include_ended=True))
        stale = [r for r in site_recs if r.live and reg.is_stale(r.id, now)]
        rest = [r for r in site_recs if not (r.live and reg.is_stale(r.id, now))]
        sites = [record_json(r, reg, now) for r in (stale + rest)[:max_rows]]
        acts = [record_json(r, reg, now) for r in act_recs[:max_rows]]
        refused = list(proj.refused)[-max_rows:]
    return {
        "sites": sites,
        "sites_total": len(site_recs),
        "activities": acts,
        "activities_total": len(act_recs),
        "refused": refused,
    }


def record(proj: RegistryProjection, kind: str, ident: str, now: dt.datetime) -> dict[str, Any]:
    """One site or activity with every version (NotFoundError: none)."""
    with proj.lock:
        reg = proj.registry
        rec = reg.site(ident) if kind == "site" else reg.activity(ident)
        return record_json(rec, reg, now)


def _step_officers(conn: Connection) -> dict[tuple[str, str, str], dict[str, str]]:
    """(concern_id, step, station) -> the officer named on the message that carried it."""
    out: dict[tuple[str, str, str], dict[str, str]] = {}
    for r in reads.typed_messages(conn):
        if r.type != "concern":
            continue
        try:
            body = json.loads(r.body)
        except ValueError:
            continue
        data = body.get("data") or {}
        officer = body.get("officer") or {}
        name = officer.get("display_name") or r.operator or ""
        station = "" if r.direction == "out" else str(r.peer)
        key = (str(data.get("concern_id")), str(data.get("step")), station)
        if name and key not in out:
            out[key] = {"name": str(name), "username": str(officer.get("username") or "")}
    return out


def _us(t: dt.datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def _thread_row(t: Any, officers: dict[tuple[str, str, str], dict[str, str]],
                me: str) -> dict[str, Any]:  # fmt: skip
    raised = t.raised
    steps = []
    for s, by, at in t.steps:
        who = officers.get((t.concern_id, s.step, "" if by == me else by))
        steps.append({"step": s.step, "state": STEP_STATE[s.step], "station": by, "at": at,
                      "at_us": _us(at), "officer": who["name"] if who else None,
                      "text": s.text})  # fmt: skip
    about = raised.about
    return {
        "concern_id": t.concern_id,
        "state": t.state,
        "raised_by": t.raised_by,
        "ours": t.raised_by == me,
        "asked": raised.asked or "",
        "text": raised.text or "",
        "site_ids": list(about.site_ids) if about else [],
        "activity_ids": list(about.activity_ids) if about else [],
        "steps": steps,
        "done": {s["state"]: s for s in steps},
        "updated_at": steps[-1]["at"],
        "opened_at_us": None,
    }


def _draft_row(oc: Any) -> dict[str, Any]:
    d = oc.draft
    return {
        "concern_id": d.concern_id,
        "state": "drafted",
        "raised_by": None,
        "ours": True,
        "asked": d.asked or "",
        "text": d.text or "",
        "site_ids": list(d.about.site_ids) if d.about else [],
        "activity_ids": list(d.about.activity_ids) if d.about else [],
        "steps": [],
        "done": {},
        "updated_at": oc.opened_at,
        "opened_at_us": _us(oc.opened_at),
    }


def concerns(conn: Connection, proj: RegistryProjection, me: str) -> list[dict[str, Any]]:
    """Every concern (drafts of open conflicts first, then the rest newest first)."""
    officers = _step_officers(conn)
    with proj.lock:
        threads = [_thread_row(t, officers, me) for t in proj.concerns.all()]
        known = {t["concern_id"] for t in threads}
        drafts = [_draft_row(oc) for oc in proj.open_conflicts.values()
                  if oc.draft.concern_id not in known]  # fmt: skip
    threads.sort(key=lambda r: r["updated_at"], reverse=True)
    return drafts + threads


def concern(conn: Connection, proj: RegistryProjection, me: str, concern_id: str) -> dict[str, Any]:
    """One concern (or draft) with the conflict it is about (NotFoundError: none)."""
    officers = _step_officers(conn)
    with proj.lock:
        row: dict[str, Any] | None = None
        conflict = None
        for oc in proj.open_conflicts.values():
            if oc.draft.concern_id == concern_id:
                row, conflict = _draft_row(oc), conflict_json(oc)
        try:
            row = _thread_row(proj.concerns.get(concern_id), officers, me)
        except NotFoundError:
            if row is None:
                raise
        if conflict is None:
            for oc in proj.open_conflicts.values():
                c = oc.conflict
                if c.site_id in row["site_ids"] and c.activity_id in row["activity_ids"]:
                    conflict = conflict_json(oc)
    row["conflict"] = conflict
    row["actions"] = actions(row["state"], bool(row["ours"]))
    row["bodies"] = {a: step_body(concern_id, a, row["raised_by"], me) for a in row["actions"]}
    return row


def step_body(concern_id: str, step: str, raised_by: str | None, me: str) -> dict[str, Any]:
    """The JSON API body of a concern step (``POST /api/v1/notices``); a step answering
    the raising station goes to it alone."""
    body: dict[str, Any] = {"notice": {"type": "concern", "concern_id": concern_id, "step": step}}
    if raised_by is not None and raised_by != me:
        body["peer"] = raised_by
    return body


def actions(state: str, ours: bool) -> list[str]:
    """What this station's officer may do at this step (the concern rules decide again)."""
    if state == "drafted":
        return ["raise"]
    if state == "raised" and not ours:
        return ["acknowledge"]
    if state == "acknowledged" and not ours:
        return ["answer"]
    if state == "answered" and ours:
        return ["close"]
    return []
