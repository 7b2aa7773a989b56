"""Real station processes: an officer of bravo opens alpha's message with ``hotline
show`` and the stage "read" arrives back at alpha, with who; then ``hotline reply``
marks it answered on both sides. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.integration.conftest import (  # noqa: F401 (fixtures db, net)
    FAST_LINE,
    Net,
    cli,
    cli_process,
    db,
    message,
    net,
    send,
    wait_until,
)

pytestmark = pytest.mark.integration


def _stage(m: dict[str, object]) -> object:
    recipients = m.get("recipients") or []
    return recipients[0]["stage"] if recipients else None  # type: ignore[index]


def test_read_arrives_back_at_the_sender(net: Net) -> None:  # noqa: F811
    a, b = net.pair(FAST_LINE, FAST_LINE)
    a.start()
    b.start()
    mid = send(a, "bravo", "Convoy at grid 37U DQ 12345 at 0400Z", precedence="IMMEDIATE")[
        "message_id"
    ]
    wait_until("delivery", lambda: _stage(message(a, mid)), lambda s: s == "delivered")
    shown = cli("show", mid[:8], "-d", b.data_dir)
    assert shown.returncode == 0, shown.stderr
    assert "Convoy at grid 37U DQ 12345" in shown.stdout
    assert "read" in shown.stdout
    seen = wait_until("the read at alpha", lambda: message(a, mid), lambda m: _stage(m) == "read")
    [read] = [s for s in seen["recipients"][0]["stages"] if s["stage"] == "read"]
    assert (read["by"], read["ref"]) == ("station", "bravo")
    assert read["claimed_at_us"] is not None
    replied = cli_process("reply", mid[:8], "Route noted", "-d", b.data_dir)
    assert replied.returncode == 0, replied.stderr
    wait_until("the answer at alpha", lambda: _stage(message(a, mid)), lambda s: s == "answered")
    inbox = cli("inbox", "-d", a.data_dir)
    assert "answered" in inbox.stdout
