"""Fixtures of the integration tests: real station processes on loopback, real TLS,
real stores (SQLite files, or fresh PostgreSQL databases).

``net`` builds stations with ``hotline.localnet`` and kills whatever is still running
at teardown (kill -9 is fast, and the stores must cope with it anyway). ``db`` runs a
test once per store kind. ``wait_until`` is the one way to wait for a condition: it
polls, and fails with what it last saw when the time is up. No test asserts a timing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from hotline import localnet
from hotline.errors import HotlineError
from hotline.forkserver import Forked
from hotline.localnet import LocalStation
from tests.conftest import (
    migrated_sqlite,
    new_migrated_pg_database,
    release_migrated_pg_database,
    require_pg,
)

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
HOTLINE = ROOT / ".venv" / "bin" / "hotline"

#: settings every integration station gets unless a test overrides them: the operator
#: API's rate limit is raised so that a stream of thousands of sends is not throttled.
BASE_SETTINGS: dict[str, Any] = {"api_rate_per_s": 100_000.0}

#: settings of a fast-retrying line: short backoff, frequent link tests
FAST_LINE: dict[str, Any] = {
    "link_test_interval_s": 0.5,
    "link_down_after_failures": 2,
    "retry_base_s": 0.1,
    "retry_max_s": 1.0,
}


def wait_until(
    what: str,
    probe: Callable[[], T],
    until: Callable[[T], bool] = bool,
    *,
    timeout: float = 60.0,
    interval: float = 0.1,
) -> T:
    """Poll ``probe`` until ``until(value)``; fail naming ``what`` and the last value seen.

    Transport errors and API errors while polling count as "not yet" (a station may be
    restarting); they are shown in the failure message if they are the last thing seen.
    """
    deadline = time.monotonic() + timeout
    last: Any = "<never probed>"
    while True:
        try:
            value = probe()
        except (httpx.HTTPError, HotlineError) as exc:
            last = exc
        else:
            if until(value):
                return value
            last = value
        if time.monotonic() >= deadline:
            shown = repr(last)
            if len(shown) > 1500:
                shown = shown[:1500] + "..."
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {shown}")
        time.sleep(interval)


class PgDatabases:
    """PostgreSQL databases at the newest migration on demand (tests/conftest.py's pool:
    a station finds nothing to migrate), all given back on ``close``."""

    def __init__(self) -> None:
        require_pg()
        self._urls: list[str] = []

    def new(self) -> str:
        url = new_migrated_pg_database()
        self._urls.append(url)
        return url

    def close(self) -> None:
        for url in self._urls:
            release_migrated_pg_database(url)
        self._urls.clear()


@dataclass
class Net:
    """Stations of one test, on one kind of store."""

    root: Path
    db: str
    pg: PgDatabases | None = None
    stations: list[LocalStation] = field(default_factory=list)

    def station(self, station_id: str, **settings: Any) -> LocalStation:
        merged = {**BASE_SETTINGS, **settings}
        if self.pg is not None:
            merged["database_url"] = self.pg.new()
        st = localnet.make_station(self.root, station_id, settings=merged)
        if "database_url" not in merged:  # a copy of a migrated store: nothing to migrate
            migrated_sqlite(st.data_dir / "store.db")
        self.stations.append(st)
        return st

    def pair(
        self, a_settings: dict[str, Any] | None = None, b_settings: dict[str, Any] | None = None
    ) -> tuple[LocalStation, LocalStation]:
        """alpha and bravo, paired (not started)."""
        a = self.station("alpha", **(a_settings or {}))
        b = self.station("bravo", **(b_settings or {}))
        localnet.pair(a, b)
        return a, b

    def close(self) -> None:
        for st in self.stations:
            with contextlib.suppress(Exception):
                st.kill()
        if self.pg is not None:
            self.pg.close()


def _make_net(root: Path, db: str) -> Net:
    return Net(root, db, PgDatabases() if db == "postgresql" else None)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> str:
    """The kind of store of every station in the test."""
    kind: str = request.param
    if kind == "postgresql":
        require_pg()
    return kind


@pytest.fixture
def net(tmp_path: Path, db: str) -> Iterator[Net]:
    n = _make_net(tmp_path, db)
    try:
        yield n
    finally:
        n.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_net(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Net]:
    """Like ``net``, shared by the tests of one module (for stations that are only read)."""
    kind: str = request.param
    n = _make_net(tmp_path_factory.mktemp(f"net-{kind}"), kind)
    try:
        yield n
    finally:
        n.close()


# --- small helpers the tests share -----------------------------------------------------


def stop_station(st: LocalStation, grace_s: float = 5.0) -> None:
    """SIGTERM, and SIGKILL if the station has not exited after ``grace_s``.

    The grace is short on purpose: tests that only need the peer gone should not wait
    LocalStation.stop's default 20 s if a stop hangs (test_lifecycle.py checks that a
    stop does not hang).
    """
    st.stop(timeout=grace_s)


def status(st: LocalStation) -> dict[str, Any]:
    result: dict[str, Any] = st.api("GET", "/api/v1/status")
    return result


def counts(st: LocalStation) -> dict[str, int]:
    result: dict[str, int] = status(st)["counts"]
    return result


def link_of(st: LocalStation, peer: str) -> dict[str, Any]:
    for ln in st.api("GET", "/api/v1/link"):
        if ln["peer"] == peer:
            return dict(ln)
    raise AssertionError(f"{st.station_id} has no link to {peer}")


def send(st: LocalStation, peer: str, text: str, **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = st.api(
        "POST", "/api/v1/messages", json={"peer": peer, "text": text, **fields}
    )
    return result


def send_many(
    st: LocalStation, bodies: list[dict[str, Any]], workers: int = 8
) -> list[dict[str, Any]]:
    """Send every body (``peer``, ``text``, ...) concurrently; each must be accepted (201)."""

    def one(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
        r = client.post("/api/v1/messages", json=body)
        assert r.status_code == 201, r.text
        result: dict[str, Any] = r.json()
        return result

    with st.client() as client, ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda body: one(client, body), bodies))


def messages(st: LocalStation, **params: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = st.api(
        "GET", "/api/v1/messages", params={"limit": 1000, **params}
    )
    return result


def message(st: LocalStation, message_id: str) -> dict[str, Any]:
    result: dict[str, Any] = st.api("GET", f"/api/v1/messages/{message_id}")
    return result


def alarms(st: LocalStation) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = st.api("GET", "/api/v1/alarms")
    return result


_CLI_ENV = {"COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}
_in_process = threading.Lock()


def cli(
    *args: str | Path, timeout: float = 60, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a ``hotline`` command in this process (Typer's CliRunner: no interpreter to
    start, no imports to repeat), wide columns so Rich does not wrap ids; the answer has
    the shape of ``cli_process``'s. An exception the command let through is appended to
    stderr as its traceback, as the installed command would print it. ``timeout`` is
    for ``cli_process``: a command here is bounded by the test's timeout. One command at
    a time (the runner swaps ``sys.stdout``): use ``cli_process`` for commands at once."""
    from typer.testing import CliRunner

    from hotline.cli import app, common

    argv = [str(a) for a in args]
    consoles = (common.console, common.err_console)
    with _in_process:
        # the consoles took their width when imported (xdist workers have COLUMNS=80)
        widths = [c._width for c in consoles]
        for c in consoles:
            c.width = int(_CLI_ENV["COLUMNS"])
        try:
            r = CliRunner().invoke(
                app, argv, input=input_text, env={**_CLI_ENV, "HOTLINE_DATA_DIR": None},
                prog_name="hotline",
            )  # fmt: skip
        finally:
            for c, width in zip(consoles, widths, strict=True):
                c._width = width
    stderr = r.stderr
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        stderr += "".join(traceback.format_exception(r.exception))
    return subprocess.CompletedProcess(["hotline", *argv], r.exit_code, r.stdout, stderr)


def cli_process(
    *args: str | Path, timeout: float = 60, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``hotline`` command (a process of its own, as a user runs it):
    the smoke test of each command group, and commands run at the same time."""
    env = {**os.environ, **_CLI_ENV}
    env.pop("HOTLINE_DATA_DIR", None)
    return subprocess.run(
        [str(HOTLINE), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        input=input_text,
        check=False,
    )


def terminate(proc: subprocess.Popen[Any] | Forked, grace_s: float = 5.0) -> None:
    """SIGTERM a process we started, SIGKILL it after ``grace_s``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- station logs in failure reports --------------------------------------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    rep = yield
    if rep.when == "call" and rep.failed:
        for name in ("net", "module_net"):
            n = item.funcargs.get(name) if hasattr(item, "funcargs") else None
            if isinstance(n, Net):
                for st in n.stations:
                    log = st.data_dir / "station.log"
                    if log.exists():
                        tail = log.read_text(errors="replace")[-3000:]
                        rep.sections.append((f"station.log of {st.station_id}", tail))
    return rep
