"""The composition root: the one place where a station is wired together.

Owns building a station from its settings (identity, store, writer, line, link, apps)
with explicit constructors, the station lock, the run file (where the APIs listen),
and the lifespan of every background task, all in one ``asyncio.TaskGroup``; starting,
stopping and restarting one peer's line (add, remove, re-key) and the peer endpoint's
TLS trust that goes with it.

Invariants: one peer never stops the station. A peer whose card does not check, whose
certificate cannot be trusted or whose client cannot be built is left out with an
alarm (``peer_unusable``); a card without an endpoint is a receive-only peer (no outbox
and no link tests: its envelopes are received, ours wait in the queue until a re-keyed
card names an endpoint). Must not touch: business rules; everything here is wiring.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import socket
import ssl
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa
import uvicorn

from hotline import supervise
from hotline.api.operator import create_operator_app
from hotline.api.peer import create_peer_app
from hotline.api.standby import Health
from hotline.clock import Clock, SystemClock
from hotline.crypto import tls
from hotline.crypto.card import SignedCard
from hotline.crypto.keys import StationIdentity, load_station
from hotline.errors import ConfigError, HotlineError, NotFoundError
from hotline.link.client import PeerClient
from hotline.link.health import Timing
from hotline.link.limits import PeerLimits, own_limits
from hotline.link.linktest import HealthRecorder, LinkTester
from hotline.link.outbox import Outbox
from hotline.link.relay import Relay
from hotline.link.transport import Transport
from hotline.service import approvals, peering
from hotline.service.arbitration import Arbitration
from hotline.service.dissemination_watch import DisseminationWatch
from hotline.service.escalation import Escalator
from hotline.service.events import EventBus, raise_alarm
from hotline.service.line import Line
from hotline.service.notices import Deconfliction
from hotline.service.officers import Officers
from hotline.service.peers import PeerBook
from hotline.service.registry import RegistryProjection
from hotline.service.resync import Resync
from hotline.service.witnessing import Witnessing
from hotline.settings import Settings
from hotline.store import database, operational
from hotline.store.writer import Writer, WriteTx
from hotline.wire.messages import LinkTestReplyPayload

log = logging.getLogger(__name__)
NOTICE_TYPES = ("site_notice", "activity_notice", "concern")
#: seconds open requests (an event stream, a peer's keep-alive) get at shutdown
GRACE_S = 3
RUN_FILE = "run.json"
TOKEN_FILE = "api-token"  # noqa: S105 - a file name, not a secret
LOCK_FILE = "station.lock"
#: a start that replayed at least this many typed messages stores a registry snapshot,
#: so that the next start replays only the messages after it
REGISTRY_SNAPSHOT_AFTER = 1000


@contextlib.contextmanager
def station_lock(data_dir: Path) -> Iterator[None]:
    """Hold the station's lock: one process writes a station's store at a time."""
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"the station in {data_dir} is running",
                code="station_running",
                hint="use its API (the CLI does when it can), or stop it first",
            ) from None
        yield
    finally:
        os.close(fd)


def api_token(data_dir: Path) -> str:
    """The operator API's bearer token, created (0600) on first use."""
    path = data_dir / TOKEN_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"{path} is readable by others", hint=f"chmod 600 {path}")
    return path.read_text().strip()


