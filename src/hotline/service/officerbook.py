"""Who is asking, answered from memory: the book of officers, token hashes and sessions.

Owns the in-memory ``OfficerBook`` the operator API's gate asks on the event loop (no
database read there: service/officers.py loads the book in a worker thread at start and
changes it after each commit), the credential formats (an officer token ``hlo_...``, a
session id in the ``hotline_session`` cookie, a CSRF token) and their hashing (SHA-256;
looked up by hash, then compared with ``hmac.compare_digest``). A request authenticated
by its session cookie with an unsafe method (POST, PUT, PATCH, DELETE) must echo the
session's CSRF token in ``X-CSRF-Token``; a bearer token needs none.

Must not touch: the store, passwords (service/officers.py), the gate's rate limits.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from hotline.errors import PermissionDeniedError
from hotline.service.roles import Principal, Role

#: an officer's API token starts with this (so a station token is never looked up here)
TOKEN_PREFIX = "hlo_"  # noqa: S105 - a prefix, not a secret
SESSION_COOKIE = "hotline_session"
CSRF_HEADER = "x-csrf-token"
#: the CSRF token again, as a cookie the console's own script reads (double submit)
CSRF_COOKIE = "hotline_csrf"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: the longest credential looked at (longer ones are no one's)
MAX_CREDENTIAL = 200


def digest(secret: str) -> bytes:
    """SHA-256 of a token, session id or CSRF token (what the store and the book keep)."""
    return hashlib.sha256(secret.encode()).digest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    display_name: str
    roles: frozenset[Role]
    languages: tuple[str, ...] = ()
    disabled: bool = False

    def principal(self, via: str, fresh: bool = True) -> Principal:
        return Principal(self.username, self.display_name, self.roles, via=via, fresh=fresh)


@dataclass(frozen=True, slots=True)
class TokenEntry:
    token_id: str
    username: str
    token_hash: bytes
    expires_at_us: int


@dataclass(slots=True)
class SessionEntry:
    username: str
    session_hash: bytes
    csrf_hash: bytes
    expires_at_us: int
    last_seen_us: int
    #: when the password was given (the login that opened the session)
    created_at_us: int = 0


@dataclass
class OfficerBook:
    """Accounts, live token hashes and sessions; read on the loop, changed after commits."""

    now_us: Callable[[], int]
    idle_us: int
    #: a session older than this may not take a SENSITIVE action (0: no such limit)
    reauth_us: int = 0
    accounts: dict[str, Account] = field(default_factory=dict)
    tokens: dict[bytes, TokenEntry] = field(default_factory=dict)
    sessions: dict[bytes, SessionEntry] = field(default_factory=dict)

    # --- changes (after a commit) ---------------------------------------------------------

    def put_account(self, account: Account) -> None:
        self.accounts[account.username] = account

    def set_disabled(self, username: str, disabled: bool) -> None:
        found = self.accounts.get(username)
        if found is not None:
            self.accounts[username] = replace(found, disabled=disabled)
        if disabled:
            self.drop_sessions_of(username)

    def set_roles(self, username: str, roles: frozenset[Role]) -> None:
        found = self.accounts.get(username)
        if found is not None:
            self.accounts[username] = replace(found, roles=roles)

    def put_token(self, entry: TokenEntry) -> None:
        self.tokens[entry.token_hash] = entry

    def drop_token(self, token_id: str) -> None:
        for key, entry in list(self.tokens.items()):
            if entry.token_id == token_id:
                del self.tokens[key]

    def put_session(self, entry: SessionEntry) -> None:
        self.sessions[entry.session_hash] = entry

    def drop_session(self, session_hash: bytes) -> None:
        self.sessions.pop(session_hash, None)

    def drop_sessions_of(self, username: str) -> None:
        for key, entry in list(self.sessions.items()):
            if entry.username == username:
                del self.sessions[key]

    # --- who is asking (on the loop) ------------------------------------------------------

    def authenticate(self, scope: Any) -> Principal | None:
        """The officer a request's bearer token or session cookie names, or None.

        Raises ``PermissionDeniedError`` (``csrf``) for an unsafe request authenticated by
        cookie without the session's CSRF token."""
        headers = _headers(scope)
        auth = headers.get(b"authorization")
        if auth is not None:
            return self._by_token(auth)
        cookie = headers.get(b"cookie")
        if cookie is not None:
            return self._by_session(scope, cookie, headers.get(CSRF_HEADER.encode()))
        return None

    def _account(self, username: str) -> Account | None:
        account = self.accounts.get(username)
        if account is None or account.disabled:
            return None
        return account

    def _by_token(self, header: bytes) -> Principal | None:
        scheme, _, raw = header.partition(b" ")
        credential = raw.strip()
        if scheme.lower() != b"bearer" or not 0 < len(credential) <= MAX_CREDENTIAL:
            return None
        if not credential.startswith(TOKEN_PREFIX.encode()):
            return None
        h = hashlib.sha256(credential).digest()
        entry = self.tokens.get(h)
        if entry is None or not hmac.compare_digest(h, entry.token_hash):
            return None
        if entry.expires_at_us <= self.now_us():
            return None
        account = self._account(entry.username)
        return account.principal("token") if account is not None else None

    def _by_session(self, scope: Any, cookie: bytes, csrf: bytes | None) -> Principal | None:
        sid = session_id_of(cookie)
        if sid is None:
            return None
        h = hashlib.sha256(sid).digest()
        entry = self.sessions.get(h)
        if entry is None or not hmac.compare_digest(h, entry.session_hash):
            return None
        now = self.now_us()
        if entry.expires_at_us <= now or now - entry.last_seen_us > self.idle_us:
            self.sessions.pop(h, None)  # the store's row goes at the next login or logout
            return None
        account = self._account(entry.username)
        if account is None:
            return None
        if str(scope.get("method", "GET")).upper() in UNSAFE_METHODS:
            given = hashlib.sha256(csrf or b"").digest()
            if csrf is None or not hmac.compare_digest(given, entry.csrf_hash):
                raise PermissionDeniedError(
                    "a request authenticated by the session cookie needs its CSRF token",
                    code="csrf",
                    hint="send the csrf_token the login returned in the X-CSRF-Token header",
                )
        entry.last_seen_us = now
        fresh = not self.reauth_us or now - entry.created_at_us <= self.reauth_us
        return account.principal("session", fresh=fresh)


def session_id_of(cookie: bytes) -> bytes | None:
    """The value of the ``hotline_session`` cookie in a Cookie header, or None."""
    name = SESSION_COOKIE.encode() + b"="
    for part in cookie.split(b";"):
        part = part.strip()
        if part.startswith(name):
            value = part[len(name) :]
            return value if 0 < len(value) <= MAX_CREDENTIAL else None
    return None


def _headers(scope: Any) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for key, value in scope.get("headers", ()):
        out.setdefault(bytes(key).lower(), bytes(value))
    return out
