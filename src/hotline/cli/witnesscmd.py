"""``hotline witness``: set up and run a third-party witness (an arbiter) over HTTP.

Owns the arbiter's commands only (``init``, ``trust``, ``serve``); the arbiter itself is
``hotline.arbiter``. Plain HTTP is fine for the arbiter: every request is authenticated by
the station's log signature and every answer by the arbiter's cosignature, so TLS would
add no trust (put it behind a TLS proxy if the network calls for it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hotline.cli.common import console, handles_errors, plain

witness_app = typer.Typer(
    name="witness",
    help="Run a third-party witness (an arbiter both sides accept) over HTTP.",
    no_args_is_help=True,
)

Dir = Annotated[Path, typer.Option("--dir", help="The arbiter's directory.")]


def register(app: typer.Typer) -> None:
    app.add_typer(witness_app)


@witness_app.command("init")
@handles_errors
def init(
    directory: Dir,
    name: Annotated[str, typer.Option("--name", help="The arbiter's key name.")],
) -> None:
    """Create an arbiter: a new cosigner key (0600) in DIR; prints its verifier key.

    Give the printed key to both stations (setting 'witnesses': "URL VKEY").
    Example: hotline witness init --dir arbiter --name hotline-arbiter
    """
    from hotline import arbiter

    vkey = arbiter.init(directory, name).vkey
    console.print(plain(vkey), soft_wrap=True)


@witness_app.command("trust")
@handles_errors
def trust(
    directory: Dir,
    card_file: Annotated[Path, typer.Argument(help="A station's card file.")],
) -> None:
    """Witness the log of the station whose card this is (its log key, from the card).

    Example: hotline witness trust --dir arbiter alpha.card
    """
    from hotline import arbiter
    from hotline.errors import InputError

    try:
        text = card_file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {card_file}: {exc}") from None
    origin = arbiter.trust(directory, text)
    console.print(plain((f"witnessing {origin}", "green")))


@witness_app.command("serve")
@handles_errors
def serve(
    directory: Dir,
    host: Annotated[str, typer.Option("--host", help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Listen port.")] = 8480,
) -> None:
    """Serve C2SP tlog-witness POST /add-checkpoint over plain HTTP until stopped.

    Plain HTTP: requests are authenticated by the logs' signatures, answers by the
    arbiter's cosignatures.
    Example: hotline witness serve --dir arbiter --host 0.0.0.0 --port 8480
    """
    import logging

    import uvicorn

    from hotline import arbiter

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app = arbiter.create_app(arbiter.load(directory))
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
