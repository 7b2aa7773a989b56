"""Operator API for officers: login and logout (browser sessions), who am I, accounts
(administrators), API tokens and TOTP enrolment.

Owns the HTTP shapes of these routes and the session cookie (``hotline_session``:
Secure, HttpOnly, SameSite=Strict, Path=/). ``POST /api/v1/session`` (login) is the one
route the gate lets through without a principal (``LOGIN_ROUTE``); it answers the same
``login_failed`` for every wrong part, and ``login_backoff`` (429) while an account waits
after repeated failures. Must not touch: credentials beyond handing them to
service/officers.py, the store.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from hotline.api.auth import allowed
from hotline.api.openapi import errors
from hotline.api.routers import api_router
from hotline.service.officerbook import CSRF_COOKIE, SESSION_COOKIE, session_id_of
from hotline.service.officers import (
    MAX_PASSWORD,
    USERNAME_PATTERN,
    Officers,
)
from hotline.service.roles import Action, Principal, Role
from hotline.store.officers import RecordRow, TokenRow

SESSION_PATH = "/api/v1/session"
#: (method, path) of the route the gate admits without a principal
LOGIN_ROUTE = ("POST", SESSION_PATH)

Username = Annotated[str, Field(pattern=USERNAME_PATTERN, max_length=64)]
Password = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD)]
RoleName = Annotated[Role, Field(description="A role: " + ", ".join(r.value for r in Role))]
Language = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$", max_length=12)]
UsernamePath = Annotated[str, PathParam(pattern=USERNAME_PATTERN, max_length=64)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(_Body):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Password
    totp: Annotated[str, Field(pattern=r"^[0-9]{6}$")] | None = None


class OfficerAddRequest(_Body):
    username: Username
    display_name: Annotated[str, Field(min_length=1, max_length=100)]
    roles: Annotated[list[RoleName], Field(min_length=1, max_length=len(Role))]
    languages: Annotated[list[Language], Field(max_length=10)] = []
    password: Password


class RolesRequest(_Body):
    roles: Annotated[list[RoleName], Field(min_length=1, max_length=len(Role))]


class PasswordRequest(_Body):
    password: Password
    #: an officer changing its own password (without the officers role) gives the old one
    current_password: Password | None = None


class TokenRequest(_Body):
    label: Annotated[str, Field(min_length=1, max_length=100)] = "cli"
    ttl_s: Annotated[float, Field(gt=0, le=366 * 86_400)] | None = None


class TotpConfirmRequest(_Body):
    code: Annotated[str, Field(pattern=r"^[0-9]{6}$")]


class Officer(BaseModel):
    """An officer's account as the record has it (no secrets)."""

    username: str
    display_name: str
    roles: list[str]
    languages: list[str]
    disabled: bool
    updated_at_us: int
    updated_by: str = Field(description="The administrator who made the last change.")


class Me(BaseModel):
    """Who the request is authenticated as."""

    username: str
    display_name: str
    roles: list[str]
    role: str = Field(description="The role a peer is shown (the highest of the ladder).")
    via: str = Field(description="token, session or station (the bootstrap token).")
    allowed: list[str] = Field(description="The actions these roles allow.")


class SessionOpened(BaseModel):
    """A browser session: the cookie is set; send ``csrf_token`` in ``X-CSRF-Token`` with
    every POST, PUT, PATCH or DELETE."""

    csrf_token: str
    expires_at_us: int
    officer: Me


class Done(BaseModel):
    ok: bool = True


class TokenIssued(BaseModel):
    """A new API token: shown this once (only its hash is kept)."""

    token_id: str
    token: str
    username: str
    label: str
    expires_at_us: int


class TokenInfo(BaseModel):
    token_id: str
    username: str
    label: str
    created_at_us: int
    expires_at_us: int
    revoked_at_us: int | None = None


class TotpEnrolment(BaseModel):
    """A TOTP secret, shown once: add it to an authenticator app (the URI as a QR code),
    then confirm with a code."""

    secret: str
    otpauth_uri: str


def _officer(r: RecordRow) -> Officer:
    return Officer(
        username=r.username,
        display_name=r.display_name,
        roles=list(r.roles),
        languages=list(r.languages),
        disabled=r.disabled,
        updated_at_us=r.updated_at_us,
        updated_by=r.updated_by,
    )


def _token(t: TokenRow) -> TokenInfo:
    return TokenInfo(
        token_id=t.token_id,
        username=t.username,
        label=t.label,
        created_at_us=t.created_at_us,
        expires_at_us=t.expires_at_us,
        revoked_at_us=t.revoked_at_us,
    )


def me_of(p: Principal) -> Me:
    from hotline.service.roles import ALLOWED

    acts = sorted({a.value for r in p.roles for a in ALLOWED[r]})
    return Me(
        username=p.username,
        display_name=p.display_name,
        roles=sorted(r.value for r in p.roles),
        role=p.role.value,
        via=p.via,
        allowed=acts,
    )


