"""The ``hotline`` command end to end: two stations in temporary directories, set up,
paired, run and operated only through the installed CLI; its error paths; the demo."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from hotline.forkserver import Forked
from hotline.localnet import LocalStation, free_port, spawn_hotline
from hotline.station import TOKEN_FILE, read_run_file
from tests.integration.conftest import HOTLINE, terminate, wait_until
from tests.integration.conftest import cli_process as cli  # the installed command, end to end

pytestmark = pytest.mark.integration

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class CliStation:
    """A station made and run with the CLI. ``installed``: ``hotline run`` is the
    installed command (this file's end-to-end tests); otherwise ``python -m hotline run``
    from localnet (the fork server when the suite uses it)."""

    def __init__(self, root: Path, station_id: str, *, installed: bool = True) -> None:
        self.id = station_id
        self.installed = installed
        self.dir = root / station_id
        self.card = root / f"{station_id}.card"
        self.api_port, self.peer_port = free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | Forked | None = None

    def init_args(self) -> tuple[str | Path, ...]:
        return (
            "init",
            "--id",
            self.id,
            "--name",
            f"{self.id.capitalize()} watch",
            "--endpoint",
            f"https://127.0.0.1:{self.peer_port}",
            "--api-port",
            str(self.api_port),
            "--peer-port",
            str(self.peer_port),
            "-d",
            self.dir,
        )

    def run(self) -> None:
        out = self.dir.parent / f"{self.id}.out"
        out.write_bytes(b"")  # this run's output only
        if not self.installed:
            self.proc = spawn_hotline(["run", "-d", str(self.dir)], out)
        else:
            with open(out, "wb") as log:  # the child has its own copy
                self.proc = subprocess.Popen(
                    [str(HOTLINE), "run", "-d", str(self.dir)], stdout=log, stderr=subprocess.STDOUT
                )
        wait_until(
            f"'hotline run' of {self.id} to say it is up",
            lambda: out.read_text(errors="replace") if self.proc.poll() is None else "exited",  # type: ignore[union-attr]
            lambda text: f"station {self.id} up" in text or text == "exited",
            timeout=60,
        )
        assert self.proc.poll() is None, out.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
            self.proc = None


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[CliStation, CliStation]]:
    a, b = CliStation(tmp_path, "alpha"), CliStation(tmp_path, "bravo")
    try:
        yield a, b
    finally:
        for s in (a, b):
            if s.proc is not None:
                s.proc.kill()
                s.proc.wait()


def _api(data_dir: Path, path: str) -> Any:
    """Read a running station's operator API the way the CLI finds it (run file, token)."""
    run = read_run_file(data_dir)
    assert run is not None, f"no run file in {data_dir}"
    token = (data_dir / TOKEN_FILE).read_text().strip()
    r = httpx.get(run["api"] + path, headers={"authorization": f"Bearer {token}"}, trust_env=False)
    r.raise_for_status()
    return r.json()


def _ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r.stdout


def _failed(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode != 0, f"expected a failure, got exit 0:\n{r.stdout}"
    assert "Traceback" not in r.stderr, r.stderr
    return r.stderr + r.stdout


def _tampered(card_text: str) -> str:
    """The same card with its endpoint pointed elsewhere; signature left as it was."""
    outer = json.loads(card_text)
    body = json.loads(base64.b64decode(outer["body"]))
    body["endpoints"] = ["https://203.0.113.7:8471"]
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    outer["body"] = base64.b64encode(raw).decode()
    return json.dumps(outer, separators=(",", ":")) + "\n"


def _together(*calls: tuple[str | Path, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Run independent CLI commands at the same time (each one starts a Python)."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda args: cli(*args), calls))


def test_cli_end_to_end(two: tuple[CliStation, CliStation], tmp_path: Path) -> None:
    a, b = two
    fingerprints = {}
    for s, r in zip((a, b), _together(*(s.init_args() for s in (a, b))), strict=True):
        out = _ok(r)
        assert f"station {s.id} created" in out
        fingerprints[s.id] = re.search(r"fingerprint: ([\d ]+)", out).group(1).strip()  # type: ignore[union-attr]
    cards = _together(*(("card", "-d", s.dir, "--out", s.card) for s in (a, b)))
    for s, r in zip((a, b), cards, strict=True):
        assert f"card written to {s.card}" in _ok(r)
        assert fingerprints[s.id] in r.stderr
        assert json.loads(s.card.read_text())["hotline_card"] == 1

    bad = tmp_path / "bravo-tampered.card"
    bad.write_text(_tampered(b.card.read_text()))
    not_running, tampered = _together(
        ("status", "-d", a.dir), ("peer", "add", bad, "-d", a.dir, "--yes")
    )
    # status before the station runs: refused, and it says how to start it
    err = _failed(not_running)
    assert "no station is running" in err
    assert f"hotline run --data-dir {a.dir}" in err
    # a tampered card is refused and nothing is added
    err = _failed(tampered)
    assert "error:" in err
    assert "added" not in err
    # a safety number not confirmed: not added
    err = _failed(cli("peer", "add", b.card, "-d", a.dir, input_text="n\n"))
    assert "not_confirmed" in err

    numbers = []
    added = _together(
        *(("peer", "add", o.card, "-d", s.dir, "--yes", "--operator", "Lt. Ko") for s, o in
          ((a, b), (b, a)))
    )  # fmt: skip
    for other, r in zip((b, a), added, strict=True):
        out = _ok(r)
        assert f"peer {other.id} added" in out
        assert fingerprints[other.id] in out
        numbers.append(re.search(r"safety number:\s+([\d ]+)", out).group(1).strip())  # type: ignore[union-attr]
    assert numbers[0] == numbers[1], "both sides must read the same safety number"
    err = _failed(cli("peer", "add", b.card, "-d", a.dir, "--yes"))
    assert "peer_exists" in err

    a.run()
    b.run()

    out = _ok(cli("send", "bravo", "Convoy at grid 37U DQ 12345 at 0400Z", "-p", "IMMEDIATE",
                  "-d", a.dir))  # fmt: skip
    m = re.search(rf"queued IMMEDIATE message ({UUID}) to bravo \(sequence 1\)", out)
    assert m, out
    mid = m.group(1)

    wait_until(
        "the message to reach bravo",
        lambda: _api(b.dir, f"/api/v1/messages/{mid}")["state"],
        lambda state: state == "received",
    )
    inbox = _ok(cli("inbox", "-d", b.dir))
    assert mid[:8] in inbox
    assert "Convoy at grid 37U DQ 12345" in inbox
    assert "IMMEDIATE" in inbox
    assert "received" in inbox

    out = _ok(cli("ack", mid[:8], "-d", b.dir))
    assert f"acknowledged {mid} as station" in out

    wait_until(
        "the acknowledgement to reach alpha",
        lambda: _api(a.dir, f"/api/v1/messages/{mid}")["state"],
        lambda state: state == "acknowledged",
    )
    listed, status, test_ab, test_ba, again, unknown_peer, bad_prec, bad_prefix, bad_test = (
        _together(
            ("inbox", "-d", a.dir),
            ("status", "-d", a.dir),
            ("link-test", "bravo", "-d", a.dir),
            ("link-test", "alpha", "-d", b.dir),
            ("ack", mid[:8], "-d", b.dir),
            ("send", "charlie", "hello?", "-d", a.dir),
            ("send", "bravo", "x", "-p", "URGENT", "-d", a.dir),
            ("ack", "ffffffff", "-d", b.dir),
            ("link-test", "charlie", "-d", a.dir),
        )
    )
    out = _ok(listed)
    assert mid[:8] in out
    assert "by station" in out

    out = _ok(status)
    assert "station alpha (Alpha watch)" in out
    assert fingerprints["alpha"] in out
    assert re.search(r"sent 1 · received 0 · queued 0", out), out
    assert "bravo" in out

    assert re.search(r"link to bravo: UP rtt [\d.]+ ms", _ok(test_ab)), test_ab.stdout
    assert "link to alpha: UP" in _ok(test_ba)

    # error paths against running stations
    assert "already_acknowledged" in _failed(again)
    err = _failed(unknown_peer)
    assert "charlie" in err
    assert "hotline peer add" in err  # says what to do
    assert "precedence" in _failed(bad_prec)
    assert "0 received messages start with" in _failed(bad_prefix)
    assert "(not_found)" in _failed(bad_prefix)
    assert "hotline inbox" in _failed(bad_prefix)
    assert "charlie" in _failed(bad_test)

    # after kill -9 the run file is stale: the CLI still says what to do
    assert a.proc is not None
    a.proc.kill()
    a.proc.wait()
    a.proc = None
    err = _failed(cli("status", "-d", a.dir))
    assert "hotline run" in err


def test_demo_once_keeps_the_stations_and_refuses_to_reuse_the_directory(tmp_path: Path) -> None:
    where = tmp_path / "demo"
    r = cli("demo", "--once", "--dir", where, timeout=180)
    assert r.returncode == 0, f"stdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}"
    for name in ("alpha", "bravo"):
        for kept in ("station.json", "hotline.toml", "store.db", "api-token"):
            assert (where / name / kept).is_file(), f"{name}/{kept} missing after the demo"
    assert "safety number alpha–bravo" in r.stdout
    assert "acknowledged" in r.stdout
    flat = " ".join(r.stdout.split())
    # people on watch: two channels, a facilitator, two officers, an escalation, a record
    assert "requested by olena, approved by taras, delivered to bravo" in flat
    assert "escalation at alpha: step 1 to senior_watch_officer (local, raised)" in flat
    assert "escalation at bravo: step 1 to senior_watch_officer (peer, raised)" in flat
    assert "to bravo delivered, icrc delivered" in flat
    assert "passed to 3rd brigade operations cell by mykola" in flat

    # each station's console and a login made for it; the login works once the station
    # runs again (with --once the demo stops its stations)
    consoles = dict(
        (m[0], m[1:])
        for m in re.findall(
            r"console (alpha|bravo|icrc): (http://127\.0\.0\.1:(\d+)/) login: officer / (\S+)",
            flat,
        )
    )
    assert sorted(consoles) == ["alpha", "bravo", "icrc"], flat[-2000:]
    assert len({password for _url, _port, password in consoles.values()}) == 3
    url, port, password = consoles["alpha"]
    alpha = LocalStation("alpha", where / "alpha", int(port), free_port())
    alpha.start(wait_s=60)
    try:
        with httpx.Client(base_url=url, trust_env=False, follow_redirects=False) as c:
            assert c.get("/").headers["location"] == "/login"
            r = c.post("/api/v1/session", json={"username": "officer", "password": password})
            assert r.status_code == 200, r.text
            c.headers["Cookie"] = f"hotline_session={r.cookies['hotline_session']}"
            page = c.get("/")
            assert page.status_code == 200
            assert "Duty officer at alpha" in page.text
    finally:
        alpha.stop()

    again = cli("demo", "--once", "--dir", where, timeout=60)
    assert again.returncode == 2, again.stdout + again.stderr
    assert "exists" in again.stderr
    assert "choose an empty --dir" in again.stderr


def test_run_says_what_to_do_when_it_cannot_start(tmp_path: Path) -> None:
    """Where there is no station, or its port is taken: a clear error, exit 1, no
    traceback (before: a FileNotFoundError traceback for the missing station)."""
    import socket

    nowhere = tmp_path / "none"
    err = _failed(cli("run", "-d", nowhere))
    assert f"no station in {nowhere}" in err
    assert "hotline init" in err
    assert not nowhere.exists()

    s = CliStation(tmp_path, "alpha")
    _ok(cli(*s.init_args()))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", s.api_port))
        taken.listen(1)
        r = cli("run", "-d", s.dir)
    err = _failed(r)
    assert "cannot_start" in err
    assert f"127.0.0.1:{s.api_port}" in err
    assert "api_port" in err


def test_demo_paths_fails_over_to_the_relay_and_carries_a_bundle(tmp_path: Path) -> None:
    """``hotline demo --paths``: real stations on HTTPS and the NATS relay, a cut cable,
    the failover, the cable mended, and a bundle file carried by hand."""
    from tests.relay.conftest import NATS_URL, require_nats

    require_nats()
    r = cli("demo", "--paths", "--once", "--relay", NATS_URL, "--dir", tmp_path / "p",
            timeout=240)  # fmt: skip
    assert r.returncode == 0, f"stdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}"
    flat = " ".join(r.stdout.split())
    carried = re.findall(r"│ [0-9a-f]{8} │ delivered │ (https|nats|bundle) ", r.stdout)
    assert carried == ["https"] * 3 + ["nats"] * 5 + ["https"] + ["bundle"] * 2
    assert "while cut: line UP; paths https DOWN, nats UP" in flat
    assert "stored [10, 11] at bravo; the answer recorded 2 receipts at alpha" in flat
    assert "imported again: refused, 422 bundle_imported" in flat
    assert (tmp_path / "p" / "alpha-to-bravo.bundle").is_file()


def test_demo_paths_without_a_relay_says_what_to_do(tmp_path: Path) -> None:
    from hotline.localnet import free_port

    r = cli("demo", "--paths", "--once", "--relay", f"nats://127.0.0.1:{free_port()}",
            "--dir", tmp_path / "p", timeout=60)  # fmt: skip
    assert r.returncode == 1
    assert "no NATS relay answers" in r.stderr
    assert "--relay URL" in " ".join(r.stderr.split())
