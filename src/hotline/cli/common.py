"""What every CLI command shares: the data-dir option, settings, errors, the API client.

Owns turning errors into a red line with a hint and an exit code, and finding a running
station's operator API (its run file and token). Must not touch: business rules.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console

from hotline.errors import ConfigError, HotlineError
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


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    try:
        return Settings(data_dir=data_dir, **overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"setting {where}: {first['msg']}", hint="fix hotline.toml or the HOTLINE_* variable"
        ) from None


def fail(exc: HotlineError) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {exc.message} [dim]({exc.code})[/]")
    if exc.hint:
        err_console.print(f"  [yellow]what to do:[/] {exc.hint}")
    raise typer.Exit(1)


def handles_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HotlineError as exc:
            fail(exc)

    return wrapper  # type: ignore[return-value]


class Api:
    """A small client of a running station's operator API."""

    def __init__(self, data_dir: Path) -> None:
        from hotline.station import TOKEN_FILE, read_run_file

        run = read_run_file(data_dir)
        if run is None:
            raise ConfigError(
                f"no station is running in {data_dir}",
                code="not_running",
                hint=f"start it with: hotline run --data-dir {data_dir}",
            )
        token = (data_dir / TOKEN_FILE).read_text().strip()
        self.base = run["api"]
        self._http = httpx.Client(
            base_url=self.base,
            headers={"authorization": f"Bearer {token}"},
            timeout=30,
            trust_env=False,
        )

    def call(self, method: str, path: str, **kw: Any) -> Any:
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
        return r.json()


def us_to_text(us: int | None) -> str:
    if us is None:
        return "-"
    import datetime as dt

    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def exit_code(ok: bool) -> NoReturn:
    sys.exit(0 if ok else 1)
