"""Record commands: export a transcript of the ledger; verify transcripts offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from hotline.cli.common import DEFAULT_DATA_DIR, DataDir, console, err_console, settings_for
from hotline.errors import HotlineError, InputError


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("verify")(verify)


def export(
    transcript: Annotated[
        Path, typer.Option("--transcript", help="Write the transcript (JSON) to this file.")
    ],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Export this station's whole record as a self-contained transcript.

    Entries (exact bytes), signed checkpoints and peers' cosignatures, the station's
    card: everything 'hotline verify' needs, offline. Works while the station runs.
    Example: hotline export --transcript alpha.transcript.json -d alpha
    """
    from hotline.cli.common import fail
    from hotline.crypto.keys import load_station
    from hotline.service import transcripts
    from hotline.store import database

    try:
        if transcript.exists():
            raise InputError(f"{transcript} exists", hint="choose a new file name")
        s = settings_for(data_dir)
        pw = s.passphrase.get_secret_value() if s.passphrase else None
        card = load_station(data_dir, pw).card()
        engine = database.create(s.store_url)
        try:
            with (
                Progress(
                    SpinnerColumn(),
                    TextColumn("{task.description}"),
                    console=console,
                    transient=True,
                ) as progress,
                engine.connect() as conn,
            ):
                task = progress.add_task("reading the ledger", total=None)
                text = transcripts.export(
                    conn,
                    card,
                    lambda n: progress.update(task, description=f"read {n} entries"),
                )
        finally:
            engine.dispose()
    except HotlineError as exc:
        fail(exc)
    transcript.write_text(text)
    n = len(json.loads(text)["entries"])
    console.print(f"[green]transcript of {card.card.station_id}: {n} entries → {transcript}[/]")


def verify(
    transcript: Annotated[Path, typer.Argument(help="A transcript from 'hotline export'.")],
    peer_transcript: Annotated[
        Path | None, typer.Argument(help="The other side's transcript, to cross-check.")
    ] = None,
) -> None:
    """Verify transcripts offline, trusting neither station.

    Recomputes every root, checks every signature and cosignature and every envelope's
    signature; with both sides' transcripts, shows that everything each side sent the
    other logged as received (and lists what is missing). Exits 0 only when all holds;
    otherwise names the first bad entry.
    Example: hotline verify alpha.transcript.json bravo.transcript.json
    """
    from hotline.service import transcripts

    results = []
    for path in [transcript, *([peer_transcript] if peer_transcript else [])]:
        try:
            data = path.read_bytes()
        except OSError as exc:
            err_console.print(f"[bold red]cannot read {path}:[/] {exc.strerror}")
            raise typer.Exit(2) from None
        try:
            with console.status(f"verifying {path.name}"):
                v = transcripts.verify(data)
        except HotlineError as exc:
            err_console.print(
                f"[bold red]{path}: NOT VERIFIED[/] — {exc.message} [dim]({exc.code})[/]"
            )
            raise typer.Exit(1) from None
        s = transcripts.summary(v)
        console.print(
            f"[green]✓ {path.name}[/]: station [bold]{s['station']}[/], "
            f"{s['entries']} entries, {s['envelopes_verified']} envelope signatures, "
            f"{s['checkpoints']} signed checkpoints, {s['cosignatures']} cosignatures; "
            f"root {s['root'][:16]}…"
        )
        if s["unattested"]:
            console.print(
                f"  [yellow]{s['unattested']} entries after the last signed "
                "checkpoint: not yet attested[/]"
            )
        results.append(v)
    if len(results) == 2:
        try:
            cc = transcripts.cross_check(results[0], results[1])
        except HotlineError as exc:
            err_console.print(f"[bold red]cross-check failed:[/] {exc.message}")
            raise typer.Exit(1) from None
        a, b = cc.a, cc.b
        for label, items in (
            (f"sent by {a}, not logged as received by {b}", cc.a_to_b_missing),
            (f"sent by {b}, not logged as received by {a}", cc.b_to_a_missing),
            (f"logged as received by {b}, never sent by {a}", cc.b_received_unsent),
            (f"logged as received by {a}, never sent by {b}", cc.a_received_unsent),
        ):
            for seq, h in items:
                console.print(f"[bold red]✗ {label}[/]: sequence {seq}, envelope {h.hex()[:16]}…")
        for direction, seq in cc.conflicts:
            console.print(f"[bold red]✗ {direction} sequence {seq}: the two logs differ[/]")
        if not cc.clean:
            raise typer.Exit(1)
        console.print(
            f"[green]✓ cross-check[/]: everything {a} sent, {b} logged as received, "
            "and the other way round"
        )
