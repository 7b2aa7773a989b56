"""Officers' accounts through the API, on SQLite and PostgreSQL: login and the session
cookie, CSRF, per-account backoff, tokens (expiry, revocation), disable and enable,
passwords, TOTP, the record of every change (without secrets) and its rebuild."""

from __future__ import annotations

import json
from typing import Any

import pyotp
import sqlalchemy as sa

from hotline.service.roles import Role
from hotline.store import schema
from tests.officers.conftest import (
    PASSWORD,
    STATION_AUTH,
    Desk,
    error_of,
    run_pair,
    with_desks,
)
from tests.service.conftest import Pair, ledger_actions

__all__ = ["run_pair"]


async def login(c: Any, username: str, password: str = PASSWORD, **kw: Any) -> Any:
    return await c.post("/api/v1/session", json={"username": username, "password": password, **kw})


def session_headers(r: Any) -> dict[str, str]:
    sid = r.cookies.get("hotline_session") or _cookie(r)
    return {"cookie": f"hotline_session={sid}", "x-csrf-token": r.json()["csrf_token"]}


def _cookie(r: Any) -> str:
    header = r.headers["set-cookie"]
    return str(header.split(";", 1)[0].split("=", 1)[1])


def test_login_opens_a_strict_session_and_unsafe_requests_need_the_csrf_token(
    run_pair: Any,
) -> None:
    async def scenario(p: Pair, alpha: Desk, _b: Desk) -> None:
        await alpha.officer("ivanova", Role.WATCH_OFFICER, name="Maj. Ivanova")
        async with alpha.client() as c:
            r = await login(c, "ivanova")
            assert r.status_code == 200, r.text
            cookie = r.headers["set-cookie"]
            flags = {f.strip().lower() for f in cookie.split(";")[1:]}
            assert {"secure", "httponly", "samesite=strict", "path=/"} <= flags, cookie
            opened = r.json()
            assert opened["officer"]["username"] == "ivanova"
            assert opened["officer"]["via"] == "session"
            h = session_headers(r)
            only_cookie = {"cookie": h["cookie"]}
            me = await c.get("/api/v1/me", headers=only_cookie)  # a read needs no CSRF token
            assert me.json()["display_name"] == "Maj. Ivanova"
            body = {"peer": "bravo", "text": "hello"}
            r = await c.post("/api/v1/messages", json=body, headers=only_cookie)
            assert (r.status_code, error_of(r)["code"]) == (403, "csrf")
            wrong = {**only_cookie, "x-csrf-token": "x" * 43}
            r = await c.post("/api/v1/messages", json=body, headers=wrong)
            assert (r.status_code, error_of(r)["code"]) == (403, "csrf")
            r = await c.post("/api/v1/messages", json=body, headers=h)
            assert r.status_code == 201, r.text
            r = await c.delete("/api/v1/session", headers=only_cookie)
            assert (r.status_code, error_of(r)["code"]) == (403, "csrf")
            r = await c.delete("/api/v1/session", headers=h)
            assert r.status_code == 200
            assert "hotline_session=" in r.headers["set-cookie"]
            r = await c.get("/api/v1/me", headers=only_cookie)
            assert (r.status_code, error_of(r)["code"]) == (401, "unauthorized")
        with p.alpha.read_engine.connect() as conn:
            rows = conn.execute(sa.select(schema.officer_sessions)).all()
        assert rows == []  # logged out: gone from the store too

    with_desks(run_pair, scenario)


def test_sessions_end_when_idle_or_expired(run_pair: Any) -> None:
    async def scenario(p: Pair, alpha: Desk, _b: Desk) -> None:
        await alpha.officer("ko", Role.AUDITOR)
        async with alpha.client() as c:
            h = session_headers(await login(c, "ko"))
            p.clock.advance(25 * 60)
            assert (await c.get("/api/v1/me", headers=h)).status_code == 200
            p.clock.advance(25 * 60)  # used 25 min ago: not idle yet (limit 30)
            assert (await c.get("/api/v1/me", headers=h)).status_code == 200
            p.clock.advance(31 * 60)
            assert (await c.get("/api/v1/me", headers=h)).status_code == 401
            h = session_headers(await login(c, "ko"))
            for _ in range(5):  # kept busy, it still ends at its lifetime (1 h here)
                p.clock.advance(14 * 60)
                assert (await c.get("/api/v1/me", headers=h)).status_code == 401 or _ < 4

    with_desks(run_pair, scenario, session_ttl_s=3600)


