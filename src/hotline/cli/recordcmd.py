"""Record commands: export a transcript of the ledger; verify transcripts offline.

What a transcript holds (station ids, messages, findings) was written by a station this
one need not trust: it is printed with ``plain`` (cli/common.py), never as Rich markup.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hotline.cli.common import (
    DEFAULT_DATA_DIR,
    DataDir,
    console,
    err_console,
    plain,
    settings_for,
)
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
    from rich.progress import Progress, SpinnerColumn, TextColumn

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
        plain(
            (f"transcript of {card.card.station_id}: {n} entries, signed at size {n} → ", "green"),
            (str(transcript), "green"),
        )
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
            err_console.print(plain((f"cannot read {path}:", "bold red"), f" {exc.strerror}"))
            raise typer.Exit(2) from None
        try:
            with console.status(plain(f"verifying {path.name}")):
                v = transcripts.verify(data, accept_unattested=accept_unattested)
        except HotlineError as exc:
            err_console.print(plain((f"{path}: NOT VERIFIED", "bold red"), f" ({exc.code})"))
            err_console.print(plain(f"  {exc.message}"))
            raise typer.Exit(1) from None
        s = transcripts.summary(v)
        console.print(
            plain(
                (f"✓ {path.name}", "green"),
                f": station {s['station']}, {s['entries']} entries, {s['envelopes_verified']} "
                f"envelope signatures, {s['checkpoints']} signed checkpoints, "
                f"{s['cosignatures']} cosignatures ({s['witnesses']} witnesses on record); "
                f"root {s['root'][:16]}…",
            )
        )
        if s["unattested"]:
            console.print(
                plain(
                    "  ",
                    (
                        "ACCEPTED UNATTESTED (--accept-unattested): "
                        f"{s['unattested']} entries after the last signed checkpoint (size "
                        f"{s['attested_size']}) are NOT verified: anyone could have added, "
                        "dropped, reordered or edited them",
                        "bold yellow",
                    ),
                )
            )
        results.append(v)
    if len(results) == 2:
        try:
            cc = transcripts.cross_check(results[0], results[1])
        except HotlineError as exc:
            err_console.print(plain(("cross-check failed", "bold red"), f" ({exc.code})"))
            err_console.print(plain(f"  {exc.message}"))
            raise typer.Exit(1) from None
        for f in cc.findings:
            console.print(plain((f"✗ {f.code}", "bold red"), f" ({f.station}): {f.message}"))
            for item in f.evidence:
                console.print(plain(f"    evidence: {item!r}"))
        if not cc.clean:
            raise typer.Exit(1)
        console.print(
            plain(
                ("✓ cross-check", "green"),
                f": everything {cc.a} sent, {cc.b} logged as received, "
                "and the other way round; receipts and checkpoints agree",
            )
        )
