"""Officer commands: login and logout, and ``hotline officer`` add, list, disable, enable,
passwd, roles, token (issue, list, revoke) and totp (enrol, confirm), against a running
station's operator API.

``hotline login`` opens a session with the username, password (and TOTP code), issues
an API token for this user, closes the session and saves the token (0600) in the user's
config directory (``common.officer_token_file``), or ``--token-file``; every command then
uses it in preference to the station's token. Passwords are asked (twice for a new one)
or read from ``--password-file``. Everything the API returns is printed with
``common.plain``. Must not touch: business rules (the API decides).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hotline.cli.common import (
    DEFAULT_DATA_DIR,
    Api,
    DataDir,
    console,
    handles_errors,
    plain,
    shown,
    us_to_text,
)
from hotline.errors import ConfigError, HotlineError

TokenFile = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        envvar="HOTLINE_TOKEN_FILE",
        help="Where the login's token is kept (default: ~/.config/hotline/token-STATION).",
    ),
]
PasswordFile = Annotated[
    Path | None,
    typer.Option("--password-file", help="Read the password from this file (else asked)."),
]
Roles = Annotated[
    list[str],
    typer.Option(
        "--role",
        "-r",
        help="A role (repeatable): watch_officer, senior_watch_officer, principal, "
        "administrator, auditor.",
    ),
]


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
    officer = typer.Typer(help="Officers' accounts, tokens and TOTP.", no_args_is_help=True)
    officer.command("add")(add)
    officer.command("list")(list_officers)
    officer.command("disable")(disable)
    officer.command("enable")(enable)
    officer.command("passwd")(passwd)
    officer.command("roles")(roles)
    officer.command("whoami")(whoami)
    token = typer.Typer(help="API tokens (for scripts and the CLI).", no_args_is_help=True)
    token.command("issue")(token_issue)
    token.command("list")(token_list)
    token.command("revoke")(token_revoke)
    officer.add_typer(token, name="token")
    totp = typer.Typer(help="TOTP second factor.", no_args_is_help=True)
    totp.command("enrol")(totp_enrol)
    totp.command("confirm")(totp_confirm)
    officer.add_typer(totp, name="totp")
    app.add_typer(officer, name="officer")


def read_password(path: Path | None, *, new: bool, prompt: str = "Password: ") -> str:
    """A password from ``path`` (its first line) or asked (twice when ``new``)."""
    if path is not None:
        lines = path.read_text().splitlines()
        if not lines or not lines[0]:
            raise ConfigError(f"{path} holds no password", hint="write it on the first line")
        return lines[0]
    first = getpass.getpass(prompt)
    if new and getpass.getpass("Again: ") != first:
        raise ConfigError("the two passwords differ", hint="run the command again")
    return first


def _save(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(doc))
    tmp.replace(path)


def session_cookie(set_cookies: list[str]) -> str | None:
    """The session id in the login's Set-Cookie (a Secure cookie: no jar sends it over
    the plain-HTTP loopback API, so the CLI carries it itself)."""
    for header in set_cookies:
        name, _, rest = header.partition("=")
        if name.strip() == "hotline_session":
            return rest.split(";", 1)[0].strip() or None
    return None


@handles_errors
def login(
    username: Annotated[str, typer.Option("--username", "-u", help="Your username.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    password_file: PasswordFile = None,
    totp: Annotated[str | None, typer.Option("--totp", help="The current TOTP code.")] = None,
    token_file: TokenFile = None,
    days: Annotated[float | None, typer.Option(help="Token lifetime in days.")] = None,
) -> None:
    """Log in: issues an API token for you, saved (0600) for every later command.

    Example: hotline login --username ivanova -d alpha
    """
    password = read_password(password_file, new=False)
    anon = Api(data_dir, token_file=token_file, anonymous=True)
    body = {"username": username, "password": password, "totp": totp}
    r = anon.response("POST", "/api/v1/session", json=body)
    opened = r.json()
    sid = session_cookie(r.headers.get_list("set-cookie"))
    if sid is None:
        raise HotlineError("the station opened no session", code="api_error")
    headers = {"cookie": f"hotline_session={sid}", "x-csrf-token": opened["csrf_token"]}
    label = f"cli {shown(socket.gethostname())[:60]}"
    req: dict[str, Any] = {"label": label}
    if days is not None:
        req["ttl_s"] = days * 86_400
    try:
        issued = anon.call("POST", "/api/v1/tokens", json=req, headers=headers)
    finally:
        anon.response("DELETE", "/api/v1/session", headers=headers)
    _save(anon.token_file, {**issued, "station": anon.station})
    console.print(
        plain(("logged in", "green"), f" as {issued['username']} on {anon.station}; token ",
              (issued["token_id"], "bold"), f" until {us_to_text(issued['expires_at_us'])}, "
              f"saved in {anon.token_file}")
    )  # fmt: skip


@handles_errors
def logout(data_dir: DataDir = DEFAULT_DATA_DIR, token_file: TokenFile = None) -> None:
    """Log out: revoke the saved token and delete it.

    Example: hotline logout -d alpha
    """
    api = Api(data_dir, token_file=token_file)
    if api.login is None:
        console.print(plain("not logged in"))
        return
    api.call("DELETE", f"/api/v1/tokens/{api.login['token_id']}")
    api.token_file.unlink()
    console.print(plain(("logged out", "green"), f": token {api.login['token_id']} revoked"))


def _officer_line(o: dict[str, Any]) -> Any:
    state = ("disabled", "red") if o["disabled"] else ("enabled", "green")
    return plain((o["username"], "bold"), f" ({o['display_name']}) ", ", ".join(o["roles"]),
                 " ", state)  # fmt: skip


@handles_errors
def add(
    username: Annotated[str, typer.Argument(help="Username: a-z first, then a-z 0-9 . _ -.")],
    name: Annotated[str, typer.Option("--name", help="Display name shown to peers.")],
    role: Roles,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    language: Annotated[
        list[str] | None, typer.Option("--language", help="Language tag (repeatable).")
    ] = None,
    password_file: PasswordFile = None,
    token_file: TokenFile = None,
) -> None:
    """Add an officer (administrators). The password is asked twice, or read from a file.

    Example: hotline officer add ivanova --name "Maj. Ivanova" --role watch_officer -d alpha
    """
    password = read_password(password_file, new=True, prompt="Password for the officer: ")
    body = {"username": username, "display_name": name, "roles": role,
            "languages": language or [], "password": password}  # fmt: skip
    o = Api(data_dir, token_file=token_file).call("POST", "/api/v1/officers", json=body)
    console.print(plain(("added ", "green"), _officer_line(o)))


@handles_errors
def list_officers(data_dir: DataDir = DEFAULT_DATA_DIR, token_file: TokenFile = None) -> None:
    """List the station's officers (administrators).

    Example: hotline officer list -d alpha
    """
    rows = Api(data_dir, token_file=token_file).call("GET", "/api/v1/officers")
    table = Table("username", "name", "roles", "state", "changed by", "changed")
    for o in rows:
        table.add_row(
            plain(o["username"]), plain(o["display_name"]), plain(", ".join(o["roles"])),
            plain("disabled" if o["disabled"] else "enabled"), plain(o["updated_by"]),
            plain(us_to_text(o["updated_at_us"])),
        )  # fmt: skip
    console.print(table)


def _set_state(data_dir: Path, username: str, what: str, token_file: Path | None) -> None:
    o = Api(data_dir, token_file=token_file).call("POST", f"/api/v1/officers/{username}/{what}")
    console.print(_officer_line(o))


@handles_errors
def disable(
    username: Annotated[str, typer.Argument(help="The officer.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    token_file: TokenFile = None,
) -> None:
    """Disable an officer: its tokens and sessions stop working at once.

    Example: hotline officer disable ivanova -d alpha
    """
    _set_state(data_dir, username, "disable", token_file)


@handles_errors
def enable(
    username: Annotated[str, typer.Argument(help="The officer.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    token_file: TokenFile = None,
) -> None:
    """Enable a disabled officer.

    Example: hotline officer enable ivanova -d alpha
    """
    _set_state(data_dir, username, "enable", token_file)


@handles_errors
def roles(
    username: Annotated[str, typer.Argument(help="The officer.")],
    role: Roles,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    token_file: TokenFile = None,
) -> None:
    """Set an officer's roles (administrators); on the record.

    Example: hotline officer roles ivanova -r senior_watch_officer -d alpha
    """
    o = Api(data_dir, token_file=token_file).call(
        "PUT", f"/api/v1/officers/{username}/roles", json={"roles": role}
    )
    console.print(_officer_line(o))


@handles_errors
def passwd(
    username: Annotated[str, typer.Argument(help="The officer (yourself, or any: admins).")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    password_file: PasswordFile = None,
    current: Annotated[
        bool, typer.Option("--current", help="Ask your current password (own change).")
    ] = False,
    token_file: TokenFile = None,
) -> None:
    """Set a password: an administrator resets anyone's, an officer changes its own
    (with --current). The officer's browser sessions end.

    Example: hotline officer passwd ivanova -d alpha
    """
    body: dict[str, Any] = {}
    if current:
        body["current_password"] = read_password(None, new=False, prompt="Current password: ")
    body["password"] = read_password(password_file, new=True, prompt="New password: ")
    Api(data_dir, token_file=token_file).call(
        "POST", f"/api/v1/officers/{username}/password", json=body
    )
    console.print(plain(("password set", "green"), f" for {username}"))


@handles_errors
def whoami(data_dir: DataDir = DEFAULT_DATA_DIR, token_file: TokenFile = None) -> None:
    """Who the CLI acts as, with roles and what they allow.

    Example: hotline officer whoami -d alpha
    """
    me = Api(data_dir, token_file=token_file).call("GET", "/api/v1/me")
    console.print(plain((me["username"], "bold"), f" ({me['display_name']}) via {me['via']}"))
    console.print(plain("roles: ", ", ".join(me["roles"])))
    console.print(plain("may: ", ", ".join(me["allowed"])))


@handles_errors
def token_issue(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "script",
    days: Annotated[float | None, typer.Option(help="Lifetime in days.")] = None,
    token_file: TokenFile = None,
) -> None:
    """Issue an API token for yourself: printed once (only its hash is kept).

    Example: hotline officer token issue --label nightly-export --days 30 -d alpha
    """
    body: dict[str, Any] = {"label": label}
    if days is not None:
        body["ttl_s"] = days * 86_400
    t = Api(data_dir, token_file=token_file).call("POST", "/api/v1/tokens", json=body)
    console.print(
        plain("token ", (t["token_id"], "bold"), f" until {us_to_text(t['expires_at_us'])}")
    )
    typer.echo(t["token"])


@handles_errors
def token_list(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    username: Annotated[str | None, typer.Option(help="Another officer's (admins).")] = None,
    token_file: TokenFile = None,
) -> None:
    """List your API tokens (another officer's: administrators).

    Example: hotline officer token list -d alpha
    """
    params = {"username": username} if username else None
    rows = Api(data_dir, token_file=token_file).call("GET", "/api/v1/tokens", params=params)
    table = Table("id", "officer", "label", "created", "expires", "revoked")
    for t in rows:
        table.add_row(
            plain(t["token_id"]), plain(t["username"]), plain(t["label"]),
            plain(us_to_text(t["created_at_us"])), plain(us_to_text(t["expires_at_us"])),
            plain(us_to_text(t["revoked_at_us"])),
        )  # fmt: skip
    console.print(table)


@handles_errors
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (hotline officer token list).")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    token_file: TokenFile = None,
) -> None:
    """Revoke an API token: refused from now on (yours; anyone's: administrators).

    Example: hotline officer token revoke 3f2a9c1e5b7d0a42 -d alpha
    """
    Api(data_dir, token_file=token_file).call("DELETE", f"/api/v1/tokens/{token_id}")
    console.print(plain(("revoked", "green"), f" token {token_id}"))


@handles_errors
def totp_enrol(data_dir: DataDir = DEFAULT_DATA_DIR, token_file: TokenFile = None) -> None:
    """Start TOTP enrolment: prints the secret and otpauth URI once (add it to an
    authenticator app), then confirm with a code.

    Example: hotline officer totp enrol -d alpha
    """
    e = Api(data_dir, token_file=token_file).call("POST", "/api/v1/me/totp")
    console.print(plain("secret: ", (e["secret"], "bold")))
    console.print(plain("uri:    ", e["otpauth_uri"]))
    console.print(plain("next: hotline officer totp confirm CODE"))


@handles_errors
def totp_confirm(
    code: Annotated[str, typer.Argument(help="The current 6-digit code.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    token_file: TokenFile = None,
) -> None:
    """Confirm TOTP enrolment with a current code; logins then need one.

    Example: hotline officer totp confirm 123456 -d alpha
    """
    Api(data_dir, token_file=token_file).call(
        "POST", "/api/v1/me/totp/confirm", json={"code": code}
    )
    console.print(plain(("TOTP on", "green"), ": logins now need a code"))