def test_wrong_logins_say_the_same_and_hold_the_account_back(run_pair: Any) -> None:
    async def scenario(p: Pair, alpha: Desk, _b: Desk) -> None:
        await alpha.officer("ko", Role.WATCH_OFFICER)
        async with alpha.client() as c:
            unknown = await login(c, "nobody")
            wrong = await login(c, "ko", "not the password at all")
            assert (unknown.status_code, wrong.status_code) == (401, 401)
            assert error_of(unknown) == error_of(wrong)
            assert error_of(wrong)["code"] == "login_failed"
            for _ in range(2):  # 3 failures allowed, the 3rd starts the backoff
                assert (await login(c, "ko", "still wrong password")).status_code == 401
            r = await login(c, "ko")  # even the right password waits
            assert (r.status_code, error_of(r)["code"]) == (429, "login_backoff")
            p.clock.advance(2)
            assert (await login(c, "ko")).status_code == 200
            assert (await login(c, "ko", "wrong once more!")).status_code == 401
            assert (await login(c, "ko")).status_code == 200  # the count was reset

    with_desks(run_pair, scenario, login_failures_before_backoff=3)


def test_tokens_expire_are_revoked_and_are_kept_only_as_hashes(run_pair: Any) -> None:
    async def scenario(p: Pair, alpha: Desk, _b: Desk) -> None:
        await alpha.officer("ko", Role.WATCH_OFFICER)
        async with alpha.client() as c:
            h = session_headers(await login(c, "ko"))
            short = (
                await c.post("/api/v1/tokens", json={"label": "x", "ttl_s": 60}, headers=h)
            ).json()
            long = (await c.post("/api/v1/tokens", json={}, headers=h)).json()
            bearer = {"authorization": f"Bearer {short['token']}"}
            me = await c.get("/api/v1/me", headers=bearer)
            assert (me.json()["username"], me.json()["via"]) == ("ko", "token")
            p.clock.advance(61)
            assert (await c.get("/api/v1/me", headers=bearer)).status_code == 401
            bearer = {"authorization": f"Bearer {long['token']}"}
            listed = (await c.get("/api/v1/tokens", headers=bearer)).json()
            assert {t["token_id"] for t in listed} == {short["token_id"], long["token_id"]}
            assert all("token" not in t for t in listed)
            r = await c.delete(f"/api/v1/tokens/{long['token_id']}", headers=bearer)
            assert r.status_code == 200
            assert (await c.get("/api/v1/me", headers=bearer)).status_code == 401
            # another officer's token is not yours to revoke or list
            other = await alpha.token("bo", Role.WATCH_OFFICER)
            r = await c.delete(f"/api/v1/tokens/{short['token_id']}", headers=other)
            assert r.status_code == 404
            r = await c.get("/api/v1/tokens", params={"username": "ko"}, headers=other)
            assert r.status_code == 403
        with p.alpha.read_engine.connect() as conn:
            stored = conn.execute(sa.select(schema.officer_tokens)).all()
        dump = repr(stored)
        assert short["token"] not in dump
        assert long["token"] not in dump
        issued = ledger_actions(p.alpha, "token_issue")
        revoked = ledger_actions(p.alpha, "token_revoke")
        assert [a["token_id"] for a in issued][:2] == [short["token_id"], long["token_id"]]
        assert revoked == [
            {"action": "token_revoke", "token_id": long["token_id"], "username": "ko", "by": "ko"}
        ]

    with_desks(run_pair, scenario)


