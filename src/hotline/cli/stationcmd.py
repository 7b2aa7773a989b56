"""Station commands: init, card, peer add/list/remove/rekey, run, token, backup, rebuild.

Commands that need a station refuse with ``no_station`` (and what to do) before they
touch a directory that holds none.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer

from hotline.cli.common import (
    DEFAULT_DATA_DIR,
    Api,
    DataDir,
    console,
    handles_errors,
    plain,
    require_station,
    settings_for,
    shown,
)
from hotline.errors import ConfigError, InputError


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("card")(card)
    app.command("run")(run)
    app.command("token")(token)
    app.command("backup")(backup)
    app.command("rebuild")(rebuild)
    peer = typer.Typer(help="Peers: stations this one has a line with.", no_args_is_help=True)
    peer.command("add")(peer_add)
    peer.command("list")(peer_list)
    peer.command("remove")(peer_remove)
    peer.command("rekey")(peer_rekey)
    app.add_typer(peer, name="peer")


def _passphrase(prompt: bool, confirm: bool) -> str | None:
    if not prompt:
        return None
    first = getpass.getpass("Passphrase for the station's key files: ")
    if confirm and getpass.getpass("Again: ") != first:
        raise ConfigError("the two passphrases differ", hint="run the command again")
    return first


@handles_errors
def init(
    station_id: Annotated[str, typer.Option("--id", help="Station id: a-z, 0-9, '-'.")],
    name: Annotated[str, typer.Option("--name", help="Display name shown to peers.")],
    endpoint: Annotated[
        list[str], typer.Option("--endpoint", help="Peer endpoint URL (repeatable).")
    ],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    api_port: Annotated[int, typer.Option(help="Operator API port to record.")] = 8470,
    peer_port: Annotated[int, typer.Option(help="Peer endpoint port to record.")] = 8471,
    passphrase: Annotated[
        bool, typer.Option("--passphrase", help="Seal the key files with a passphrase (asked).")
    ] = False,
    admin: Annotated[
        str | None,
        typer.Option("--admin", help="Also create the first administrator, with this username."),
    ] = None,
    admin_name: Annotated[
        str | None, typer.Option("--admin-name", help="The administrator's display name.")
    ] = None,
    password_file: Annotated[
        Path | None,
        typer.Option("--password-file", help="The administrator's password (else asked twice)."),
    ] = None,
) -> None:
    """Create a station: keys (0600), self-signed TLS certificate, card, settings file;
    with --admin, also its first administrator (refused once one exists; run init again
    with --admin on an existing station to add one to a station that has none).

    Example: hotline init --id alpha --name Alpha --endpoint https://10.0.0.5:8471 --admin root
    """
    from hotline.crypto.keys import STATION_FILE

    if admin is not None:
        from hotline.cli.officercmd import read_password

        password = read_password(password_file, new=True, prompt="Administrator's password: ")
    if (data_dir / STATION_FILE).is_file() and admin is not None:
        _first_admin(data_dir, admin, admin_name, password)
        return
    from hotline.crypto.keys import create_station
    from hotline.settings import CONFIG_FILE_NAME

    data_dir.mkdir(parents=True, exist_ok=True)
    identity = create_station(
        data_dir, station_id, name, endpoint, _passphrase(passphrase, confirm=True)
    )
    cfg = data_dir / CONFIG_FILE_NAME
    if not cfg.exists():
        cfg.write_text(f"api_port = {api_port}\npeer_port = {peer_port}\n")
    c = identity.card()
    console.print(plain((f"station {station_id} created", "green"), f" in {data_dir}"))
    console.print(plain("fingerprint: ", (c.fingerprint(), "bold")))
    console.print(plain(f"next: give your card to the peer:  hotline card --data-dir {data_dir}"))
    if admin is not None:
        _first_admin(data_dir, admin, admin_name, password)


def _first_admin(data_dir: Path, username: str, name: str | None, password: str) -> None:
    from hotline.station import add_first_administrator

    add_first_administrator(settings_for(data_dir), username, name or username, password)
    console.print(plain(("administrator ", "green"), (username, "bold"), " created"))
    console.print(plain(f"next: hotline run, then hotline login --username {username} "
                        f"--data-dir {data_dir}"))  # fmt: skip


def _load(data_dir: Path):  # type: ignore[no-untyped-def]
    from hotline.crypto.keys import load_station

    s = settings_for(data_dir)
    pw = s.passphrase.get_secret_value() if s.passphrase else None
    return s, load_station(data_dir, pw)


@handles_errors
def card(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    out: Annotated[Path | None, typer.Option("--out", help="Write the card to this file.")] = None,
) -> None:
    """Print this station's card (to give to a peer) and its fingerprint.

    Example: hotline card --data-dir alpha --out alpha.card
    """
    _, identity = _load(data_dir)
    c = identity.card()
    if out is not None:
        out.write_text(c.to_text())
        console.print(plain(f"card written to {out}"))
    else:
        sys.stdout.write(c.to_text())
    typer.echo(f"fingerprint: {c.fingerprint()}", err=True)


@handles_errors
def peer_add(
    card_file: Annotated[Path, typer.Argument(help="The peer's card file ('-' for stdin).")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask: for scripts.")] = False,
    operator: Annotated[str | None, typer.Option(help="Who adds the peer.")] = None,
) -> None:
    """Add a peer after showing the pair's safety number and asking to confirm it.

    Read the safety number aloud with the peer's officer over a trusted channel; add
    only if both read the same digits.

    Example: hotline peer add bravo.card --data-dir alpha
    """
    from hotline.crypto.card import parse_card, safety_number
    from hotline.station import add_peer_offline, read_run_file

    text = sys.stdin.read() if str(card_file) == "-" else card_file.read_text()
    settings, identity = _load(data_dir)
    peer_card = parse_card(text)
    number = safety_number(identity.card(), peer_card)
    console.print(
        plain("peer: ", (peer_card.card.station_id, "bold"), f" ({peer_card.card.display_name})")
    )
    console.print(plain(f"peer fingerprint: {peer_card.fingerprint()}"))
    console.print(plain("safety number:    ", (number, "bold")))
    if not yes and not typer.confirm("Does the peer's officer read the same safety number?"):
        raise InputError("peer not added: safety number not confirmed", code="not_confirmed")
    if read_run_file(data_dir) is not None:
        Api(data_dir).call(
            "POST",
            "/api/v1/peers",
            json={"card": text, "safety_number": number},
        )
    else:
        add_peer_offline(settings, text, operator)
    console.print(plain((f"peer {peer_card.card.station_id} added", "green")))


@handles_errors
def peer_remove(
    station_id: Annotated[str, typer.Argument(help="The peer's station id.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask: for scripts.")] = False,
    operator: Annotated[str | None, typer.Option(help="Who removes the peer.")] = None,
) -> None:
    """Remove a peer: its line stops and its envelopes are refused from now on.

    The removal is a ledger entry; everything exchanged with the peer stays on the
    record. Add it again later with 'hotline peer add' (its sequence numbers continue).

    Example: hotline peer remove bravo --data-dir alpha
    """
    from hotline.station import read_run_file, remove_peer_offline

    if not yes and not typer.confirm(f"Remove peer {station_id}?"):
        raise InputError("peer not removed", code="not_confirmed")
    settings, _identity = _load(data_dir)
    if read_run_file(data_dir) is not None:
        Api(data_dir).call("DELETE", f"/api/v1/peers/{station_id}", json={})
    else:
        remove_peer_offline(settings, station_id, operator)
    console.print(plain((f"peer {station_id} removed", "green")))


@handles_errors
def peer_rekey(
    card_file: Annotated[Path, typer.Argument(help="The peer's new card file ('-' for stdin).")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask: for scripts.")] = False,
    operator: Annotated[str | None, typer.Option(help="Who re-keys the peer.")] = None,
) -> None:
    """Replace a peer's card (new keys, certificate or endpoints) after the safety number.

    Shows the new pair's safety number, like 'hotline peer add': read it aloud with the
    peer's officer over a trusted channel and confirm only if both read the same digits.
    The card must be for a current peer (same station id). The change is a ledger
    entry; what the peer signed before stays verifiable with its old card.

    Example: hotline peer rekey bravo-2027.card --data-dir alpha
    """
    from hotline.crypto.card import parse_card, safety_number
    from hotline.station import read_run_file, rekey_peer_offline

    text = sys.stdin.read() if str(card_file) == "-" else card_file.read_text()
    settings, identity = _load(data_dir)
    peer_card = parse_card(text)
    sid = peer_card.card.station_id
    number = safety_number(identity.card(), peer_card)
    console.print(plain("peer: ", (sid, "bold"), f" ({peer_card.card.display_name})"))
    console.print(plain(f"new fingerprint:  {peer_card.fingerprint()}"))
    console.print(plain("safety number:    ", (number, "bold")))
    if not yes and not typer.confirm("Does the peer's officer read the same safety number?"):
        raise InputError("peer not re-keyed: safety number not confirmed", code="not_confirmed")
    if read_run_file(data_dir) is not None:
        Api(data_dir).call(
            "POST",
            f"/api/v1/peers/{sid}/rekey",
            json={"card": text, "safety_number": number},
        )
    else:
        rekey_peer_offline(settings, text, operator)
    console.print(plain((f"peer {sid} re-keyed", "green")))


@handles_errors
def peer_list(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """List this station's peers (needs the station running).

    Example: hotline peer list --data-dir alpha
    """
    for p in Api(data_dir).call("GET", "/api/v1/peers"):
        sid, name = shown(p["station_id"]), shown(p["display_name"])
        console.print(plain(f"{sid:<20} {name:<30} {p['fingerprint']}"))


@handles_errors
def run(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Run the station in the foreground: operator API, peer endpoint, outbox, link tests.

    Stop with Ctrl-C (or SIGTERM). Example: hotline run --data-dir alpha
    """
    import logging

    from hotline import station

    require_station(data_dir)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = settings_for(data_dir)
    try:
        station.run(settings, out=sys.stdout)
    except OSError as exc:  # a port in use, an address not on this host, a full disk
        raise ConfigError(
            f"cannot start the station: {exc.strerror or exc}",
            code="cannot_start",
            hint=f"is another program (or this station) listening on {settings.api_host}:"
            f"{settings.api_port} or {settings.peer_host}:{settings.peer_port}? Change "
            "api_port / peer_port in hotline.toml, or stop it",
        ) from None


