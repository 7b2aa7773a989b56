"""Officers with real station processes and the installed CLI, on SQLite and PostgreSQL:
``hotline init --admin``, ``hotline login``, ``hotline officer add``, a send as that
officer, and the peer shows the officer's name and role; the administrator may not send;
logout revokes the token."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.integration.conftest import PgDatabases, cli, cli_process, db, wait_until
from tests.integration.test_cli import CliStation, _api, _failed, _ok, _together

pytestmark = pytest.mark.integration
__all__ = ["db"]


def test_init_login_add_an_officer_send_and_the_peer_sees_who(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db: str
) -> None:
    a = CliStation(tmp_path, "alpha", installed=False)
    b = CliStation(tmp_path, "bravo", installed=False)
    dbs = PgDatabases() if db == "postgresql" else None
    if dbs is not None:  # init keeps a settings file it finds: the store is PostgreSQL
        for s in (a, b):
            s.dir.mkdir(parents=True)
            (s.dir / "hotline.toml").write_text(
                f"api_port = {s.api_port}\npeer_port = {s.peer_port}\n"
                f'database_url = "{dbs.new()}"\n'
            )
    root_pw, duty_pw = tmp_path / "root.pw", tmp_path / "duty.pw"
    root_pw.write_text("root passphrase, long enough\n")
    duty_pw.write_text("duty officer passphrase\n")
    root_token, duty_token = tmp_path / "root.token", tmp_path / "duty.token"
    try:
        admin = ("--admin", "root", "--admin-name", "Station admin", "--password-file", root_pw)
        for r in _together(*((*s.init_args(), *admin) for s in (a, b))):
            assert "administrator root created" in _ok(r)
        again = _failed(cli(*a.init_args(), *admin))
        assert "administrator_exists" in again
        _together(*(("card", "-d", s.dir, "--out", s.card) for s in (a, b)))
        for r in _together(*(("peer", "add", o.card, "-d", s.dir, "--yes")
                             for s, o in ((a, b), (b, a)))):  # fmt: skip
            _ok(r)
        a.run()
        b.run()

        wrong = tmp_path / "wrong.pw"
        wrong.write_text("not the root passphrase\n")
        err = _failed(cli("login", "-u", "root", "--password-file", wrong, "-d", a.dir,
                          "--token-file", root_token))  # fmt: skip
        assert "login_failed" in err
        assert not root_token.exists()
        out = _ok(cli("login", "-u", "root", "--password-file", root_pw, "-d", a.dir,
                      "--token-file", root_token))  # fmt: skip
        assert "logged in as root on alpha" in out
        assert stat.S_IMODE(os.stat(root_token).st_mode) == 0o600
        out = _ok(cli("officer", "add", "ivanova", "--name", "Maj. Ivanova", "-r",
                      "watch_officer", "--password-file", duty_pw, "-d", a.dir,
                      "--token-file", root_token))  # fmt: skip
        assert "added ivanova (Maj. Ivanova) watch_officer enabled" in out
        listed = _ok(cli_process("officer", "list", "-d", a.dir, "--token-file", root_token))
        assert "ivanova" in listed
        assert "root" in listed

        monkeypatch.setenv("HOTLINE_TOKEN_FILE", str(root_token))
        err = _failed(cli("send", "bravo", "from the admin", "-d", a.dir))
        assert "forbidden" in err
        assert "watch_officer" in err

        out = _ok(cli("login", "-u", "ivanova", "--password-file", duty_pw, "-d", a.dir,
                      "--token-file", duty_token))  # fmt: skip
        monkeypatch.setenv("HOTLINE_TOKEN_FILE", str(duty_token))
        whoami = _ok(cli("officer", "whoami", "-d", a.dir))
        assert "ivanova (Maj. Ivanova) via token" in whoami
        out = _ok(cli("send", "bravo", "Convoy at 0400Z", "-p", "IMMEDIATE", "-d", a.dir))
        mid = out.split("message ", 1)[1].split()[0]
        got = wait_until(
            "the message to reach bravo",
            lambda: _api(b.dir, f"/api/v1/messages/{mid}"),
            lambda m: m["state"] == "received",
        )
        assert got["officer"] == {"username": "ivanova", "display_name": "Maj. Ivanova",
                                  "role": "watch_officer"}  # fmt: skip
        assert _api(a.dir, f"/api/v1/messages/{mid}")["operator"] == "ivanova"

        out = _ok(cli("logout", "-d", a.dir))
        assert "logged out" in out
        assert not duty_token.exists()
        [revoked] = _api(a.dir, "/api/v1/tokens?username=ivanova")
        assert revoked["revoked_at_us"] is not None
    finally:
        for s in (a, b):
            s.stop()
        if dbs is not None:
            dbs.close()
