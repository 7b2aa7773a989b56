"""The SQL of officers' accounts: the officers' record (projection), their secrets, API
tokens and browser sessions.

Owns the statements over ``officer_record``, ``officers``, ``officer_tokens`` and
``officer_sessions``. Every function takes the caller's connection (a writer unit's, or a
reader's in a worker thread) and never commits. Secrets are hashes only: the Argon2id
hash of a password, the SHA-256 of a token, of a session id and of its CSRF token.
Must not touch: business rules (service/officers.py decides what a value means), the
ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.store import schema

_r, _s, _t, _x = (
    schema.officer_record,
    schema.officers,
    schema.officer_tokens,
    schema.officer_sessions,
)


@dataclass(frozen=True, slots=True)
class RecordRow:
    username: str
    display_name: str
    roles: tuple[str, ...]
    languages: tuple[str, ...]
    disabled: bool
    created_at_us: int
    updated_at_us: int
    updated_by: str


@dataclass(frozen=True, slots=True)
class SecretRow:
    username: str
    password_hash: str
    totp_secret: str | None
    totp_pending: str | None
    failures: int
    locked_until_us: int


@dataclass(frozen=True, slots=True)
class TokenRow:
    token_id: str
    username: str
    token_hash: bytes
    label: str
    created_at_us: int
    expires_at_us: int
    revoked_at_us: int | None


@dataclass(frozen=True, slots=True)
class SessionRow:
    session_hash: bytes
    username: str
    csrf_hash: bytes
    created_at_us: int
    expires_at_us: int


def _split(text: str) -> tuple[str, ...]:
    return tuple(p for p in text.split(",") if p)


def _record(row: Any) -> RecordRow:
    return RecordRow(
        row.username,
        row.display_name,
        _split(row.roles),
        _split(row.languages),
        bool(row.disabled),
        row.created_at_us,
        row.updated_at_us,
        row.updated_by,
    )


# --- the record (projection) ---------------------------------------------------------------


def record_put(
    conn: Connection,
    *,
    username: str,
    display_name: str,
    roles: tuple[str, ...],
    languages: tuple[str, ...],
    at_us: int,
    by: str,
    idx: int,
) -> None:
    conn.execute(
        _r.insert().values(
            username=username,
            display_name=display_name,
            roles=",".join(sorted(roles)),
            languages=",".join(languages),
            disabled=False,
            created_at_us=at_us,
            updated_at_us=at_us,
            updated_by=by,
            entry_idx=idx,
        )
    )


def record_update(
    conn: Connection, username: str, *, at_us: int, by: str, idx: int, **values: Any
) -> None:
    if "roles" in values:
        values["roles"] = ",".join(sorted(values["roles"]))
    conn.execute(
        _r.update()
        .where(_r.c.username == username)
        .values(updated_at_us=at_us, updated_by=by, entry_idx=idx, **values)
    )


def record(conn: Connection, username: str) -> RecordRow | None:
    row = conn.execute(sa.select(_r).where(_r.c.username == username)).first()
    return _record(row) if row is not None else None


def records(conn: Connection) -> list[RecordRow]:
    return [_record(r) for r in conn.execute(sa.select(_r).order_by(_r.c.username))]


def any_administrator(conn: Connection) -> bool:
    """Whether an enabled officer holds the administrator role."""
    return any(
        "administrator" in r.roles and not r.disabled for r in records(conn)
    )  # few rows: a station has tens of officers


# --- secrets (local state) -------------------------------------------------------------------


def secret_put(conn: Connection, username: str, password_hash: str) -> None:
    conn.execute(
        _s.insert().values(
            username=username,
            password_hash=password_hash,
            totp_secret=None,
            totp_pending=None,
            failures=0,
            locked_until_us=0,
        )
    )


def secret(conn: Connection, username: str) -> SecretRow | None:
    row = conn.execute(sa.select(_s).where(_s.c.username == username)).first()
    if row is None:
        return None
    return SecretRow(
        row.username,
        row.password_hash,
        row.totp_secret,
        row.totp_pending,
        row.failures,
        row.locked_until_us,
    )


def secret_update(conn: Connection, username: str, **values: Any) -> None:
    conn.execute(_s.update().where(_s.c.username == username).values(**values))


# --- tokens -------------------------------------------------------------------------------


def token_put(conn: Connection, row: TokenRow) -> None:
    conn.execute(
        _t.insert().values(
            token_id=row.token_id,
            username=row.username,
            token_hash=row.token_hash,
            label=row.label,
            created_at_us=row.created_at_us,
            expires_at_us=row.expires_at_us,
            revoked_at_us=row.revoked_at_us,
        )
    )


def _token(row: Any) -> TokenRow:
    return TokenRow(
        row.token_id,
        row.username,
        bytes(row.token_hash),
        row.label,
        row.created_at_us,
        row.expires_at_us,
        row.revoked_at_us,
    )


def token(conn: Connection, token_id: str) -> TokenRow | None:
    row = conn.execute(sa.select(_t).where(_t.c.token_id == token_id)).first()
    return _token(row) if row is not None else None


def tokens(conn: Connection, username: str | None = None) -> list[TokenRow]:
    q = sa.select(_t).order_by(_t.c.created_at_us, _t.c.token_id)
    if username is not None:
        q = q.where(_t.c.username == username)
    return [_token(r) for r in conn.execute(q)]


def token_revoke(conn: Connection, token_id: str, at_us: int) -> None:
    conn.execute(_t.update().where(_t.c.token_id == token_id).values(revoked_at_us=at_us))


# --- sessions -----------------------------------------------------------------------------


def session_put(conn: Connection, row: SessionRow) -> None:
    conn.execute(
        _x.insert().values(
            session_hash=row.session_hash,
            username=row.username,
            csrf_hash=row.csrf_hash,
            created_at_us=row.created_at_us,
            expires_at_us=row.expires_at_us,
        )
    )


def sessions(conn: Connection) -> list[SessionRow]:
    return [
        SessionRow(
            bytes(r.session_hash), r.username, bytes(r.csrf_hash), r.created_at_us, r.expires_at_us
        )
        for r in conn.execute(sa.select(_x))
    ]


def session_delete(conn: Connection, session_hash: bytes) -> None:
    conn.execute(_x.delete().where(_x.c.session_hash == session_hash))


def sessions_delete_of(conn: Connection, username: str) -> None:
    conn.execute(_x.delete().where(_x.c.username == username))


def sessions_delete_expired(conn: Connection, now_us: int) -> None:
    conn.execute(_x.delete().where(_x.c.expires_at_us <= now_us))
