"""What every CLI command shares: the data-dir option, settings, errors, the API client,
and the one way to print text that came from elsewhere.

Owns turning errors into a red line with a hint and an exit code, finding a running
station's operator API (its run file and token), and ``plain``/``shown``: anything a peer,
the API or a file wrote is printed as plain text, never as Rich markup, never as emoji
codes, and with control characters (escape sequences, carriage returns, newlines,
bidirectional overrides) shown as escapes, so a site named ``[/]`` cannot crash a
command and ``[bold red]ALARM`` or ``\x1b[2J`` cannot fake or hide output. Commands
print Rich ``Text`` built here, or markup they wrote themselves with no value in it.
Must not touch: business rules.

Start-up: ``hotline --help`` imports every command module, so this module and they import
no heavy library (httpx, pydantic, cryptography, SQLAlchemy, the service layer, Rich's
progress bars) at module level; a command imports what it needs when it runs
(tests/cli/test_startup.py checks).
"""

from __future__ import annotations

import functools
import os
import re
import sys
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from hotline.errors import ConfigError, HotlineError

if TYPE_CHECKING:
    import httpx

    from hotline.settings import Settings

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        "-d",
        envvar="HOTLINE_DATA_DIR",
        help="The station's data directory.",
        show_default=True,
    ),
]
DEFAULT_DATA_DIR = Path("hotline-data")


#: characters that could move the cursor, clear the screen, end a line or reorder text
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f"  # C0 and C1 controls: escape sequences, CR, LF, tab, ...
    "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"  # breaks, bidi controls
)


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(value: object) -> str:
    """``value`` as one line of inert text: control characters become visible escapes."""
    return _UNSAFE.sub(_escape, str(value))


def plain(*parts: object) -> Text:
    """One line of output from parts: each is plain text (see ``shown``), except a
    ``(words, style)`` pair, which styles words this program wrote."""
    out = Text()
    for part in parts:
        if isinstance(part, tuple):
            words, style = part
            out.append(shown(words), style=str(style))
        else:
            out.append(shown(part))
    return out


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    from pydantic import ValidationError

    from hotline.settings import Settings

    try:
        return Settings(data_dir=data_dir, **overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"setting {where}: {first['msg']}", hint="fix hotline.toml or the HOTLINE_* variable"
        ) from None


def require_station(data_dir: Path) -> None:
    """Refuse, saying what to do, when ``data_dir`` holds no station (before anything
    touches the directory: no lock file, no token, no store is created there)."""
    from hotline.crypto.keys import STATION_FILE

    if not (data_dir / STATION_FILE).is_file():
        raise ConfigError(
            f"no station in {data_dir}",
            code="no_station",
            hint=f"create one with: hotline init --id ID --name NAME --endpoint URL "
            f"--data-dir {data_dir}  (or pass the --data-dir of an existing station)",
        )


def fail(exc: HotlineError) -> NoReturn:
    code = (f"({exc.code})", "dim")
    # soft wrap: the terminal wraps an error, so a path in it copies whole
    err_console.print(plain(("error:", "bold red"), " ", exc.message, " ", code), soft_wrap=True)
    if exc.hint:
        err_console.print(plain("  ", ("what to do:", "yellow"), " ", exc.hint), soft_wrap=True)
    raise typer.Exit(1)


def handles_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HotlineError as exc:
            fail(exc)

    return wrapper  # type: ignore[return-value]


def officer_token_file(station: str, given: Path | None = None) -> Path:
    """Where ``hotline login`` keeps an officer's API token for ``station``: ``given``,
    else $HOTLINE_TOKEN_FILE, else the user's config directory
    ($XDG_CONFIG_HOME or ~/.config)/hotline/token-STATION (0600)."""
    if given is not None:
        return given
    env = os.environ.get("HOTLINE_TOKEN_FILE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "hotline" / f"token-{station}"


def read_officer_token(path: Path) -> dict[str, Any] | None:
    """The saved login ({token, token_id, username, ...}) or None; refused when others
    may read the file."""
    import json

    if not path.is_file():
        return None
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"{path} is readable by others", hint=f"chmod 600 {path}")
    try:
        doc = json.loads(path.read_text())
    except ValueError:
        raise ConfigError(f"{path} is not a saved login", hint="hotline login again") from None
    return doc if isinstance(doc, dict) and isinstance(doc.get("token"), str) else None


class Api:
    """A small client of a running station's operator API; its connections close when the
    client is dropped. It authenticates with the officer's token saved by ``hotline
    login`` when there is one, else with the station's bootstrap token; ``anonymous``
    sends none (login)."""

    def __init__(
        self, data_dir: Path, *, token_file: Path | None = None, anonymous: bool = False
    ) -> None:
        from hotline.station import TOKEN_FILE, read_run_file

        run = read_run_file(data_dir)
        if run is None:
            raise ConfigError(
                f"no station is running in {data_dir}",
                code="not_running",
                hint=f"start it with: hotline run --data-dir {data_dir}",
            )
        self.station = str(run.get("station", ""))
        self.token_file = officer_token_file(self.station, token_file)
        self.login = None if anonymous else read_officer_token(self.token_file)
        headers = {}
        if self.login is not None:
            headers["authorization"] = f"Bearer {self.login['token']}"
        elif not anonymous:
            station_token = data_dir / TOKEN_FILE
            if not station_token.is_file():
                raise ConfigError(
                    "not logged in, and no station token in the data directory",
                    code="not_logged_in",
                    hint=f"hotline login --username NAME --data-dir {data_dir}",
                )
            headers["authorization"] = f"Bearer {station_token.read_text().strip()}"
        self.base = run["api"]
        import httpx

        self._http = httpx.Client(
            base_url=self.base,
            headers=headers,
            timeout=30,
            trust_env=False,
        )
        # closed when the command is done with this client (no socket left open)
        weakref.finalize(self, self._http.close)

    def call(self, method: str, path: str, **kw: Any) -> Any:
        return self.response(method, path, **kw).json()

    def response(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """The answer of a request (raising the API's error as a ``HotlineError``)."""
        import httpx

        try:
            r = self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise ConfigError(
                f"the station's API at {self.base} does not answer: {exc}",
                code="not_running",
                hint="is 'hotline run' still running for this data directory?",
            ) from exc
        if r.status_code >= 400:
            try:
                e = r.json()["error"]
                raise HotlineError(e["message"], code=e["code"], hint=e.get("hint") or "")
            except (ValueError, KeyError, TypeError):
                raise HotlineError(
                    f"API answered {r.status_code}: {r.text[:200]}", code="api_error"
                ) from None
        return r


def us_to_text(us: int | None) -> str:
    if us is None:
        return "-"
    import datetime as dt

    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def exit_code(ok: bool) -> NoReturn:
    sys.exit(0 if ok else 1)
