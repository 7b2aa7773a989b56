"""Search and the printable log with real station processes: messages sent between two
running stations, then found through the installed CLI (``hotline search``) and printed
(``hotline log``), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import Net, cli, cli_process, db, net, send, wait_until

pytestmark = pytest.mark.integration
__all__ = ["db", "net"]


def test_messages_sent_between_stations_are_found_and_logged(net: Net, tmp_path: Path) -> None:
    a, b = net.pair()
    a.start()
    b.start()
    sent = [
        send(a, "bravo", "Колона на мосту о 04:00", precedence="IMMEDIATE"),
        send(a, "bravo", "Convoy cleared the bridge [bold]now[/bold]"),
        send(a, "bravo", "unrelated weather report"),
    ]
    for m in sent:
        wait_until(
            f"delivery of {m['message_id']}",
            lambda m=m: a.api("GET", f"/api/v1/messages/{m['message_id']}")["state"],
            lambda s: s == "delivered",
        )
    out = cli("search", "мост*", "-d", b.data_dir)
    assert out.returncode == 0, out.stderr
    assert sent[0]["message_id"][:8] in out.stdout
    assert "Колона на мосту" in out.stdout
    assert sent[2]["message_id"][:8] not in out.stdout
    assert max(len(line) for line in out.stdout.splitlines()) <= 250

    out = cli("search", '"cleared the bridge"', "--peer", "alpha", "-d", b.data_dir)
    assert out.returncode == 0, out.stderr
    assert sent[1]["message_id"][:8] in out.stdout
    assert "[bold]now[/bold]" in out.stdout  # the peer's markup printed as text

    bad = cli("search", '"unclosed', "-d", b.data_dir)
    assert bad.returncode == 1
    assert "bad_query" in bad.stderr

    page = b.api("GET", "/api/v1/search?q=convoy+OR+weather")
    assert page["items"] == []  # OR is a word here, not an operator

    html = tmp_path / "log.html"
    out = cli_process("log", "--from", "2020-01-01", "--to", "2099-12-31", "--format", "html",
              "-o", html, "-d", b.data_dir)  # fmt: skip
    assert out.returncode == 0, out.stderr
    page_text = html.read_text()
    assert "Колона на мосту" in page_text
    assert "<script" not in page_text
    status = b.api("GET", "/api/v1/status")
    assert status["counts"]["entries"] > 0
    text = cli("log", "--from", "2020-01-01", "--to", "2099-12-31", "-d", b.data_dir)
    assert text.returncode == 0, text.stderr
    assert "MESSAGES (3)" in text.stdout
    assert "peer's claimed sent time" in text.stdout
