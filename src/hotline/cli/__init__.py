"""The ``hotline`` command: one Typer app, commands grouped by what the user does.

Owns argument parsing and presentation only; every command calls the station, the
service or the operator API. Must not touch: business rules.
"""

from __future__ import annotations

import typer

from hotline.cli import (
    approvalcmd,
    bundlecmd,
    channelcmd,
    deconflictcmd,
    demo,
    officercmd,
    operate,
    recordcmd,
    searchcmd,
    stationcmd,
    suspendcmd,
    watchcmd,
    witnesscmd,
)

app = typer.Typer(
    name="hotline",
    help="A direct, always-tested, end-to-end secured line between parties that do not "
    "trust each other.\n\nStart with:  hotline demo --once",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)
stationcmd.register(app)
operate.register(app)
recordcmd.register(app)
deconflictcmd.register(app)
suspendcmd.register(app)
demo.register(app)
witnesscmd.register(app)
approvalcmd.register(app)
watchcmd.register(app)
searchcmd.register(app)
officercmd.register(app)
channelcmd.register(app)
bundlecmd.register(app)


def main() -> None:
    app()
