"""What /openapi.json says about the operator API beyond the routes themselves.

Owns the documented error shape and the error responses every operation declares, the
readable operation ids (the route function's name: ``send_message``, not
``send_message_api_v1_messages_post``), and the event stream's event types. The spec is
built from the routes, so it cannot drift from them; ``tests/api/test_openapi.py`` checks
that every operation has typed 2xx responses and the error responses, and that a client
built from the spec parses an error.

/docs and /redoc are off: their pages load scripts from a CDN, which an air-gapped
station cannot reach and a strict operator network should not. Load /openapi.json into
any OpenAPI viewer you trust instead.

Must not touch: routes' behaviour, the store.
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

#: what the operator API answers for each status, in every operation that can answer it
STATUS_MEANING: dict[int, str] = {
    400: "The request was refused by a check of trust (code names which).",
    401: "Missing or wrong bearer token or session (code `unauthorized`; a wrong login: "
    "`login_failed`); no body was read.",
    403: "The officer's roles do not allow this (code `forbidden`, naming the roles that "
    "do), or a request authenticated by its session cookie lacks its CSRF token (`csrf`).",
    404: "No such peer, message, site, activity or concern (code `not_found`).",
    413: "The request body is over its limit (code `too_large`); it was not read.",
    422: "The request was refused before anything was sent or stored; the code names "
    "why (`bad_input` for a request that does not fit the schema).",
    429: "Too many requests from this client (code `rate_limited`), or too many with a "
    "wrong token, or too many wrong logins to one account (`login_backoff`).",
    500: "An unexpected failure; the station's log has the detail.",
    502: "The peer could not be reached (code `transport`, `peer_unreachable`, ...).",
    503: "The store refused or is unreachable (code `store`); nothing was changed.",
}

#: every operation can answer these: the gate (token, rate), roles and request validation
COMMON_ERRORS = (401, 403, 422, 429, 500)
#: operations with a request body can also answer this
BODY_ERRORS = (413,)


class ErrorDetail(BaseModel):
    """What went wrong: a stable machine code, a human message, and what to do."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(description="Stable machine code, e.g. `not_found`, `empty_message`.")
    message: str = Field(description="What was refused, for a person.")
    hint: str = Field(description="What to do next (may be empty).")


class ErrorResponse(BaseModel):
    """The operator API's one error shape."""

    model_config = ConfigDict(extra="forbid")
    error: ErrorDetail


def errors(*statuses: int, body: bool = False) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of an operation: the common errors, ``statuses`` and, for an
    operation with a request body, 413."""
    codes = sorted({*COMMON_ERRORS, *statuses, *(BODY_ERRORS if body else ())})
    return {code: {"model": ErrorResponse, "description": STATUS_MEANING[code]} for code in codes}


def operation_id(route: APIRoute) -> str:
    """The operation id is the route function's name (unique: a test checks it)."""
    return route.name