def test_the_station_token_can_be_turned_off(run_pair: Any) -> None:
    async def scenario(p: Pair, alpha: Desk, _b: Desk) -> None:
        async with alpha.client(STATION_AUTH) as c:
            r = await c.get("/api/v1/status")
            assert (r.status_code, error_of(r)["code"]) == (401, "unauthorized")
        token = await alpha.token("ko", Role.AUDITOR)
        async with alpha.client(token) as c:
            assert (await c.get("/api/v1/status")).status_code == 200

    with_desks(run_pair, scenario, station_token_enabled=False)


def test_administrators_manage_accounts_on_the_record_without_secrets(run_pair: Any) -> None:
    async def scenario(p: Pair, alpha: Desk, _b: Desk) -> None:
        admin = await alpha.token("root", Role.ADMINISTRATOR)
        async with alpha.client(admin) as c:
            body = {
                "username": "ivanova",
                "display_name": "Maj. Ivanova",
                "roles": ["watch_officer"],
                "languages": ["uk", "en"],
                "password": PASSWORD,
            }
            r = await c.post("/api/v1/officers", json=body)
            assert r.status_code == 201, r.text
            assert r.json()["updated_by"] == "root"
            r = await c.post("/api/v1/officers", json=body)
            assert (r.status_code, error_of(r)["code"]) == (422, "officer_exists")
            weak = {**body, "username": "weak", "password": "short"}
            r = await c.post("/api/v1/officers", json=weak)
            assert (r.status_code, error_of(r)["code"]) == (422, "weak_password")
            r = await c.put(
                "/api/v1/officers/ivanova/roles", json={"roles": ["senior_watch_officer"]}
            )
            assert r.json()["roles"] == ["senior_watch_officer"]
            r = await c.put("/api/v1/officers/root/roles", json={"roles": ["auditor"]})
            assert (r.status_code, error_of(r)["code"]) == (422, "last_administrator")
            r = await c.post("/api/v1/officers/root/disable")
            assert (r.status_code, error_of(r)["code"]) == (422, "last_administrator")
            r = await c.post("/api/v1/officers/nobody/disable")
            assert r.status_code == 404
        async with alpha.client() as c:
            h = session_headers(await login(c, "ivanova"))
            tok = (await c.post("/api/v1/tokens", json={}, headers=h)).json()["token"]
        bearer = {"authorization": f"Bearer {tok}"}
        async with alpha.client(admin) as c:
            r = await c.post("/api/v1/officers/ivanova/disable")
            assert r.json()["disabled"] is True
        async with alpha.client() as c:
            assert (await c.get("/api/v1/me", headers=bearer)).status_code == 401
            assert (await c.get("/api/v1/me", headers=h)).status_code == 401  # session gone
            assert (await login(c, "ivanova")).status_code == 401
        async with alpha.client(admin) as c:
            assert (await c.post("/api/v1/officers/ivanova/enable")).status_code == 200
            r = await c.post(
                "/api/v1/officers/ivanova/password", json={"password": "a brand new passphrase"}
            )
            assert r.status_code == 200
        async with alpha.client() as c:
            assert (await c.get("/api/v1/me", headers=bearer)).status_code == 200
            assert (await login(c, "ivanova")).status_code == 401
            assert (await login(c, "ivanova", "a brand new passphrase")).status_code == 200
            # an officer changes its own password only with the current one
            r = await c.post(
                "/api/v1/officers/ivanova/password",
                headers=bearer,
                json={"password": "yet another passphrase"},
            )
            assert (r.status_code, error_of(r)["code"]) == (401, "login_failed")
            r = await c.post(
                "/api/v1/officers/ivanova/password",
                headers=bearer,
                json={
                    "password": "yet another passphrase",
                    "current_password": "a brand new passphrase",
                },
            )
            assert r.status_code == 200
            r = await c.post(
                "/api/v1/officers/root/password",
                headers=bearer,
                json={"password": "taking over root!"},
            )
            assert (r.status_code, error_of(r)["code"]) == (403, "forbidden")
        names = [
            "officer_add",
            "officer_roles",
            "officer_disable",
            "officer_enable",
            "officer_passwd",
            "token_issue",
        ]
        record = {n: ledger_actions(p.alpha, n) for n in names}
        assert [a["username"] for a in record["officer_add"]] == ["root", "ivanova"]
        assert record["officer_add"][0]["by"] == "station"
        assert record["officer_add"][1] == {
            "action": "officer_add",
            "username": "ivanova",
            "display_name": "Maj. Ivanova",
            "roles": ["watch_officer"],
            "languages": ["uk", "en"],
            "by": "root",
        }
        assert record["officer_roles"] == [
            {
                "action": "officer_roles",
                "username": "ivanova",
                "roles": ["senior_watch_officer"],
                "by": "root",
            }
        ]
        assert [a["by"] for a in record["officer_disable"] + record["officer_enable"]] == [
            "root",
            "root",
        ]
        assert [a["by"] for a in record["officer_passwd"]] == ["root", "ivanova"]
        everything = json.dumps(record)
        assert PASSWORD not in everything
        assert "passphrase" not in everything
        assert tok not in everything
        assert "argon2" not in everything

    with_desks(run_pair, scenario)


