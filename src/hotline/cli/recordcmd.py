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
    """Export this station's whole record as a self-contained transcript, signed whole.

    Entries (exact bytes), signed checkpoints and the cosignatures of peers and of
    third-party witnesses on record, the station's card: everything 'hotline verify'
    needs, offline. The export signs a checkpoint at the exported size with the
    station's log key (it needs the station's keys and passphrase), so every entry is
    attested. Works while the station runs.
    Example: hotline export --transcript alpha.transcript.json -d alpha
    """
    from hotline.cli.common import fail
    from hotline.crypto.keys import load_station
    from hotline.ledger.note import NoteSigner
    from hotline.service import transcripts
    from hotline.service.witnessing import origin_of
    from hotline.store import database

    try:
        if transcript.exists():
            raise InputError(f"{transcript} exists", hint="choose a new file name")
        s = settings_for(data_dir)
        pw = s.passphrase.get_secret_value() if s.passphrase else None
        identity = load_station(data_dir, pw)
        card = identity.card()
        signer = NoteSigner(origin_of(card.card.station_id), identity.log_seed)
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
                    signer,
                    lambda n: progress.update(task, description=f"read {n} entries"),
                )
        finally:
            engine.dispose()
    except HotlineError as exc:
        fail(exc)
    transcript.write_text(text)
    n = len(json.loads(text)["entries"])
    console.print(
        f"[green]transcript of {card.card.station_id}: {n} entries, signed at size {n} "
        f"→ {transcript}[/]"
    )


def verify(
    transcript: Annotated[Path, typer.Argument(help="A transcript from 'hotline export'.")],
    peer_transcript: Annotated[
        Path | None, typer.Argument(help="The other side's transcript, to cross-check.")
    ] = None,
    accept_unattested: Annotated[
        bool,
        typer.Option(
            "--accept-unattested",
            help="Verify what is signed and accept entries after the last signed "
            "checkpoint (reported as not attested) instead of refusing them.",
        ),
    ] = False,
) -> None:
    """Verify transcripts offline, trusting neither station.

    Recomputes every root; checks every checkpoint signature, every envelope's
    signature, every cosignature (peers' and witnesses' on record); refuses entries no
    signed checkpoint covers (unattested), one sequence number with two envelopes
    (equivocation) and a receipt for no sent envelope (receipt_unsent). With both
    sides' transcripts it also checks each side's signed checkpoints held by the other
    (fork), envelopes against the other's log (equivocation, not_received,
    received_unsent), receipts against the entries they name (receipt_mismatch), and
    says when one transcript is simply older (stale_transcript). Exits 0 only when all
    holds; otherwise names the first bad item or each finding, with its code (see
    docs/transcript.md). Exit 1: not verified; 2: a file cannot be read.
    Example: hotline verify alpha.transcript.json bravo.transcript.json
    """
    from hotline.service import transcripts

    results = []
    for path in [transcript, *([peer_transcript] if peer_transcript else [])]:
        try:
            data = path.read_bytes()
        except OSError as exc:
            err_console.print(f"[bold red]cannot read {path}:[/] {exc.strerror}", markup=True)
            raise typer.Exit(2) from None
        try:
            with console.status(f"verifying {path.name}"):
                v = transcripts.verify(data, accept_unattested=accept_unattested)
        except HotlineError as exc:
            err_console.print(f"[bold red]{path}: NOT VERIFIED[/] ({exc.code})")
            err_console.print(f"  {exc.message}", markup=False, highlight=False)
            raise typer.Exit(1) from None
        s = transcripts.summary(v)
        console.print(f"[green]✓ {path.name}[/]: station ", end="")
        console.print(
            f"{s['station']}, {s['entries']} entries, {s['envelopes_verified']} envelope "
            f"signatures, {s['checkpoints']} signed checkpoints, {s['cosignatures']} "
            f"cosignatures ({s['witnesses']} witnesses on record); root {s['root'][:16]}…",
            markup=False,
            highlight=False,
        )
        if s["unattested"]:
            console.print(
                f"  [bold yellow]ACCEPTED UNATTESTED (--accept-unattested): "
                f"{s['unattested']} entries after the last signed checkpoint (size "
                f"{s['attested_size']}) are NOT verified: anyone could have added, dropped, "
                "reordered or edited them[/]"
            )
        results.append(v)
    if len(results) == 2:
        try:
            cc = transcripts.cross_check(results[0], results[1])
        except HotlineError as exc:
            err_console.print(f"[bold red]cross-check failed[/] ({exc.code})")
            err_console.print(f"  {exc.message}", markup=False, highlight=False)
            raise typer.Exit(1) from None
        for f in cc.findings:
            console.print(f"[bold red]✗ {f.code}[/] ({f.station}): ", end="")
            console.print(f.message, markup=False, highlight=False)
            for item in f.evidence:
                console.print(f"    evidence: {item!r}", markup=False, highlight=False)
        if not cc.clean:
            raise typer.Exit(1)
        console.print(
            f"[green]✓ cross-check[/]: everything {cc.a} sent, {cc.b} logged as received, "
            "and the other way round; receipts and checkpoints agree",
            highlight=False,
        )
