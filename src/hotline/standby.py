"""Running a station as one process of an active/standby pair on PostgreSQL.

Owns the election loop around ``Station``: take the election lock (store/leader.py); while
another process holds it, serve 503 naming the active on both ports (and /health) and
try again every ``takeover_poll_s``; once held, promote (the fencing epoch grows by one)
and only then build the station exactly as a fresh start does (every in-memory state,
Merkle frontier, registry, officers, peer book, outbox, is loaded after the promotion,
so nothing an old active wrote is missed), fence its writer with the epoch, and serve.
While active, the lock's session is checked every ``takeover_poll_s``; when it is lost
or a commit is fenced, the process stops serving and exits with ``fenced`` (a supervisor
restarts it, as a standby). Must not touch: the station's parts (Station builds them),
SQL (store/leader.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO

import uvicorn

from hotline.api.standby import ActiveProcess, Health, create_standby_app
from hotline.clock import SystemClock
from hotline.crypto import tls
from hotline.crypto.keys import load_station
from hotline.errors import ConfigError, HotlineError
from hotline.service import peering
from hotline.service.peers import PeerBook
from hotline.settings import Settings
from hotline.store import database, leader
from hotline.store.leader import ElectionLock, Fence, FencedError

log = logging.getLogger(__name__)


def process_name(settings: Settings) -> str:
    return settings.process_name or socket.gethostname()


def url_of(scheme: str, sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{scheme}://{host}:{port}"


class Election:
    """One process's view: its role, its epoch once promoted, the active's record."""

    def __init__(self, settings: Settings) -> None:
        if database.is_sqlite(settings.store_url):
            raise ConfigError(
                "standby needs PostgreSQL: a SQLite store is one process's",
                code="standby_needs_postgresql",
                hint="set database_url to a PostgreSQL database, or standby = false",
            )
        if settings.leader_lease_s <= settings.takeover_poll_s:
            raise ConfigError(
                "leader_lease_s must be longer than takeover_poll_s",
                hint="the active proves it holds the lock every takeover_poll_s",
            )
        self.settings = settings
        self.name = process_name(settings)
        self.lock = ElectionLock(settings.store_url, settings.leader_lease_s)
        self.role: str = "standby"
        self.epoch: int | None = None
        self.active: ActiveProcess | None = None
        #: when the lock was last proved ours (time.monotonic)
        self.beat_at = 0.0
        self._engine = database.create(settings.store_url)

    def health(self) -> Health:
        """This process's role; an active that has not proved its lock within the lease
        (it was paused, and its heartbeat has not run since) does not claim it."""
        role = self.role
        if role == "active" and time.monotonic() - self.beat_at > self.settings.leader_lease_s:
            role = "stepped_down"
        return Health(role=role, epoch=self.epoch, process=self.name, active=self.active)

    def migrate(self) -> None:
        database.migrate(self._engine)  # under its own lock: a pair starting together

    def refresh_active(self) -> None:
        with self._engine.connect() as conn:
            now = leader.active(conn)
        self.active = (
            None
            if now is None
            else ActiveProcess(
                process=now.process_name, api=now.api_url, peer=now.peer_url, epoch=now.epoch
            )
        )

    def promote(self, api_url: str, peer_url: str, now_us: int) -> int:
        with self._engine.begin() as conn:
            epoch = leader.promote(conn, self.name, api_url, peer_url, now_us)
        self.epoch, self.role = epoch, "active"
        self.active = ActiveProcess(process=self.name, api=api_url, peer=peer_url, epoch=epoch)
        log.warning("%s is the active process of the station (epoch %d)", self.name, epoch)
        return epoch

    def close(self) -> None:
        self.lock.close()
        self._engine.dispose()


def _peer_tls(settings: Settings) -> ssl.SSLContext:
    """The standby's peer endpoint: the station's certificate, the peers' recorded cards
    trusted (read only), so that a peer reaching it is told 503 naming the active."""
    pw = settings.passphrase.get_secret_value() if settings.passphrase else None
    identity = load_station(settings.data_dir, pw)
    engine = database.create(settings.store_url)
    try:
        book = PeerBook()
        with engine.connect() as conn:
            peering.load_book(conn, book)
    finally:
        engine.dispose()
    certs = [book.get(p).card.tls_cert_der for p in book.ids()]
    ctx = tls.server_context(identity.tls_cert_pem, identity.tls_key_pem, [])
    for der in certs:
        with contextlib.suppress(HotlineError):
            tls.add_trusted_peer(ctx, der)
    return ctx


async def wait_as_standby(
    election: Election,
    api_sock: socket.socket,
    peer_sock: socket.socket,
    stop: asyncio.Event,
    ready: Callable[[], None] | None = None,
    won_hook: Callable[[], None] | None = None,
) -> bool:
    """Serve 503 on both ports until the lock is ours (True) or ``stop`` (False). The
    servers get duplicates of the sockets: closing them leaves the listening sockets open
    for the station, and connections arriving meanwhile wait in the backlog."""
    s = election.settings
    app = create_standby_app(election.health)
    peer_ctx = await asyncio.to_thread(_peer_tls, s)
    servers = [
        _Server(
            uvicorn.Config(
                app,
                log_level="warning",
                lifespan="off",
                access_log=False,
                timeout_graceful_shutdown=1,
                ssl_context_factory=factory,
            )
        )
        for factory in (None, lambda _c, _d: peer_ctx)
    ]
    won = False
    async with asyncio.TaskGroup() as tg:
        tg.create_task(servers[0].serve(sockets=[api_sock.dup()]), name="standby-api")
        tg.create_task(servers[1].serve(sockets=[peer_sock.dup()]), name="standby-peer")
        log.warning("%s is a standby: waiting for the election lock", election.name)
        if ready is not None:
            ready()
        while not stop.is_set():
            try:
                won = await asyncio.to_thread(election.lock.try_acquire)
                if won:
                    log.warning("%s won the election lock: taking over", election.name)
                    if won_hook is not None:
                        won_hook()  # keep the lock from now on, while the servers stop
                    break
                await asyncio.to_thread(election.refresh_active)
            except HotlineError as exc:
                log.error("standby: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), s.takeover_poll_s)
        for srv in servers:
            srv.should_exit = True
    return won


class Heartbeat:
    """The active's proof that it still holds the election lock: a thread of its own (a
    busy event loop, or building the station, must not let the lease run out) asks the
    lock's session every ``takeover_poll_s``; when it is gone, ``on_lost`` is called once
    and the thread ends."""

    def __init__(self, election: Election, on_lost: Callable[[], object]) -> None:
        self._election = election
        self._on_lost = on_lost
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hotline-election", daemon=True)

    def start(self) -> None:
        self._election.beat_at = time.monotonic()  # the lock was just won
        self._thread.start()

    def _run(self) -> None:
        election = self._election
        while not self._stop.wait(election.settings.takeover_poll_s):
            try:
                election.lock.heartbeat()
                election.beat_at = time.monotonic()
            except FencedError as exc:
                log.critical("%s lost the election lock (%s): stepping down", election.name, exc)
                election.role = "stepped_down"
                self._on_lost()
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


def run(settings: Settings, out: TextIO | None = None) -> None:
    """Run one process of the station on PostgreSQL: active at once when the lock is free;
    otherwise a standby (``standby = true``) or refused (``station_running``)."""
    from hotline import station as st

    election = Election(settings)
    with st.station_lock(settings.data_dir):
        election.migrate()
        api_sock = st.bind(settings.api_host, settings.api_port)
        peer_sock = st.bind(settings.peer_host, settings.peer_port)
        stepped_down = False

        def say(text: str) -> None:
            if out is not None:
                out.write(text + "\n")
                out.flush()

        async def main() -> None:
            nonlocal stepped_down
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            lost = asyncio.Event()
            heartbeat = Heartbeat(election, lambda: loop.call_soon_threadsafe(lost.set))
            won = await asyncio.to_thread(election.lock.try_acquire)
            if won:
                heartbeat.start()
            else:
                if not settings.standby:
                    await asyncio.to_thread(election.refresh_active)
                    active = election.active.process if election.active else "another process"
                    raise ConfigError(
                        f"the station is active in {active}",
                        code="station_running",
                        hint="set standby = true to run this process as its standby",
                    )
                await asyncio.to_thread(election.refresh_active)
                won = await wait_as_standby(
                    election,
                    api_sock,
                    peer_sock,
                    stop,
                    lambda: say(f"station standby {election.name}: waiting to take over"),
                    heartbeat.start,
                )
                if not won:
                    return
            # the lock is ours: keep it, promote, then load everything (nothing an old
            # active commits can land after the load: its commits are fenced from here on)
            try:
                await serve_active(loop, stop, lost)
            finally:
                heartbeat.stop()
            stepped_down = lost.is_set()

        async def serve_active(
            loop: asyncio.AbstractEventLoop, stop: asyncio.Event, lost: asyncio.Event
        ) -> None:
            clock = SystemClock()
            await asyncio.to_thread(
                election.promote,
                url_of("http", api_sock),
                url_of("https", peer_sock),
                clock.now_us(),
            )
            station = await asyncio.to_thread(st.Station, settings)
            log.warning("%s loaded the station: serving", election.name)
            station.writer.fence = Fence(election.epoch or 0, settings.leader_lease_s)

            def fenced(_exc: FencedError) -> None:
                election.role = "stepped_down"
                loop.call_soon_threadsafe(lost.set)

            station.writer.on_fenced.append(fenced)
            both = asyncio.Event()

            async def either() -> None:
                waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(lost.wait())]
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for w in waiters:
                    w.cancel()
                both.set()

            def ready() -> None:
                log.warning("%s is serving as the active (epoch %s)", election.name, election.epoch)
                doc = st.read_run_file(settings.data_dir) or {}
                say(
                    f"station {station.identity.station_id} up (active {election.name}, epoch "
                    f"{election.epoch}): api {doc.get('api')} peer {doc.get('peer')}"
                )

            try:
                async with asyncio.TaskGroup() as tg:
                    watcher = tg.create_task(either(), name="election-stop")
                    await station.serve(api_sock, peer_sock, ready, both, health=election.health)
                    watcher.cancel()
            finally:
                station.close()

        try:
            asyncio.run(main())
        finally:
            election.close()
        if stepped_down:
            raise FencedError(
                f"{election.name} stepped down: another process of the station took over",
                hint="it is the active now; restart this one to serve as its standby",
            )


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