def test_totp_enrolment_then_logins_need_the_code(run_pair: Any) -> None:
    async def scenario(p: Pair, alpha: Desk, _b: Desk) -> None:
        token = await alpha.token("ko", Role.WATCH_OFFICER)
        async with alpha.client(token) as c:
            r = await c.post("/api/v1/me/totp/confirm", json={"code": "123456"})
            assert (r.status_code, error_of(r)["code"]) == (422, "no_totp_pending")
            e = (await c.post("/api/v1/me/totp")).json()
            assert e["otpauth_uri"].startswith("otpauth://totp/")
            assert "issuer=hotline" in e["otpauth_uri"]
            totp = pyotp.TOTP(e["secret"])
            now = p.clock.now_us() / 1e6
            wrong = str((int(totp.at(now)) + 1) % 1_000_000).zfill(6)
            r = await c.post("/api/v1/me/totp/confirm", json={"code": wrong})
            assert (r.status_code, error_of(r)["code"]) == (422, "bad_totp")
            assert (await login(c, "ko")).status_code == 200  # not on yet
            r = await c.post("/api/v1/me/totp/confirm", json={"code": totp.at(now)})
            assert r.status_code == 200, r.text
        async with alpha.client() as c:
            assert (await login(c, "ko")).status_code == 401
            assert (await login(c, "ko", totp=wrong)).status_code == 401
            assert (await login(c, "ko", totp=totp.at(now))).status_code == 200
        assert ledger_actions(p.alpha, "officer_totp") == [
            {"action": "officer_totp", "username": "ko", "by": "ko"}
        ]
        async with alpha.client(STATION_AUTH) as c:
            r = await c.post("/api/v1/me/totp")
            assert (r.status_code, error_of(r)["code"]) == (422, "no_account")

    with_desks(run_pair, scenario)


def test_the_officers_record_is_rebuilt_from_the_ledger(run_pair: Any) -> None:
    async def scenario(p: Pair, alpha: Desk, _b: Desk) -> None:
        admin = await alpha.officer("root", Role.ADMINISTRATOR)
        await alpha.officer("ko", Role.WATCH_OFFICER)
        await alpha.officers.set_roles(admin, "ko", frozenset({Role.PRINCIPAL, Role.AUDITOR}))
        await alpha.officers.set_disabled(admin, "ko", True)
        await alpha.officers.set_disabled(admin, "ko", False)
        await alpha.officers.set_disabled(admin, "ko", True)
        token = await alpha.token("bo", Role.WATCH_OFFICER)

        def rows() -> list[Any]:
            with p.alpha.read_engine.connect() as conn:
                t = schema.officer_record
                return [tuple(r) for r in conn.execute(sa.select(t).order_by(t.c.username))]

        live = rows()
        assert [(r[0], r[2], r[4]) for r in live] == [
            ("bo", "watch_officer", False),
            ("ko", "auditor,principal", True),
            ("root", "administrator", False),
        ]
        await p.alpha.writer.submit(lambda tx: p.alpha.line.rebuild_projections(tx.conn))
        assert rows() == live
        await alpha.officers.reload()
        async with alpha.client(token) as c:  # secrets survive a rebuild
            assert (await c.get("/api/v1/me")).json()["username"] == "bo"

    with_desks(run_pair, scenario)