@handles_errors
def token(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Print the operator API's bearer token (created on first use, 0600).

    Example: curl -H "Authorization: Bearer $(hotline token -d alpha)" http://127.0.0.1:8470/api/v1/status
    """
    from hotline.station import api_token

    require_station(data_dir)
    typer.echo(api_token(data_dir))


@handles_errors
def backup(
    out: Annotated[Path, typer.Argument(help="File to write the copy to (must not exist).")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Copy the station's SQLite store to a file, consistently, even while the station runs.

    Back up the data directory's keys/ separately (they never change after init). For a
    PostgreSQL store use pg_dump. Example: hotline backup /backups/alpha-2026-11-25.db -d alpha
    """
    import sqlite3

    from rich.progress import Progress

    from hotline.store.database import is_sqlite

    require_station(data_dir)
    s = settings_for(data_dir)
    if not is_sqlite(s.store_url):
        raise ConfigError(
            "this station's store is PostgreSQL",
            code="not_sqlite",
            hint="back it up with pg_dump (see docs/operations.md)",
        )
    if out.exists():
        raise InputError(f"{out} exists", hint="choose a new file name")
    src_path = s.store_url.removeprefix("sqlite:///")
    if not Path(src_path).exists():
        raise ConfigError(f"no store at {src_path}", hint="is this a station's data directory?")
    src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True)
    dst = sqlite3.connect(out)
    try:
        with Progress(console=console) as progress:
            task = progress.add_task("backing up", total=None)

            def step(_status: int, remaining: int, total: int) -> None:
                progress.update(task, total=total, completed=total - remaining)

            src.backup(dst, pages=256, progress=step)
    finally:
        src.close()
        dst.close()
    out.chmod(0o600)
    console.print(plain((f"store copied to {out}", "green")))


@handles_errors
def rebuild(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Rebuild every projection (threads, delivery state, outbox, peers) from the ledger.

    The station must be stopped. Every envelope is verified again on the way.
    Example: hotline rebuild -d alpha
    """
    from hotline.station import Station, station_lock

    require_station(data_dir)
    settings = settings_for(data_dir)
    with station_lock(data_dir):
        station = Station(settings)
        try:
            with console.status("replaying the ledger"):
                n = station.writer.run_sync(lambda tx: station.line.rebuild_projections(tx.conn))
        finally:
            station.close()
    console.print(plain((f"rebuilt projections from {n} ledger entries", "green")))