def read_run_file(data_dir: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((data_dir / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data


class Station:
    """One station's parts, built and opened in order; ``close`` in reverse."""

    def __init__(
        self,
        settings: Settings,
        identity: StationIdentity | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        pw = settings.passphrase.get_secret_value() if settings.passphrase else None
        self.identity = identity or load_station(settings.data_dir, pw)
        self.clock = clock or SystemClock()
        url = settings.store_url
        self.write_engine = database.create(
            url, synchronous=settings.sqlite_synchronous, writer=True
        )
        database.migrate(self.write_engine)
        self.read_engine = database.create(url, synchronous=settings.sqlite_synchronous)
        self.writer = Writer(self.write_engine, max_batch=settings.group_commit_max_batch)
        self.events = EventBus()
        self.registry = RegistryProjection(self.identity.station_id, settings)
        self.registry.on_alarm = self._alarm_event  # conflicts, refused notices
        self.line = Line(
            self.identity,
            settings,
            self.writer,
            self.read_engine,
            PeerBook(),
            self.clock,
            self.events,
            extensions=[self.registry],
            validators={k: self.registry.validate(k) for k in NOTICE_TYPES},
        )
        with self.read_engine.connect() as conn:
            #: recorded peers left out at start (their card does not check), for alarms
            self.unusable = peering.load_book(conn, self.line.peers)
            #: removed peers still complete the TLS handshake, to be told ``unknown_peer``
            self._removed = peering.removed_cards(conn)
            replayed = self.registry.reload(conn)
            #: officers' accounts, tokens and sessions, in memory for the API's gate
            self.officers = Officers(self.line.ctx)
            self.officers.load(conn)
        if replayed >= REGISTRY_SNAPSHOT_AFTER:
            self._save_registry_snapshot()
        self.registry.track(self.write_engine)
        self.writer.on_rollback.append(self._reload_registry)
        self.deconfliction = Deconfliction(self.line, self.registry)
        #: a peer's conflict notice not passed on in time raises not_disseminated
        self.dissemination_watch = DisseminationWatch(self.line.ctx, self.registry)
        self.witnessing = Witnessing(self.line)
        self.arbitrations = [
            Arbitration(
                self.line,
                self.witnessing,
                w,
                settings.link_test_interval_s,
                settings.peer_timeout_s,
            )
            for w in settings.witnesses
        ]
        self.recorder = HealthRecorder(self.line)
        #: the station's connection to the NATS relay, when "nats" is one of its paths
        self.relay = (
            Relay(self.line, self.witnessing, self.identity) if "nats" in settings.paths else None
        )
        self.resync = Resync(self.line)
        #: takes each escalation step that is due, once (service/escalation.py)
        self.escalator = Escalator(self.line.ctx)
        self._tg: asyncio.TaskGroup | None = None
        #: the context uvicorn serves with; it hands each handshake to ``_peer_ctx_now``
        self._peer_ctx: ssl.SSLContext | None = None
        self._peer_ctx_now: ssl.SSLContext | None = None
        self._clients: dict[str, list[Transport]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._link_tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._resyncs: dict[str, asyncio.Task[None]] = {}
        self._reissue_lock: dict[str, asyncio.Lock] = {}
        self._reply_seen: dict[str, float] = {}
        self.outboxes: dict[str, Outbox] = {}
        #: each peer's link testers, one per path, most preferred first
        self.path_testers: dict[str, list[LinkTester]] = {}
        self.line.on_queued.append(self._wake)

    def _alarm_event(self, content: dict[str, Any]) -> None:
        """An alarm a projection opened inside the writer's unit: ``alarm.raised`` with its
        content once the unit is durable."""
        self.line.ctx.publish_after_commit("alarm.raised", **content)

    def _save_registry_snapshot(self) -> None:
        """Store the registry as of the newest entry, so that the next start replays only
        what comes after (before the writer thread runs: one unit on this thread). A
        failure costs only the next start's time."""
        now = self.clock.now_us()
        try:
            idx = self.writer.run_sync(lambda tx: self.registry.save_snapshot(tx.conn, now))
        except HotlineError as exc:
            log.warning("registry snapshot not stored: %s", exc)
            return
        log.info("registry snapshot stored, valid to ledger entry %s", idx)

    def _reload_registry(self, conn: sa.Connection | None) -> None:
        if not self.registry.needs_reload():  # the rollback was undone in memory
            return
        if conn is not None:
            self.registry.reload(conn)
            return
        with self.read_engine.connect() as fresh:
            self.registry.reload(fresh)

    def close(self) -> None:
        self.writer.close()
        self.read_engine.dispose()

    def _wake(self, peer: str, precedence: Any) -> None:
        box = self.outboxes.get(peer)
        if box is not None:
            box.wake(precedence)

    def _on_missing(self, peer: str, ranges: list[tuple[int, int]]) -> None:
        log.warning("%s reports missing sequence numbers %s: resending", peer, ranges)
        box = self.outboxes.get(peer)
        if box is not None:
            box.retry_now()
        # numbers it had receipted and now misses: it lost them (a restore); alarm
        self._spawn(self.resync.on_missing(peer, ranges), f"missing-{peer}")

    async def link_test_now(self, peer: str) -> dict[str, Any]:
        testers = self.path_testers.get(peer)
        if not testers:
            raise NotFoundError(
                f"no link to {peer} is running",
                code="no_link",
                hint="a peer whose card has no endpoint is receive-only: re-key it with a "
                "card that names one ('hotline peer rekey')",
            )
        results = list(await asyncio.gather(*(t.test_once() for t in testers)))
        result = next((r for r in results if r["ok"]), results[0])
        if len(results) > 1:
            result = {**result, "paths": results}
        if result["ok"]:
            await self.outboxes[peer].retry_refused()  # the operator asks: parked go again
        for arbitration in self.arbitrations:
            arbitration.wake()
        return result

    # --- running ------------------------------------------------------------------------

    async def serve(
        self,
        api_sock: socket.socket,
        peer_sock: socket.socket,
        ready: Callable[[], None] | None = None,
        stop: asyncio.Event | None = None,
        health: Callable[[], Health] | None = None,
    ) -> None:
        """Serve both APIs and run every line until ``stop`` is set (``health``: this
        process's role for ``/health``, given by hotline/standby.py)."""
        stop = stop or asyncio.Event()
        s = self.settings
        token = api_token(s.data_dir)
        peer_ctx = self._peer_context()
        peer_ctx.sni_callback = self._choose_peer_context
        self._peer_ctx = self._peer_ctx_now = peer_ctx
        self.writer.start()
        await self._alarm_unusable()
        op_app = create_operator_app(
            self.line,
            token,
            link_test_now=self.link_test_now,
            add_peer=self.add_peer,
            deconfliction=self.deconfliction,
            peer_admin=self,
            officers=self.officers,
            health=health,
        )
        peer_app = create_peer_app(self.line, self.witnessing)
        servers = [
            _Server(
                uvicorn.Config(
                    op_app,
                    log_level="warning",
                    lifespan="off",
                    access_log=False,
                    timeout_graceful_shutdown=GRACE_S,
                )
            ),
            _Server(
                uvicorn.Config(
                    peer_app,
                    log_level="warning",
                    lifespan="off",
                    access_log=False,
                    timeout_graceful_shutdown=GRACE_S,
                    ssl_context_factory=lambda _c, _d: peer_ctx,
                )
            ),
        ]
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                tg.create_task(servers[0].serve(sockets=[api_sock]), name="operator-api")
                tg.create_task(servers[1].serve(sockets=[peer_sock]), name="peer-endpoint")
                for peer in self.line.peers.ids():
                    self._start_link(peer)
                self._workers.append(
                    tg.create_task(
                        supervise.forever("escalation check", self.escalator.run),
                        name="escalation",
                    )
                )
                self._workers.append(
                    tg.create_task(self.dissemination_watch.run(), name="dissemination-watch")
                )
                for i, arbitration in enumerate(self.arbitrations):
                    self._workers.append(tg.create_task(arbitration.run(), name=f"arbiter-{i}"))
                self._workers.append(  # the two-person rule's deadlines
                    tg.create_task(approvals.run_expiry(self.line.ctx), name="approval-expiry")
                )
                if self.relay is not None:  # connects, and again whenever it is lost
                    self._workers.append(
                        tg.create_task(supervise.forever("relay", self.relay.run), name="relay")
                    )
                while not all(srv.started for srv in servers):  # noqa: ASYNC110 - uvicorn has no event
                    await asyncio.sleep(0.01)
                self._write_run_file(api_sock, peer_sock)
                if ready is not None:
                    ready()
                await stop.wait()
                for srv in servers:
                    srv.should_exit = True
                for task in [*self._workers, *self._resyncs.values()]:
                    task.cancel()
            for transports in self._clients.values():
                for transport in transports:
                    await transport.aclose()
            for arbitration in self.arbitrations:
                await arbitration.aclose()
            if self.relay is not None:
                await self.relay.aclose()
        finally:
            self._tg = None
            self._peer_ctx = self._peer_ctx_now = None
            with contextlib.suppress(OSError):
                (s.data_dir / RUN_FILE).unlink()

    def _start_link(self, peer: str) -> None:
        """Start the outbox and link tests of one peer; a failure stays with that peer."""
        if self._tg is None:
            raise ConfigError("the station is not running")
        s = self.settings
        card = self.line.peers.get(peer)
        timing = Timing(s.link_test_interval_s, s.link_down_after_failures, s.peer_timeout_s)
        try:
            transports = self._transports(card, timing)
        except HotlineError as exc:
            log.error("no line to %s: %s", peer, exc)
            self._spawn(self._alarm(peer, exc.code, exc.message), f"alarm-{peer}")
            return
        if not transports:
            log.info("no path to %s (its card names no endpoint): receive-only", peer)
            return
        limits = PeerLimits(own_limits(s))
        self.recorder.register(peer, [t.path for t in transports])
        box = Outbox(
            self.line, transports, self.recorder, limits=limits, on_refused=self._on_refused
        )
        witness_lock = asyncio.Lock()
        testers = [
            LinkTester(
                self.line,
                transport,
                self.recorder,
                s.link_test_interval_s,
                on_missing=self._on_missing,
                witnessing=self.witnessing,
                limits=limits,
                on_reply=self._on_reply,
                witness_lock=witness_lock,
            )
            for transport in transports
        ]
        self._clients[peer] = transports
        self.outboxes[peer], self.path_testers[peer] = box, testers
        tasks = [self._tg.create_task(box.run(), name=f"outbox-{peer}")]
        tasks += [self._tg.create_task(t.run(), name=f"linktest-{peer}-{t.path}") for t in testers]
        self._link_tasks[peer] = tasks
        self._workers.extend(tasks)

    def _transports(self, card: SignedCard, timing: Timing) -> list[Transport]:
        """One transport per path in ``settings.paths``, most preferred first (none: the
        peer is receive-only)."""
        s = self.settings
        out: list[Transport] = []
        for path in s.paths:
            if path == "https" and card.card.endpoints:
                out.append(
                    PeerClient(
                        self.identity,
                        card,
                        timeout_s=s.peer_timeout_s,
                        link_test_timeout_s=timing.test_timeout_s,
                    )
                )
            elif path == "nats" and self.relay is not None:
                out.append(
                    self.relay.transport(
                        card.card.station_id,
                        timeout_s=s.peer_timeout_s,
                        link_test_timeout_s=timing.test_timeout_s,
                    )
                )
        return out

    async def _stop_link(self, peer: str) -> None:
        """Stop one peer's outbox and link tests (its queue stays in the store)."""
        tasks = self._link_tasks.pop(peer, [])
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = [t for t in self._workers if t not in tasks]
        box = self.outboxes.pop(peer, None)
        if box is not None:
            box.detach()
        self.path_testers.pop(peer, None)
        for transport in self._clients.pop(peer, []):
            await transport.aclose()

    def _peer_context(self) -> ssl.SSLContext:
        """A server context trusting the certificates of the peers in the book now; a
        certificate that cannot be trusted leaves that peer out, not the station."""
        ctx = tls.server_context(self.identity.tls_cert_pem, self.identity.tls_key_pem, [])
        cards = [self.line.peers.get(p) for p in self.line.peers.ids()]
        for card in [*cards, *self._removed.values()]:
            try:
                tls.add_trusted_peer(ctx, card.card.tls_cert_der)
            except HotlineError as exc:
                log.error("%s's certificate cannot be trusted: %s", card.card.station_id, exc)
        return ctx

    def _choose_peer_context(
        self, conn: ssl.SSLObject | ssl.SSLSocket, _name: str | None, ctx: ssl.SSLContext
    ) -> None:
        """Each handshake uses the newest trust (a re-keyed peer's old certificate is gone
        from it; the context uvicorn holds cannot forget a certificate)."""
        now = self._peer_ctx_now
        if now is not None and now is not ctx:
            conn.context = now

    def _refresh_trust(self) -> None:
        if self._peer_ctx is not None:
            fresh = self._peer_context()
            fresh.sni_callback = self._choose_peer_context
            self._peer_ctx_now = fresh

    async def add_peer(self, card_text: str, operator: str | None) -> SignedCard:
        """Add a peer while running: record it, trust its certificate, start its line."""
        card, unit = self.line.peer_add_unit(card_text, operator)
        await self.writer.submit(unit)
        self.line.peers.add(card)
        self._removed.pop(card.card.station_id, None)
        self._refresh_trust()
        self._start_link(card.card.station_id)
        return card

    async def remove_peer(self, station_id: str, operator: str | None) -> None:
        """Remove a peer while running: record it and stop its line. Its TLS handshake
        still succeeds, so what it sends is answered ``unknown_peer``."""
        card = self.line.peers.get(station_id)
        await self.writer.submit(peering.remove_unit(self.line, station_id, operator))
        self._removed[station_id] = card
        await self._stop_link(station_id)

    async def rekey_peer(self, card_text: str, operator: str | None) -> SignedCard:
        """Replace a peer's card while running: record it, restart its line on the new
        card, trust the new certificate (and no longer the old one)."""
        card, unit = peering.rekey_unit(self.line, card_text, operator)
        await self.writer.submit(unit)
        sid = card.card.station_id
        await self._stop_link(sid)
        self._refresh_trust()
        if self._tg is not None:
            self._start_link(sid)
        return card

    # --- one bad peer, restore from backup ---------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, object], name: str) -> asyncio.Task[None] | None:
        """Run ``coro`` in the station's task group; its failure is logged, never fatal."""
        if self._tg is None:
            coro.close()
            return None

        async def guarded() -> None:
            try:
                await coro
            except HotlineError as exc:
                log.error("%s failed: %s", name, exc)
            except Exception:
                log.exception("%s failed unexpectedly", name)

        task = self._tg.create_task(guarded(), name=name)
        self._workers.append(task)
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._workers.remove(task)

    async def _alarm(self, peer: str, code: str, detail: str) -> None:
        def unit(tx: WriteTx) -> None:
            raise_alarm(
                tx, self.line.events, operational.raise_alarm,
                kind="peer_unusable", severity="HIGH", peer=peer, ref=code,
                now_us=self.clock.now_us(),
                detail=f"no line to {peer} ({code}): {detail}; the station serves its other "
                "peers. Re-key it with a good card ('hotline peer rekey') or remove it",
            )  # fmt: skip

        await self.writer.submit(unit)

    async def _alarm_unusable(self) -> None:
        for bad in self.unusable:
            await self._alarm(bad.station_id, bad.code, bad.detail)

    def _on_reply(self, peer: str, reply: LinkTestReplyPayload) -> None:
        """The link tester's reply hook: learn where the peer stands, off its path."""
        if reply.held_highest is None:
            return
        running = self._resyncs.get(peer)
        if running is not None and not running.done():
            return
        task = self._spawn(self._take_reply(peer, reply), f"resync-{peer}")
        if task is not None:
            self._resyncs[peer] = task

    async def _take_reply(self, peer: str, reply: LinkTestReplyPayload) -> None:
        self._reply_seen[peer] = asyncio.get_running_loop().time()
        if reply.held_highest is None:
            return
        resumed = await self.resync.on_reply(peer, reply.held_contiguous or 0, reply.held_highest)
        box = self.outboxes.get(peer)
        if resumed is not None and box is not None:
            box.retry_now()

    def _on_refused(self, peer: str, code: str, entry_idx: int) -> None:
        """The outbox's refusal hook: a ``replay`` is a number the peer holds from before
        our restore: learn where it stands, then re-issue the envelope above it."""
        if code != "replay":
            return
        at = asyncio.get_running_loop().time()
        self._spawn(self._reissue(peer, entry_idx, at), f"reissue-{peer}-{entry_idx}")

    async def _reissue(self, peer: str, entry_idx: int, refused_at: float) -> None:
        lock = self._reissue_lock.setdefault(peer, asyncio.Lock())
        async with lock:
            testers = self.path_testers.get(peer, [])
            if testers and self._reply_seen.get(peer, -1.0) < refused_at:
                await testers[0].test_once()
            running = self._resyncs.get(peer)
            if running is not None:
                await asyncio.wait([running])
            await self.resync.reissue(peer, entry_idx)

    def _write_run_file(self, api_sock: socket.socket, peer_sock: socket.socket) -> None:
        host, port = api_sock.getsockname()[:2]
        phost, pport = peer_sock.getsockname()[:2]
        doc = {
            "pid": os.getpid(),
            "api": f"http://{host}:{port}",
            "peer": f"https://{phost}:{pport}",
            "station": self.identity.station_id,
        }
        tmp = self.settings.data_dir / (RUN_FILE + ".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(self.settings.data_dir / RUN_FILE)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the station owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP given explicitly: asyncio sets TCP_NODELAY on accepted connections only
    # for sockets that name it, and without it every response waits ~40 ms for a delayed ACK
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


def run(settings: Settings, out: TextIO | None = None) -> None:
    """Run a station in the foreground until interrupted. On PostgreSQL (or with
    ``standby``) the process first wins the election (hotline/standby.py)."""
    if settings.standby or not database.is_sqlite(settings.store_url):
        from hotline import standby

        standby.run(settings, out)
        return
    with station_lock(settings.data_dir):
        station = Station(settings)
        api_sock = bind(settings.api_host, settings.api_port)
        peer_sock = bind(settings.peer_host, settings.peer_port)

        def ready() -> None:
            if out is not None:
                doc = read_run_file(settings.data_dir) or {}
                out.write(
                    f"station {station.identity.station_id} up: api {doc.get('api')} "
                    f"peer {doc.get('peer')}\n"
                )
                out.flush()

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await station.serve(api_sock, peer_sock, ready, stop)

        try:
            asyncio.run(main())
        finally:
            station.close()


def add_peer_offline(settings: Settings, card_text: str, operator: str | None) -> SignedCard:
    """Add a peer to a station that is not running."""
    with station_lock(settings.data_dir):
        station = Station(settings)
        try:
            card, unit = station.line.peer_add_unit(card_text, operator)
            station.writer.run_sync(unit)
            return card
        finally:
            station.close()


def remove_peer_offline(settings: Settings, station_id: str, operator: str | None) -> None:
    """Remove a peer of a station that is not running."""
    with station_lock(settings.data_dir):
        station = Station(settings)
        try:
            station.writer.run_sync(peering.remove_unit(station.line, station_id, operator))
        finally:
            station.close()


def rekey_peer_offline(settings: Settings, card_text: str, operator: str | None) -> SignedCard:
    """Replace a peer's card on a station that is not running."""
    with station_lock(settings.data_dir):
        station = Station(settings)
        try:
            card, unit = peering.rekey_unit(station.line, card_text, operator)
            station.writer.run_sync(unit)
            return card
        finally:
            station.close()


def add_first_administrator(
    settings: Settings, username: str, display_name: str, password: str
) -> None:
    """Create the station's first administrator (``hotline init``) on a station that is
    not running; refused (``administrator_exists``) once one exists."""
    from hotline.service.roles import STATION_USERNAME, Role

    with station_lock(settings.data_dir):
        station = Station(settings)
        try:
            unit = station.officers.add_unit(
                STATION_USERNAME,
                username=username,
                display_name=display_name,
                roles=frozenset({Role.ADMINISTRATOR}),
                password=password,
                first=True,
            )
            result = station.writer.run_sync(unit)
            if isinstance(result, HotlineError):
                raise result
        finally:
            station.close()