def test_the_first_administrator_only_once(run_pair: Any) -> None:
    async def scenario(p: Pair, alpha: Desk, _b: Desk) -> None:
        from hotline.errors import InputError

        def first(name: str) -> Any:
            return alpha.officers.add_unit(
                "station",
                username=name,
                display_name=name,
                roles=frozenset({Role.ADMINISTRATOR}),
                password=PASSWORD,
                first=True,
            )

        assert (await p.alpha.writer.submit(first("root"))).username == "root"
        again = await p.alpha.writer.submit(first("root2"))
        assert isinstance(again, InputError)
        assert again.code == "administrator_exists"

    with_desks(run_pair, scenario)


def test_guessing_the_current_password_through_a_token_is_held_back_too(run_pair: Any) -> None:
    async def scenario(p: Pair, alpha: Desk, _b: Desk) -> None:
        token = await alpha.token("ko", Role.WATCH_OFFICER)
        guess = {"password": "a new passphrase here", "current_password": "a guess"}
        async with alpha.client(token) as c:
            for _ in range(3):
                r = await c.post("/api/v1/officers/ko/password", json=guess)
                assert (r.status_code, error_of(r)["code"]) == (401, "login_failed")
            right = {**guess, "current_password": PASSWORD}
            r = await c.post("/api/v1/officers/ko/password", json=right)
            assert (r.status_code, error_of(r)["code"]) == (429, "login_backoff")
            assert (await login(c, "ko")).status_code == 429
            p.clock.advance(2)
            assert (await c.post("/api/v1/officers/ko/password", json=right)).status_code == 200

    with_desks(run_pair, scenario, login_failures_before_backoff=3)


def test_a_sensitive_action_from_an_old_session_needs_the_password_again(
    run_pair: Any,
) -> None:
    """Approving, suspending, peers and accounts: a browser session may change them only
    within session_reauth_s of its login (403 reauth_required after, reads unaffected);
    a new login (the console's password dialog) lets the same request through."""

    def new_officer(n: int) -> dict[str, Any]:
        return {"username": f"o{n}", "display_name": f"O {n}", "roles": ["auditor"],
                "password": PASSWORD}  # fmt: skip

    async def scenario(p: Pair, alpha: Desk, _b: Desk) -> None:
        await alpha.officer("adm", Role.ADMINISTRATOR)
        async with alpha.client() as c:
            h = session_headers(await login(c, "adm"))
            r = await c.post("/api/v1/officers", json=new_officer(1), headers=h)
            assert r.status_code == 201, r.text
            token = (await c.post("/api/v1/tokens", json={}, headers=h)).json()["token"]
            p.clock.advance(6 * 60)  # past the 5 minutes, well within the idle limit
            r = await c.post("/api/v1/officers", json=new_officer(2), headers=h)
            assert (r.status_code, error_of(r)["code"]) == (403, "reauth_required")
            assert "password" in error_of(r)["hint"]
            assert (await c.get("/api/v1/officers", headers=h)).status_code == 200
            # not sensitive: a message from the same session still goes
            ok = await c.post("/api/v1/tokens", json={}, headers=h)
            assert ok.status_code == 201
            # an API token is not a browser session: no password to ask again
            bearer = {"authorization": f"Bearer {token}"}
            r = await c.post("/api/v1/officers", json=new_officer(3), headers=bearer)
            assert r.status_code == 201, r.text
            h = session_headers(await login(c, "adm"))  # the password again
            r = await c.post("/api/v1/officers", json=new_officer(2), headers=h)
            assert r.status_code == 201, r.text
        async with alpha.client(STATION_AUTH) as c:
            names = {o["username"] for o in (await c.get("/api/v1/officers")).json()}
        assert {"o1", "o2", "o3"} <= names

    with_desks(run_pair, scenario, session_reauth_s=300)
