"""The hand-carried path from the command line: ``hotline bundle export``, ``import`` and
``list``, through the running station's operator API.

Owns presentation and the files only: a bundle is written to a new file (never over an
existing one unless asked) with mode 0600 and fsynced before the command says it is
written; the import's answering bundle is written next to it. Bundle ids and peer names
came from elsewhere: printed through ``common.plain``. Must not touch: business rules,
the file format (the station makes and checks bundles).
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Iterator
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
    us_to_text,
)
from hotline.errors import InputError

bundle_app = typer.Typer(
    help="Bundle files: the hand-carried path (USB stick, e-mail attachment) when no "
    "network path reaches a peer.",
    no_args_is_help=True,
)

Force = Annotated[bool, typer.Option("--force", help="Overwrite the file if it exists.")]


def register(app: typer.Typer) -> None:
    bundle_app.command("export")(export)
    bundle_app.command("import")(import_)
    bundle_app.command("list")(list_bundles)
    app.add_typer(bundle_app, name="bundle")


@contextlib.contextmanager
def _working(what: str) -> Iterator[None]:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=console, transient=True,
    ) as progress:  # fmt: skip
        progress.add_task(what, total=None)
        yield


def _write(path: Path, data: bytes, force: bool) -> None:
    """Write ``data`` to ``path`` (0600), durable before this returns."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise InputError(
            f"{path} exists", code="file_exists", hint="choose another name, or pass --force"
        ) from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _written(bundle: dict[str, Any], path: Path, force: bool) -> None:
    _write(path, base64.b64decode(bundle["file"]), force)
    seqs = bundle["sequences"]
    console.print(
        plain(("wrote", "green"), f" {path}: bundle {bundle['bundle_id']} for {bundle['peer']}, ",
              f"{len(seqs)} envelope(s), {bundle['receipts']} receipt(s), {bundle['size']} bytes")
    )  # fmt: skip
    if seqs:
        console.print(plain("  sequence numbers: ", ", ".join(str(s) for s in seqs)))


@handles_errors
def export(
    file: Annotated[Path, typer.Argument(help="The bundle file to write.")],
    peer: Annotated[str, typer.Option("--peer", help="The peer the bundle is for.")],
    force: Force = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Write everything pending for a peer (every envelope it has not receipted, and the
    receipts owed to it) into one signed file, to carry by hand. Import it at the peer
    with 'hotline bundle import', then import the answering bundle here.

    Example: hotline bundle export --peer bravo /media/usb/alpha-to-bravo.bundle -d alpha
    """
    api = Api(data_dir)
    with _working(f"exporting for {peer}"):
        bundle = api.call("POST", "/api/v1/bundles/export", json={"peer": peer})
    _written(bundle, file, force)


@handles_errors
def import_(
    file: Annotated[
        Path, typer.Argument(help="The bundle file to import.", exists=True, dir_okay=False)
    ],
    answer: Annotated[
        Path | None,
        typer.Option("--answer", help="Where to write the answering bundle (FILE.answer)."),
    ] = None,
    force: Force = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Import a peer's bundle file exactly once (a second import of the same file is
    refused and changes nothing) and write the answering bundle to carry back.

    Example: hotline bundle import /media/usb/alpha-to-bravo.bundle -d bravo
    """
    api = Api(data_dir)
    raw = file.read_bytes()
    with _working(f"importing {file.name}"):
        got = api.call(
            "POST",
            "/api/v1/bundles/import",
            content=raw,
            headers={"content-type": "application/octet-stream"},
            timeout=600,
        )
    console.print(
        plain(("imported", "green"), f" bundle {got['bundle_id']} from {got['peer']}: ",
              f"{len(got['stored'])} new, {len(got['duplicates'])} already held, ",
              f"{sum(got['refused'].values())} refused; {got['receipts_recorded']} receipt(s) "
              f"recorded, {got['receipts_known']} already known")
    )  # fmt: skip
    for code, n in sorted({**got["refused"], **got["receipts_refused"]}.items()):
        console.print(plain(("  refused", "yellow"), f" {n} x {code}"))
    if got["answered"]:
        console.print(plain(f"  it answers our bundle {got['answered']}"))
    if got["answer"] is None:
        console.print(plain("nothing to carry back"))
        return
    _written(got["answer"], answer or file.with_name(file.name + ".answer"), force)
    console.print(plain("carry it back and import it there: hotline bundle import FILE"))


@handles_errors
def list_bundles(
    peer: Annotated[str | None, typer.Option("--peer", help="Only this peer's.")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """The bundles exported and imported, newest first.

    Example: hotline bundle list --peer bravo -d alpha
    """
    params = {} if peer is None else {"peer": peer}
    rows = Api(data_dir).call("GET", "/api/v1/bundles", params=params)["bundles"]
    table = Table("recorded", "peer", "way", "bundle", "envelopes", "receipts", "answered")
    for r in rows:
        table.add_row(
            us_to_text(r["recorded_at_us"]), plain(r["peer"]), r["direction"],
            plain(r["bundle_id"]), str(r["envelopes"]), str(r["receipts"]),
            us_to_text(r["answered_at_us"]) if r["direction"] == "out" else "",
        )  # fmt: skip
    console.print(table)
