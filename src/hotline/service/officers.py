"""Officers' accounts: add, roles, disable and enable, passwords, TOTP, API tokens,
browser sessions, login with per-account backoff; and the officers' record projection.

Owns the use cases (each takes the acting ``Principal`` and names ``principal.username``
on the record), the rules of usernames and passwords, and ``OfficerRecord``, the
projection of the ledger's officer actions into ``officer_record`` (who held which role
when, rebuilt from the ledger). Secrets (Argon2id password hashes, TOTP secrets, SHA-256
of tokens and sessions) are local state in the store, never on the ledger; every change
of an account is ALSO an operator action on the record without them:

    officer_add, officer_roles, officer_disable, officer_enable, officer_passwd,
    officer_totp, token_issue, token_revoke   (each with ``by``: who did it)

Passwords are hashed and checked in a worker thread (Argon2 is slow on purpose); the
in-memory ``OfficerBook`` (service/officerbook.py) answers the gate on the loop and is
changed after each commit. Must not touch: SQL (store/officers.py), HTTP.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.engine import Connection

from hotline.errors import AuthError, HotlineError, InputError, NotFoundError, RateLimitedError
from hotline.service.appending import append_action
from hotline.service.context import LineContext
from hotline.service.officerbook import (
    Account,
    OfficerBook,
    SessionEntry,
    TokenEntry,
    digest,
    new_secret,
    new_token,
)
from hotline.service.roles import STATION_USERNAME, Action, Principal, Role, require
from hotline.store import officers as db
from hotline.store import schema
from hotline.store.projections import MessageEvent
from hotline.store.writer import WriteTx

USERNAME_PATTERN = r"^[a-z][a-z0-9._-]{0,63}$"
_USERNAME = re.compile(USERNAME_PATTERN)
MIN_PASSWORD = 12
#: longer passwords are refused (Argon2 of a megabyte is a denial of service)
MAX_PASSWORD = 1024
MAX_LANGUAGES = 10
TOTP_ISSUER = "hotline"
#: what every wrong login is told, whichever part was wrong
LOGIN_FAILED = "wrong username, password or TOTP code"

ACTIONS = (
    "officer_add",
    "officer_roles",
    "officer_disable",
    "officer_enable",
    "officer_passwd",
    "officer_totp",
    "token_issue",
    "token_revoke",
)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token_id: str
    token: str  # shown once, never stored
    username: str
    label: str
    expires_at_us: int


@dataclass(frozen=True, slots=True)
class NewSession:
    session_id: str  # the cookie's value, never stored
    csrf_token: str  # never stored
    account: Account
    expires_at_us: int


def check_username(username: str) -> str:
    if not _USERNAME.match(username) or username == STATION_USERNAME:
        raise InputError(
            f"username {username[:80]!r} is not allowed",
            code="bad_username",
            hint="1 to 64 characters: a-z first, then a-z, 0-9, '.', '_', '-' "
            f"('{STATION_USERNAME}' is the station token's)",
        )
    return username


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InputError(
            f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            code="weak_password",
            hint="choose a longer passphrase (several words)",
        )
    return password


def check_languages(languages: Iterable[str]) -> tuple[str, ...]:
    out = tuple(languages)
    if len(out) > MAX_LANGUAGES or any(
        not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?", x) for x in out
    ):
        raise InputError(
            "languages are up to 10 tags like en, uk, ru or pt-BR",
            code="bad_language",
        )
    return out


def _sorted_roles(roles: Iterable[Role]) -> list[str]:
    return sorted(r.value for r in roles)


class Officers:
    """The officers of one station: use cases over the store, the ledger and the book."""

    def __init__(self, ctx: LineContext, hasher: PasswordHasher | None = None) -> None:
        self.ctx = ctx
        self.hasher = hasher or PasswordHasher()
        s = ctx.settings
        self.book = OfficerBook(
            ctx.clock.now_us,
            idle_us=int(s.session_idle_s * 1e6),
            reauth_us=int(s.session_reauth_s * 1e6),
        )
        #: a hash to verify against when the username is unknown (same time either way)
        self._dummy: str | None = None

    # --- the book ------------------------------------------------------------------------

    def load(self, conn: Connection) -> None:
        """Fill the book from the store (call in a worker thread or before the loop)."""
        now = self.ctx.clock.now_us()
        book = self.book
        book.accounts = {r.username: _account(r) for r in db.records(conn)}
        book.tokens = {
            t.token_hash: TokenEntry(t.token_id, t.username, t.token_hash, t.expires_at_us)
            for t in db.tokens(conn)
            if t.revoked_at_us is None and t.expires_at_us > now
        }
        book.sessions = {
            x.session_hash: SessionEntry(
                x.username,
                x.session_hash,
                x.csrf_hash,
                x.expires_at_us,
                x.created_at_us,
                x.created_at_us,
            )
            for x in db.sessions(conn)
            if x.expires_at_us > now
        }

    async def reload(self) -> None:
        def run() -> None:
            with self.ctx.reader.connect() as conn:
                self.load(conn)

        await asyncio.to_thread(run)

    def authenticate(self, scope: Any) -> Principal | None:
        return self.book.authenticate(scope)

    # --- reads (worker thread) ----------------------------------------------------------

    async def _read(self, fn: Callable[[Connection], Any]) -> Any:
        def run() -> Any:
            with self.ctx.reader.connect() as conn:
                return fn(conn)

        return await asyncio.to_thread(run)

    async def roster(self, principal: Principal) -> list[db.RecordRow]:
        require(principal, Action.OFFICERS, what="list officers")
        rows: list[db.RecordRow] = await self._read(db.records)
        return rows

    async def get(self, username: str) -> db.RecordRow:
        found: db.RecordRow | None = await self._read(lambda c: db.record(c, username))
        if found is None:
            raise NotFoundError(f"no officer {username!r}", hint="hotline officer list")
        return found

    async def totp_enabled(self, username: str) -> bool:
        row: db.SecretRow | None = await self._read(lambda c: db.secret(c, username))
        return row is not None and row.totp_secret is not None

    # --- accounts -----------------------------------------------------------------------

    def add_unit(
        self,
        by: str,
        *,
        username: str,
        display_name: str,
        roles: frozenset[Role],
        password: str,
        languages: Iterable[str] = (),
        first: bool = False,
    ) -> Callable[[WriteTx], Account | HotlineError]:
        """The unit that adds an officer (hashing the password first, on the caller's
        thread). ``first``: only if no administrator exists yet (``hotline init``)."""
        check_username(username)
        check_password(password)
        langs = check_languages(languages)
        display_name = display_name.strip()
        if not 1 <= len(display_name) <= 100:
            raise InputError("a display name has 1 to 100 characters", code="bad_display_name")
        if not roles:
            raise InputError(
                "an officer needs at least one role",
                code="bad_role",
                hint="roles are " + ", ".join(r.value for r in Role),
            )
        password_hash = self.hasher.hash(password)
        account = Account(username, display_name, roles, langs)

        def unit(tx: WriteTx) -> Account | HotlineError:
            if first and db.any_administrator(tx.conn):
                return InputError(
                    "this station has an administrator already",
                    code="administrator_exists",
                    hint="log in as the administrator (hotline login) and use hotline officer add",
                )
            if db.record(tx.conn, username) is not None:
                return InputError(f"officer {username!r} exists", code="officer_exists")
            db.secret_put(tx.conn, username, password_hash)
            action = {
                "action": "officer_add",
                "username": username,
                "display_name": display_name,
                "roles": _sorted_roles(roles),
                "languages": list(langs),
                "by": by,
            }
            append_action(self.ctx, tx, action)
            tx.after_commit(lambda: self.book.put_account(account))
            return account

        return unit

    async def add(self, principal: Principal, **kw: Any) -> Account:
        require(principal, Action.OFFICERS, what="add officers")
        unit = await asyncio.to_thread(self.add_unit, principal.username, **kw)
        return _raised(await self.ctx.writer.submit(unit))

    async def set_roles(self, principal: Principal, username: str, roles: frozenset[Role]) -> None:
        require(principal, Action.OFFICERS, what="change roles")
        if not roles:
            raise InputError("an officer needs at least one role", code="bad_role")

        def unit(tx: WriteTx) -> HotlineError | None:
            row = db.record(tx.conn, username)
            if row is None:
                return NotFoundError(f"no officer {username!r}")
            if Role.ADMINISTRATOR not in roles and _last_admin(tx.conn, username):
                return _last_admin_error()
            action = {
                "action": "officer_roles",
                "username": username,
                "roles": _sorted_roles(roles),
                "by": principal.username,
            }
            append_action(self.ctx, tx, action)
            tx.after_commit(lambda: self.book.set_roles(username, roles))
            return None

        _raised(await self.ctx.writer.submit(unit))

    async def set_disabled(self, principal: Principal, username: str, disabled: bool) -> None:
        require(principal, Action.OFFICERS, what="disable or enable officers")

        def unit(tx: WriteTx) -> HotlineError | None:
            row = db.record(tx.conn, username)
            if row is None:
                return NotFoundError(f"no officer {username!r}")
            if row.disabled == disabled:
                return None
            if disabled and _last_admin(tx.conn, username):
                return _last_admin_error()
            if disabled:
                db.sessions_delete_of(tx.conn, username)
            name = "officer_disable" if disabled else "officer_enable"
            append_action(
                self.ctx, tx, {"action": name, "username": username, "by": principal.username}
            )
            tx.after_commit(lambda: self.book.set_disabled(username, disabled))
            return None

        _raised(await self.ctx.writer.submit(unit))

    async def set_password(
        self,
        principal: Principal,
        username: str,
        password: str,
        current: str | None = None,
    ) -> None:
        """An administrator resets anyone's password; an officer changes its own with
        the current one."""
        check_password(password)
        if not principal.may(Action.OFFICERS):
            if principal.username != username:
                require(principal, Action.OFFICERS, what="reset another officer's password")
            row: db.SecretRow | None = await self._read(lambda c: db.secret(c, username))
            if row is not None:
                self._held_back(row)
            if row is None or current is None or not await self._verify(row.password_hash, current):
                if row is not None:  # guessing through a stolen token counts as a login
                    await self._failed(row)
                raise AuthError(
                    "the current password is wrong",
                    code="login_failed",
                    hint="give your current password (--current)",
                )
        new_hash = await asyncio.to_thread(self.hasher.hash, password)

        def unit(tx: WriteTx) -> HotlineError | None:
            if db.secret(tx.conn, username) is None:
                return NotFoundError(f"no officer {username!r}")
            db.secret_update(
                tx.conn, username, password_hash=new_hash, failures=0, locked_until_us=0
            )
            db.sessions_delete_of(tx.conn, username)
            action = {"action": "officer_passwd", "username": username, "by": principal.username}
            append_action(self.ctx, tx, action)
            tx.after_commit(lambda: self.book.drop_sessions_of(username))
            return None

        _raised(await self.ctx.writer.submit(unit))

    # --- TOTP ---------------------------------------------------------------------------

    async def totp_enrol(self, principal: Principal) -> tuple[str, str]:
        """A new TOTP secret for the principal (pending until confirmed by a code);
        returns (secret, otpauth URI), shown once."""
        _own_account(principal)
        secret = pyotp.random_base32()
        uri = pyotp.TOTP(secret).provisioning_uri(
            name=f"{principal.username}@{self.ctx.station_id}", issuer_name=TOTP_ISSUER
        )

        def unit(tx: WriteTx) -> HotlineError | None:
            if db.secret(tx.conn, principal.username) is None:
                return NotFoundError(f"no officer {principal.username!r}")
            db.secret_update(tx.conn, principal.username, totp_pending=secret)
            return None

        _raised(await self.ctx.writer.submit(unit))
        return secret, uri

    async def totp_confirm(self, principal: Principal, code: str) -> None:
        _own_account(principal)
        now_s = self.ctx.clock.now_us() / 1e6

        def unit(tx: WriteTx) -> HotlineError | None:
            row = db.secret(tx.conn, principal.username)
            if row is None or row.totp_pending is None:
                return InputError(
                    "no TOTP enrolment is pending",
                    code="no_totp_pending",
                    hint="start one: POST /api/v1/me/totp",
                )
            if not _totp_ok(row.totp_pending, code, now_s):
                return InputError(
                    "the TOTP code is wrong",
                    code="bad_totp",
                    hint="type the current code of the authenticator app",
                )
            db.secret_update(
                tx.conn, principal.username, totp_secret=row.totp_pending, totp_pending=None
            )
            action = {
                "action": "officer_totp",
                "username": principal.username,
                "by": principal.username,
            }
            append_action(self.ctx, tx, action)
            return None

        _raised(await self.ctx.writer.submit(unit))

    # --- login and sessions ---------------------------------------------------------------

    async def _verify(self, password_hash: str, password: str) -> bool:
        def run() -> bool:
            try:
                return bool(self.hasher.verify(password_hash, password))
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(run)

    def _held_back(self, row: db.SecretRow) -> None:
        """Refuse (``login_backoff``) while the account waits after wrong passwords."""
        now = self.ctx.clock.now_us()
        if row.locked_until_us > now:
            wait = (row.locked_until_us - now) / 1e6
            raise RateLimitedError(
                f"too many wrong passwords for {row.username}: wait {wait:.0f} s",
                code="login_backoff",
                hint="wait, then try again; an administrator can reset the password",
            )

    async def _failed(self, row: db.SecretRow) -> None:
        """Count a wrong password; past the setting, hold the account back (doubling)."""
        s = self.ctx.settings
        failures = row.failures + 1
        over = failures - s.login_failures_before_backoff
        locked = (
            self.ctx.clock.now_us() + int(min(s.login_backoff_max_s, 2.0 ** min(over, 30)) * 1e6)
            if over >= 0
            else 0
        )

        def fail(tx: WriteTx) -> None:
            db.secret_update(tx.conn, row.username, failures=failures, locked_until_us=locked)

        await self.ctx.writer.submit(fail)

    async def check_login(self, username: str, password: str, totp: str | None) -> Account:
        """The account if the password (and TOTP code, when enrolled) are right; else
        ``login_failed`` (the same for every wrong part), or ``login_backoff`` while the
        account waits after repeated failures."""
        if len(password) > MAX_PASSWORD or len(username) > 64:
            raise AuthError(LOGIN_FAILED, code="login_failed")
        row: db.SecretRow | None = await self._read(lambda c: db.secret(c, username))
        account = self.book.accounts.get(username)
        now = self.ctx.clock.now_us()
        if row is not None:
            self._held_back(row)
        if row is None and self._dummy is None:
            self._dummy = await asyncio.to_thread(self.hasher.hash, secrets.token_urlsafe(16))
        ok = await self._verify(row.password_hash if row else str(self._dummy), password)
        if ok and row is not None and row.totp_secret is not None:
            ok = totp is not None and _totp_ok(row.totp_secret, totp, now / 1e6)
        if row is None or account is None or account.disabled or not ok:
            if row is not None:
                await self._failed(row)
            raise AuthError(
                LOGIN_FAILED, code="login_failed", hint="check the username, password and TOTP code"
            )
        if row.failures or self.hasher.check_needs_rehash(row.password_hash):
            new_hash = (
                await asyncio.to_thread(self.hasher.hash, password)
                if self.hasher.check_needs_rehash(row.password_hash)
                else row.password_hash
            )

            def reset(tx: WriteTx) -> None:
                db.secret_update(
                    tx.conn, username, failures=0, locked_until_us=0, password_hash=new_hash
                )

            await self.ctx.writer.submit(reset)
        return account

    async def login(self, username: str, password: str, totp: str | None) -> NewSession:
        """Check the credentials and open a browser session."""
        account = await self.check_login(username, password, totp)
        sid, csrf = new_secret(), new_secret()
        now = self.ctx.clock.now_us()
        expires = now + int(self.ctx.settings.session_ttl_s * 1e6)
        row = db.SessionRow(digest(sid), account.username, digest(csrf), now, expires)

        def unit(tx: WriteTx) -> None:
            db.sessions_delete_expired(tx.conn, now)
            db.session_put(tx.conn, row)
            entry = SessionEntry(
                account.username, row.session_hash, row.csrf_hash, expires, now, now
            )
            tx.after_commit(lambda: self.book.put_session(entry))

        await self.ctx.writer.submit(unit)
        return NewSession(sid, csrf, account, expires)

    async def logout(self, session_id: bytes | None) -> None:
        if session_id is None:
            return
        h = digest(session_id.decode(errors="replace"))

        def unit(tx: WriteTx) -> None:
            db.session_delete(tx.conn, h)
            tx.after_commit(lambda: self.book.drop_session(h))

        await self.ctx.writer.submit(unit)

    # --- tokens -------------------------------------------------------------------------

    async def issue_token(
        self, principal: Principal, label: str = "cli", ttl_s: float | None = None
    ) -> IssuedToken:
        """A new API token for the principal itself (shown once; its hash is kept)."""
        _own_account(principal)
        label = label.strip()[:100] or "cli"
        s = self.ctx.settings
        ttl = min(ttl_s, s.officer_token_ttl_s) if ttl_s else s.officer_token_ttl_s
        now = self.ctx.clock.now_us()
        token, token_id = new_token(), secrets.token_hex(8)
        row = db.TokenRow(
            token_id, principal.username, digest(token), label, now, now + int(ttl * 1e6), None
        )

        def unit(tx: WriteTx) -> HotlineError | None:
            if db.record(tx.conn, principal.username) is None:
                return NotFoundError(f"no officer {principal.username!r}")
            db.token_put(tx.conn, row)
            action = {
                "action": "token_issue",
                "token_id": token_id,
                "username": principal.username,
                "label": label,
                "expires_at_us": row.expires_at_us,
                "by": principal.username,
            }
            append_action(self.ctx, tx, action)
            entry = TokenEntry(token_id, principal.username, row.token_hash, row.expires_at_us)
            tx.after_commit(lambda: self.book.put_token(entry))
            return None

        _raised(await self.ctx.writer.submit(unit))
        return IssuedToken(token_id, token, principal.username, label, row.expires_at_us)

    async def tokens(self, principal: Principal, username: str | None = None) -> list[db.TokenRow]:
        """The principal's own tokens (another officer's: administrators only)."""
        who = username or principal.username
        if who != principal.username:
            require(principal, Action.OFFICERS, what="list another officer's tokens")
        rows: list[db.TokenRow] = await self._read(lambda c: db.tokens(c, who))
        return rows

    async def revoke_token(self, principal: Principal, token_id: str) -> None:
        """Revoke one of the principal's own tokens (anyone's: administrators)."""

        def unit(tx: WriteTx) -> HotlineError | None:
            row = db.token(tx.conn, token_id)
            if row is None or (
                row.username != principal.username and not principal.may(Action.OFFICERS)
            ):
                return NotFoundError(
                    f"no token {token_id!r} of yours", hint="hotline officer token list"
                )
            if row.revoked_at_us is not None:
                return None
            db.token_revoke(tx.conn, token_id, self.ctx.clock.now_us())
            action = {
                "action": "token_revoke",
                "token_id": token_id,
                "username": row.username,
                "by": principal.username,
            }
            append_action(self.ctx, tx, action)
            tx.after_commit(lambda: self.book.drop_token(token_id))
            return None

        _raised(await self.ctx.writer.submit(unit))


def _totp_ok(secret: str, code: str, now_s: float) -> bool:
    code = code.strip()
    if not re.fullmatch(r"[0-9]{6}", code):
        return False
    import datetime as dt

    return bool(
        pyotp.TOTP(secret).verify(
            code, for_time=dt.datetime.fromtimestamp(now_s, dt.UTC), valid_window=1
        )
    )


def _own_account(principal: Principal) -> None:
    if principal.username == STATION_USERNAME:
        raise InputError(
            "the station token is no officer's account",
            code="no_account",
            hint="log in as an officer (hotline login) to have tokens or TOTP",
        )


def _last_admin(conn: Connection, username: str) -> bool:
    admins = [r for r in db.records(conn) if "administrator" in r.roles and not r.disabled]
    return [r.username for r in admins] == [username]


def _last_admin_error() -> InputError:
    return InputError(
        "that would leave the station without an enabled administrator",
        code="last_administrator",
        hint="give another officer the administrator role first",
    )


def _account(r: db.RecordRow) -> Account:
    roles = frozenset(Role(x) for x in r.roles if x in Role.__members__.values())
    return Account(r.username, r.display_name, roles, r.languages, r.disabled)


T = TypeVar("T")


def _raised(result: T | HotlineError) -> T:
    if isinstance(result, HotlineError):
        raise result
    return result


class OfficerRecord:
    """The projection of the officer actions into ``officer_record`` (no secrets)."""

    tables: tuple[sa.Table, ...] = (schema.officer_record,)

    def __init__(self, ctx: LineContext) -> None:
        self.ctx = ctx

    def on_message(self, conn: Connection, event: MessageEvent) -> None:
        return None

    def on_ack(
        self, conn: Connection, message_id: str, by_station: str, officer: str, at_us: int
    ) -> None:
        return None

    def on_action(self, conn: Connection, idx: int, action: dict[str, Any], at_us: int) -> None:
        name = action.get("action")
        if name not in ("officer_add", "officer_roles", "officer_disable", "officer_enable"):
            return
        username, by = str(action["username"]), str(action.get("by", ""))
        if name == "officer_add":
            db.record_put(
                conn,
                username=username,
                display_name=action["display_name"],
                roles=tuple(action["roles"]),
                languages=tuple(action["languages"]),
                at_us=at_us,
                by=by,
                idx=idx,
            )
        elif name == "officer_roles":
            db.record_update(
                conn, username, at_us=at_us, by=by, idx=idx, roles=tuple(action["roles"])
            )
        else:
            db.record_update(
                conn, username, at_us=at_us, by=by, idx=idx, disabled=name == "officer_disable"
            )

    def reset(self) -> None:
        return None

    def rebuild_finished(self, conn: Connection) -> None:
        return None