#: the live events of GET /api/v1/events (Server-Sent Events), with their data fields
EVENT_TYPES: dict[str, str] = {
    "message.queued": "An operator's message was stored and queued for its peer. data: "
    "{peer, message_id, precedence, channel, sequence, operator, queued_at_us, type, text "
    "(at most 500 characters), text_truncated, officer, in_reply_to, ack_required}.",
    "message.delivered": "The peer's signed receipt for one of our messages arrived. data: "
    "{peer, message_id, sequence, delivered_at_us (ours), claimed_stored_at_us (the "
    "peer's claim)}.",
    "message.received": "A message from a peer was stored. data: {peer, message_id, "
    "precedence, channel, sequence, received_at_us (ours), claimed_sent_at_us (the peer's "
    "claim), type, text (at most 500 characters), text_truncated, officer, in_reply_to, "
    "ack_required}.",
    "message.acknowledged": "We acknowledged a received message. data: {peer, message_id, "
    "precedence, channel, officer, note, acknowledged_at_us}.",
    "ack.received": "The peer acknowledged one of our messages. data: {peer, message_id, "
    "precedence, channel, officer, note, acknowledged_at_us (ours), "
    "claimed_acknowledged_at_us (the peer's claim)}.",
    "alarm.raised": "An alarm was opened (link down, refusals, sequence gap, lost numbers, "
    "unproved receipt, fork, unusable peer; a conflict or a refused notice in the "
    "registry). data: {kind, severity, peer, ref (the message, code, range or conflict it "
    "concerns), detail, raised_at_us}.",
    "link.state": "A line changed state. data: {peer, old_state, state (UP, DEGRADED, "
    "DOWN), at_us, failures, last_error, rtt_ms}.",
    "path.state": "One path of a line (https, nats) changed state. data: {peer, path, "
    "old_state, state, at_us, last_error}.",
    "line.resync": "After a restore, we resumed above the sequence numbers the peer holds. "
    "data: {peer, gap [first, last], resumed_at, at_us}.",
    "approval_requested": "A message on a two-person channel waits for a second officer. "
    "data: {approval_id, channel, peers, precedence, requester, deadline_us, text, type}.",
    "approval_decided": "An approval request was approved (and its message sent), refused "
    "or withdrawn. data: {approval_id, state, decided_by, reason, requester, channel, peers, "
    "message_ids, text}.",
    "approval_expired": "An approval request passed its deadline undecided; nothing was "
    "sent. data: {approval_id, requester, channel, peers, deadline_us, text}.",
    "escalation": "An escalation step was taken: ours (origin `local`: {message_id, peer, "
    "channel, precedence, step, role, both_sides, deadline_us, text}) or the peer's "
    "(origin `peer`: {message_id, peer, channel, step, role, claimed_at_us}).",
    "rota.changed": "The duty rota changed. data: {change (`set`, `clear`), entry_id, and "
    "for `set` username, role, from_us, to_us, set_by}.",
    "handover.written": "An officer wrote a handover. data: the handover with its note and "
    "summary.",
    "handover.acknowledged": "The incoming officer acknowledged a handover. data: the handover.",
    "message_read": "An officer opened a message (first read per officer): one of ours "
    "opening a received message (station: ours), or the peer's `read` of one of our "
    "messages (station: the peer; claimed_read_at_us its claim). data: {message_id, peer, "
    "channel, station, officer, read_at_us (ours), claimed_read_at_us}.",
    "stage": "A message reached a stage (read by one of our officers or the peer's, "
    "acknowledged in bulk). data: {message_id, stage, by, at_us; peer for a read}.",
    "alarm_acknowledged": "An officer acknowledged an alarm. data: the alarm {id, kind, "
    "severity, peer, ref, detail, raised_at_us, cleared_at_us, acknowledged_at_us, "
    "acknowledged_by, ack_note}.",
    "suspension": "A suspension was declared or resumed, by us or by the peer. data: {peer, "
    "scope, channel, declared_by, side, state, reason, officer, outcome, at_us, message_id}.",
    "dissemination": "A dissemination record: ours (we passed a message on) or the peer's "
    "(it passed on ours). data: {message_id, direction, peer, to, passed_at_us, "
    "recorded_at_us, officer, note, record_id, outcome}.",
    "not_disseminated": "A peer's notice involved in an open conflict was not recorded as "
    "passed on in time (alarm raised). data: {peer, message_id, notice_id, channel, "
    "due_at_us, detail}.",
    "channel.proposed": "A channel proposal was recorded (ours or a peer's). data: {name, "
    "version, proposal_id, proposer, terms}.",
    "channel.agreed": "Every member accepted a channel's terms: they are in force. data: "
    "{name, version, proposal_id, terms}.",
    "channel.declined": "A member declined a channel proposal. data: {name, proposal_id, "
    "declined_by}.",
}


def event_stream_response() -> dict[int | str, dict[str, Any]]:
    """The 200 response of the event stream: ``text/event-stream`` and its event types."""
    listed = "\n".join(f"- `{name}`: {what}" for name, what in EVENT_TYPES.items())
    return {
        200: {
            "description": "Server-Sent Events, one per change, each `id:`, `event:` (its "
            "type) and `data:` (a JSON object); a comment line `: keep-alive` every 15 s "
            f"when nothing happens. Event types:\n\n{listed}",
            "content": {
                "text/event-stream": {
                    "schema": {"$ref": "#/components/schemas/StreamEvent"},
                    "x-event-types": sorted(EVENT_TYPES),
                }
            },
        }
    }


class StreamEvent(BaseModel):
    """One event of the stream, as its `event:` and `data:` lines carry it."""

    model_config = ConfigDict(extra="allow")
    id: int = Field(description="Increasing event number (`id:` line).")
    event: str = Field(
        description="The event type (`event:` line): " + ", ".join(sorted(EVENT_TYPES)),
        json_schema_extra={"enum": list[Any](sorted(EVENT_TYPES))},
    )
    data: dict[str, Any] = Field(description="The event's JSON object (`data:` line).")


def add_components(spec: dict[str, Any]) -> dict[str, Any]:
    """Add the schemas the routes point at but FastAPI does not collect itself."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    ref = "#/components/schemas/{model}"
    schemas["StreamEvent"] = StreamEvent.model_json_schema(ref_template=ref)
    return spec