def officers_router(officers: Officers, auth: Any) -> APIRouter:
    """The routes; ``auth`` is the operator app's principal dependency (it names the
    bearer scheme in the spec). Login has none: the gate admits it (``LOGIN_ROUTE``)."""
    router = api_router(prefix="/api/v1", tags=["officers"])
    Who = Annotated[Principal, Depends(auth)]
    Admin = Annotated[Principal, Depends(allowed(Action.OFFICERS))]
    ttl = officers.ctx.settings.session_ttl_s

    @router.post(SESSION_PATH.removeprefix("/api/v1"), responses=errors(403, body=True))
    async def login(req: LoginRequest, response: Response) -> SessionOpened:
        """Log in (username, password, and the TOTP code when enrolled): opens a browser
        session (cookie ``hotline_session``) and returns its CSRF token. Every wrong part
        answers 401 ``login_failed``; repeated failures hold the account back (429
        ``login_backoff``)."""
        opened = await officers.login(req.username, req.password, req.totp)
        response.set_cookie(
            SESSION_COOKIE,
            opened.session_id,
            max_age=int(ttl),
            path="/",
            secure=True,
            httponly=True,
            samesite="strict",
        )
        # the same token again, readable by the console's script (double submit): a page
        # of another site can neither read it nor send the cookie (SameSite=Strict)
        response.set_cookie(
            CSRF_COOKIE,
            opened.csrf_token,
            max_age=int(ttl),
            path="/",
            secure=True,
            httponly=False,
            samesite="strict",
        )
        return SessionOpened(
            csrf_token=opened.csrf_token,
            expires_at_us=opened.expires_at_us,
            officer=me_of(opened.account.principal("session")),
        )

    @router.delete(SESSION_PATH.removeprefix("/api/v1"), responses=errors(403))
    async def logout(request: Request, response: Response, who: Who) -> Done:
        """End this browser session (the cookie is cleared)."""
        cookie = request.headers.get("cookie")
        await officers.logout(session_id_of(cookie.encode()) if cookie else None)
        response.delete_cookie(
            SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict"
        )
        response.delete_cookie(CSRF_COOKIE, path="/", secure=True, samesite="strict")
        return Done()

    @router.get("/me", responses=errors())
    async def get_me(who: Who) -> Me:
        """Who this request is authenticated as, with its roles and what they allow."""
        return me_of(who)

    @router.get("/officers", responses=errors(403))
    async def list_officers(who: Admin) -> list[Officer]:
        """Every officer of this station (administrators)."""
        return [_officer(r) for r in await officers.roster(who)]

    @router.post("/officers", status_code=201, responses=errors(403, body=True))
    async def add_officer(req: OfficerAddRequest, who: Admin) -> Officer:
        """Add an officer (administrators): on the record as ``officer_add`` (no secret)."""
        await officers.add(
            who,
            username=req.username,
            display_name=req.display_name,
            roles=frozenset(req.roles),
            password=req.password,
            languages=req.languages,
        )
        return _officer(await officers.get(req.username))

    @router.put("/officers/{username}/roles", responses=errors(403, 404, body=True))
    async def set_officer_roles(username: UsernamePath, req: RolesRequest, who: Admin) -> Officer:
        """Set an officer's roles (administrators): ``officer_roles`` on the record."""
        await officers.set_roles(who, username, frozenset(req.roles))
        return _officer(await officers.get(username))

    @router.post("/officers/{username}/disable", responses=errors(403, 404))
    async def disable_officer(username: UsernamePath, who: Admin) -> Officer:
        """Disable an officer: its tokens and sessions stop working at once."""
        await officers.set_disabled(who, username, True)
        return _officer(await officers.get(username))

    @router.post("/officers/{username}/enable", responses=errors(403, 404))
    async def enable_officer(username: UsernamePath, who: Admin) -> Officer:
        """Enable a disabled officer again."""
        await officers.set_disabled(who, username, False)
        return _officer(await officers.get(username))

    @router.post("/officers/{username}/password", responses=errors(403, 404, body=True))
    async def set_password(username: UsernamePath, req: PasswordRequest, who: Who) -> Done:
        """Reset an officer's password (administrators), or change one's own (with
        ``current_password``). Its browser sessions end."""
        await officers.set_password(who, username, req.password, req.current_password)
        return Done()

    @router.post("/tokens", status_code=201, responses=errors(403, body=True))
    async def issue_token(req: TokenRequest, who: Who) -> TokenIssued:
        """A new API token for the officer asking (for the CLI): shown once."""
        t = await officers.issue_token(who, req.label, req.ttl_s)
        return TokenIssued(
            token_id=t.token_id,
            token=t.token,
            username=t.username,
            label=t.label,
            expires_at_us=t.expires_at_us,
        )

    @router.get("/tokens", responses=errors(403))
    async def list_tokens(who: Who, username: Username | None = None) -> list[TokenInfo]:
        """The officer's own tokens (another officer's with ``username``: administrators)."""
        return [_token(t) for t in await officers.tokens(who, username)]

    @router.delete("/tokens/{token_id}", responses=errors(403, 404))
    async def revoke_token(
        token_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{16}$")], who: Who
    ) -> Done:
        """Revoke a token (one's own; anyone's: administrators): refused from now on."""
        await officers.revoke_token(who, token_id)
        return Done()

    @router.post("/me/totp", responses=errors(403))
    async def enrol_totp(who: Who) -> TotpEnrolment:
        """Start TOTP enrolment: the secret and otpauth URI, shown once. Logins need a
        code only after ``confirm_totp``."""
        secret, uri = await officers.totp_enrol(who)
        return TotpEnrolment(secret=secret, otpauth_uri=uri)

    @router.post("/me/totp/confirm", responses=errors(403, body=True))
    async def confirm_totp(req: TotpConfirmRequest, who: Who) -> Done:
        """Confirm TOTP enrolment with a current code; from now on login needs one."""
        await officers.totp_confirm(who, req.code)
        return Done()

    return router
