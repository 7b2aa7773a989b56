"""Deconfliction use cases: notify sites and activities, import a registry file, load the
reference data, raise and answer concerns. Each notice travels as a typed message.

Owns choosing the recipients, checking a notice against the registry before anything is
sent (a refused notice sends nothing), serialising the use cases so that a check and
its sends are one step, the words that go with it (a notification is information,
never permission), and the rule that a concern step acknowledges what it answers (no
busywork: docs/operations.md, "Message stages and acknowledgements"). Parsing and
checks run off the event loop. Must not touch: the registry's rules, transport.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from hotline.deconfliction import exchange
from hotline.deconfliction.models import ActivityNotice, Concern, SiteNotice
from hotline.errors import HotlineError, InputError
from hotline.service.line import Line, Sent
from hotline.service.registry import INFORMATION_NOT_PERMISSION, RegistryProjection
from hotline.service.roles import STATION_USERNAME
from hotline.store import stages as stages_db
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload

CHANNEL = "deconfliction"
log = logging.getLogger(__name__)
#: concern steps that answer and need no acknowledgement of their own
NO_ACK_STEPS = ("acknowledge", "close")
NOTICE_MESSAGE_TYPES = ("site_notice", "activity_notice", "concern")
#: most waiting messages a concern step looks through for what it answers
ANSWERED_SCAN = 5000
Notice = SiteNotice | ActivityNotice | Concern


def describe(n: Notice) -> str:
    """The short human text that travels with a typed message."""
    if isinstance(n, SiteNotice):
        what = f"Site notice ({n.action}) {n.site_id}"
        if n.site is not None:
            what += f": {next(iter(n.site.names.values()))}, {n.site.category.replace('_', ' ')}"
        return f"{what}. {INFORMATION_NOT_PERMISSION}"
    if isinstance(n, ActivityNotice):
        what = f"Activity notice ({n.action}) {n.activity_id}"
        if n.activity is not None:
            a = n.activity
            what += (
                f": {a.kind.replace('_', ' ')}, {a.window.start:%Y-%m-%d %H:%MZ} to "
                f"{a.window.end:%Y-%m-%d %H:%MZ}"
            )
        return f"{what}. {INFORMATION_NOT_PERMISSION}"
    return f"Concern {n.concern_id}: {n.step}. " + (n.asked or n.text or "")


def _suffix() -> str:
    """Keeps notice ids of two imports apart, even within one second."""
    return secrets.token_hex(3)


class Deconfliction:
    """The deconfliction use cases of one station.

    Concurrency: one use case at a time holds ``_lock`` from its check to its last send,
    so two sends cannot both pass the check, and an import is all or nothing also while
    another import or send runs. The writer decides once more inside the unit that
    projects each notice (``RegistryProjection.sending``), so a peer's notice that lands
    between the check and the send refuses the send instead of being overtaken by it.
    Parsing, geometry checks, prechecks and imports run in a worker thread, never on
    the event loop.
    """

    def __init__(self, line: Line, projection: RegistryProjection) -> None:
        self.line = line
        self.projection = projection
        self._lock = asyncio.Lock()

    def recipients(self, peer: str | None) -> list[str]:
        if peer is not None:
            self.line.peers.get(peer)
            return [peer]
        peers = self.line.peers.ids()
        if not peers:
            raise InputError("this station has no peers to notify", hint="hotline peer add")
        return peers

    async def send(
        self,
        notice: Notice,
        *,
        peer: str | None = None,
        precedence: Precedence | None = None,
        operator: str | None = None,
    ) -> list[Sent]:
        """Check ``notice`` against the registry, then send it to ``peer`` (or every peer)."""
        async with self._lock:
            await asyncio.to_thread(self._precheck, notice)
            return await self._send_checked(notice, peer, precedence, operator)

    async def send_data(self, data: Any, **kw: Any) -> list[Sent]:
        """Parse an untrusted payload dict (API, CLI file), then send it."""
        notice = await asyncio.to_thread(self.projection.parse, data)
        return await self.send(notice, **kw)

    def _precheck(self, notice: Notice) -> None:
        with self.projection.lock:
            self.projection.precheck(notice)

    async def _send_checked(
        self,
        notice: Notice,
        peer: str | None,
        precedence: Precedence | None,
        operator: str | None,
    ) -> list[Sent]:
        """Send a checked notice; the caller holds ``_lock``."""
        prec = precedence or (
            Precedence.IMMEDIATE if isinstance(notice, Concern) else Precedence.PRIORITY
        )
        payload = MessagePayload(
            type=notice.type,
            text=describe(notice),
            data=notice.to_payload(),
            # a concern's acknowledge and close steps are themselves answers: no busywork
            ack_required=not (isinstance(notice, Concern) and notice.step in NO_ACK_STEPS),
        )
        with self.projection.sending(notice):
            sent = [
                await self.line.send(
                    peer=p, channel=CHANNEL, precedence=prec, payload=payload, operator=operator
                )
                for p in self.recipients(peer)
            ]
        if isinstance(notice, Concern):
            await self._acknowledge_answered(notice, peer, operator)
        return sent

    async def _acknowledge_answered(
        self, step: Concern, peer: str | None, operator: str | None
    ) -> None:
        """A concern step acknowledges what it answers: the peer's earlier steps of the
        same concern (or, raising it, the peer's notices it is about) that still wait for
        an acknowledgement, each named to the officer who took the step."""
        targets = await asyncio.to_thread(self._answered_by, step, peer)
        officer = operator or STATION_USERNAME
        for mid in targets:
            try:
                await self.line.acknowledge(mid, officer)
            except HotlineError as exc:  # acknowledged meanwhile: nothing left to do
                log.info("concern step did not acknowledge %s: %s", mid, exc.message)

    def _answered_by(self, step: Concern, peer: str | None) -> list[str]:
        with self.line.reader.connect() as conn:
            waiting = stages_db.awaiting_ack(conn, ANSWERED_SCAN, types=NOTICE_MESSAGE_TYPES)
        about = step.about
        ids = set() if about is None else {*about.site_ids, *about.activity_ids}
        out = []
        for r in waiting:
            if peer is not None and r.peer != peer:
                continue
            data = json.loads(r.body).get("data") or {}
            if step.step != "raise":
                hit = r.type == "concern" and data.get("concern_id") == step.concern_id
            else:
                hit = (data.get("site_id") or data.get("activity_id")) in ids
            if hit:
                out.append(str(r.message_id))
        return out

    async def import_file(
        self,
        raw: bytes,
        *,
        peer: str | None = None,
        prefix: str | None = None,
        operator: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[SiteNotice]:
        """Import a GeoJSON or ED-318 file: all or nothing; checked whole before any send."""
        now = dt.datetime.fromtimestamp(self.line.clock.now_us() / 1e6, dt.UTC)
        prefix = prefix or f"{self.line.station_id}-import-{now:%Y%m%dT%H%M%S}-{_suffix()}"
        self.recipients(peer)
        async with self._lock:
            notices = await asyncio.to_thread(self._import_notices, raw, now, prefix)
            return await self._send_all(notices, peer, operator, progress)

    async def preview_import(self, raw: bytes, *, peer: str | None = None) -> list[SiteNotice]:
        """What ``import_file`` would notify, checked exactly as it checks (the file whole,
        then each notice against the registry): sends nothing, stores nothing. A file the
        import would refuse is refused here with the same error (the first bad feature
        named)."""
        now = dt.datetime.fromtimestamp(self.line.clock.now_us() / 1e6, dt.UTC)
        self.recipients(peer)
        prefix = f"{self.line.station_id}-preview"
        return await asyncio.to_thread(self._import_notices, raw, now, prefix)

    def _import_notices(self, raw: bytes, now: dt.datetime, prefix: str) -> list[SiteNotice]:
        with self.projection.lock:
            return self.projection.import_notices(raw, now=now, prefix=prefix)

    async def load_reference(
        self,
        *,
        peer: str | None = None,
        operator: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[SiteNotice]:
        """Notify the shipped reference data (Ukraine's power plants) as this station's sites."""
        now = dt.datetime.fromtimestamp(self.line.clock.now_us() / 1e6, dt.UTC)
        prefix = f"{self.line.station_id}-ref-{_suffix()}"

        def checked() -> list[SiteNotice]:
            notices = exchange.reference_sites(now=now, notice_prefix=prefix)
            with self.projection.lock:
                for n in notices:
                    self.projection.precheck(n)
            return notices

        async with self._lock:
            notices = await asyncio.to_thread(checked)
            return await self._send_all(notices, peer, operator, progress)

    async def _send_all(
        self,
        notices: Sequence[SiteNotice],
        peer: str | None,
        operator: str | None,
        progress: Callable[[int, int], None] | None,
    ) -> list[SiteNotice]:
        """Send checked notices one by one; the caller holds ``_lock``."""
        for i, n in enumerate(notices, 1):
            try:
                await self._send_checked(n, peer, None, operator)
            except HotlineError as exc:
                raise InputError(
                    f"stopped at notice {i} of {len(notices)} ({n.site_id}): {exc.message}",
                    hint="the notices before it were sent; fix the file and import the rest",
                ) from exc
            if progress is not None:
                progress(i, len(notices))
        return list(notices)

    async def raise_draft(
        self,
        concern_id: str,
        *,
        peer: str | None = None,
        operator: str | None = None,
        asked: str | None = None,
        text: str | None = None,
    ) -> list[Sent]:
        """Send the draft concern of an open conflict (the 'raise' step); ``asked`` and
        ``text``, when given, replace the draft's (an officer's edit), checked as any
        concern is."""
        draft = await asyncio.to_thread(self._draft, concern_id, asked, text)
        return await self.send(draft, peer=peer, operator=operator)

    def _draft(self, concern_id: str, asked: str | None = None, text: str | None = None) -> Concern:
        with self.projection.lock:  # shared with the writer thread: never on the loop
            draft = self.projection.draft(concern_id)
        if asked is None and text is None:
            return draft
        data = draft.to_payload()
        data.update({k: v for k, v in (("asked", asked), ("text", text)) if v is not None})
        edited = self.projection.parse(data)
        if not isinstance(edited, Concern):  # the draft's own type: never expected
            raise InputError("an edited draft concern must stay a concern")
        return edited
