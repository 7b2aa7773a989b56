"""The watch projection: the duty rota, escalation steps and shift handovers, built from
the ledger, and the alarms escalation raises.

Owns ``WatchProjection`` (a ``ProjectionExtension``, one of the line's CORE extensions):
``rota_set`` / ``rota_clear`` actions into ``rota``; ``escalation`` actions and a peer's
``escalation`` typed messages into ``escalations``; ``handover`` / ``handover_ack``
actions into ``handovers``. Live (inside the writer's transaction) it raises an
``escalation`` alarm for the step's role, and clears a message's escalation alarms when
the message is acknowledged; during a rebuild it leaves alarms alone and reconciles them
at the end (``rebuild_finished``).

A peer's escalation is a claim about a message it sent us. It is bounded by its data
model (service/escalation.py) and kept on the record whatever it says, but it raises an
alarm only for a message this peer sent us, that asked for an acknowledgement, that is
not acknowledged, and only once per step; otherwise it is recorded ``ignored`` with a
code (``unknown_message``, ``no_ack_required``, ``already_acknowledged``,
``duplicate``). Must not touch: SQL (store/watch.py, store/operational.py), the writer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.service import actions, escalation, rota
from hotline.service.context import LineContext
from hotline.store import operational, schema
from hotline.store import watch as store
from hotline.store.projections import MessageEvent
from hotline.wire.envelope import Precedence

log = logging.getLogger(__name__)
ALARM_KIND = "escalation"


def severity(precedence: int) -> str:
    return "HIGH" if precedence <= Precedence.IMMEDIATE else "MEDIUM"


@dataclass
class WatchProjection:
    """A ``ProjectionExtension``: rota, escalations, handovers."""

    ctx: LineContext
    tables: tuple[sa.Table, ...] = schema.WATCH_TABLES
    #: during a rebuild, alarms already on record are left alone
    _quiet: bool = field(default=False)

    # --- operator actions ---------------------------------------------------------------

    def on_action(self, conn: Connection, idx: int, action: dict[str, Any], at_us: int) -> None:
        name = action.get("action")
        if name == "rota_set":
            store.rota_put(conn, {
                "entry_id": action["entry_id"], "username": action["username"],
                "role": action["role"], "from_us": action["from_us"], "to_us": action["to_us"],
                "set_by": action["officer"], "set_at_us": at_us, "entry_idx": idx,
            })  # fmt: skip
        elif name == "rota_clear":
            store.rota_delete(conn, action["entry_id"])
        elif name == "escalation":
            self._local_step(conn, idx, action, at_us)
        elif name == "handover":
            store.handover_insert(conn, {
                "handover_id": action["handover_id"], "written_by": action["officer"],
                "written_at_us": at_us, "note": action["note"],
                "summary": json.dumps(action["summary"], sort_keys=True), "entry_idx": idx,
            })  # fmt: skip
        elif name == "handover_ack":
            store.handover_ack(conn, action["handover_id"], action["officer"], at_us,
                               action.get("note"))  # fmt: skip

    def _local_step(self, conn: Connection, idx: int, action: dict[str, Any], at_us: int) -> None:
        store.escalation_insert(conn, {
            "entry_idx": idx, "message_id": action["message_id"], "origin": "local",
            "peer": action["peer"], "channel": action["channel"], "step": action["step"],
            "role": action["role"], "both_sides": action["both_sides"], "status": "raised",
            "code": None, "at_us": at_us, "claimed_at_us": None,
        })  # fmt: skip
        if self._quiet:
            return
        row = store.message_row(conn, action["message_id"], "out", action["peer"])
        prec = Precedence(row.precedence if row is not None else Precedence.ROUTINE)
        operational.raise_alarm(
            conn, kind=ALARM_KIND, severity=severity(prec), peer=action["peer"],
            ref=action["message_id"], role=action["role"], now_us=at_us,
            detail=f"{prec.name} message {action['message_id']} to {action['peer']} on "
            f"{action['channel']} is not acknowledged past its deadline: escalation step "
            f"{action['step']}, {action['role']} alarmed"
            + (" (the peer is told)" if action["both_sides"] else ""),
        )  # fmt: skip

    # --- typed messages -------------------------------------------------------------------

    def on_message(self, conn: Connection, event: MessageEvent) -> None:
        if event.body.type != "escalation" or event.direction != "in":
            return
        data = escalation.EscalationData.model_validate(event.body.data or {})
        code: str | None = None
        msg = store.message_row(conn, data.message_id, "in", event.peer)
        if msg is None:
            code = "unknown_message"
        elif not msg.ack_required:
            code = "no_ack_required"
        elif msg.acknowledged_at_us is not None:
            code = "already_acknowledged"
        elif store.peer_step_raised(conn, data.message_id, event.peer, data.step):
            code = "duplicate"
        store.escalation_insert(conn, {
            "entry_idx": event.idx, "message_id": data.message_id, "origin": "peer",
            "peer": event.peer, "channel": msg.channel if msg is not None else event.channel,
            "step": data.step, "role": data.role, "both_sides": True,
            "status": "ignored" if code else "raised", "code": code,
            "at_us": event.recorded_at_us, "claimed_at_us": event.sent_at_us,
        })  # fmt: skip
        if code is not None:
            if not self._quiet:
                log.warning("%s's escalation of %s step %d ignored: %s", event.peer,
                            data.message_id, data.step, code)  # fmt: skip
            return
        if self._quiet or msg is None:
            return
        prec = Precedence(msg.precedence)
        operational.raise_alarm(
            conn, kind=ALARM_KIND, severity=severity(prec), peer=event.peer,
            ref=data.message_id, role=data.role, now_us=event.recorded_at_us,
            detail=f"{event.peer} escalates its {prec.name} message {data.message_id} on "
            f"{msg.channel}: not acknowledged here past its deadline (its step "
            f"{data.step}); {data.role} alarmed",
        )  # fmt: skip
        self.ctx.publish_after_commit(
            "escalation", origin="peer", message_id=data.message_id, peer=event.peer,
            channel=msg.channel, step=data.step, role=data.role, both_sides=True,
            claimed_at_us=event.sent_at_us,
        )  # fmt: skip

    def on_ack(
        self, conn: Connection, message_id: str, by_station: str, officer: str, at_us: int
    ) -> None:
        """An acknowledgement stops the ladder and clears the message's escalation alarms."""
        if not self._quiet:
            operational.clear_ref(conn, kind=ALARM_KIND, ref=message_id, now_us=at_us)

    # --- rebuild --------------------------------------------------------------------------

    def reset(self) -> None:
        self._quiet = True

    def rebuild_finished(self, conn: Connection) -> None:
        """Clear the escalation alarms of messages acknowledged (by now)."""
        self._quiet = False
        open_ = [a for a in operational.open_alarms(conn) if a["kind"] == ALARM_KIND]
        done = store.acknowledged(conn, sorted({str(a["ref"]) for a in open_}))
        for ref in done:
            operational.clear_ref(conn, kind=ALARM_KIND, ref=ref, now_us=self.ctx.clock.now_us())


#: the watch's work in the "action required" list (escalation steps, handovers)
actions.SOURCES.append(rota.action_items)


def make(ctx: LineContext) -> WatchProjection:
    """The CORE factory: the projection, and the check of a peer's escalation data."""
    ctx.validators["escalation"] = escalation.check_data
    return WatchProjection(ctx)
