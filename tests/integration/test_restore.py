"""Restore from backup, end to end with real station processes (SQLite and PostgreSQL).

alpha backs up its store, sends more, stops; its store is put back from the backup; it
starts again. Its first link test learns that bravo holds sequence numbers the restored
ledger lacks: alpha resumes above them (on the record), raises ``sequence_gap`` naming
them, and new messages arrive; bravo names what alpha lost of the messages it had
sent (``peer_lost``). Then the fork bravo sees (it had cosigned a checkpoint
of alpha's log taken after the backup) is resolved as docs/operations.md says: bravo's
operator re-confirms alpha's card with ``hotline peer rekey`` and witnessing resumes.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from hotline.localnet import LocalStation
from tests.conftest import PG_ADMIN_URL
from tests.integration.conftest import (
    FAST_LINE,
    Net,
    alarms,
    cli,
    cli_process,
    message,
    messages,
    send,
    stop_station,
    wait_until,
)


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def backup(st: LocalStation, db: str, to: Path) -> None:
    if db == "sqlite":
        done = cli_process("backup", to, "-d", st.data_dir)
        assert done.returncode == 0, done.stdout + done.stderr
    else:
        url = st.extra_settings["database_url"]
        subprocess.run(["pg_dump", "--format=custom", f"--file={to}", _libpq(url)], check=True)


def restore(st: LocalStation, db: str, frm: Path) -> None:
    """Put the store back as docs/operations.md (Restore) says; the station is stopped."""
    if db == "sqlite":
        store = st.data_dir / "store.db"
        for extra in ("store.db-wal", "store.db-shm"):
            (st.data_dir / extra).unlink(missing_ok=True)
        shutil.copyfile(frm, store)
        return
    url = st.extra_settings["database_url"]
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    subprocess.run(["pg_restore", "--no-owner", f"--dbname={_libpq(url)}", str(frm)], check=True)


def delivered(st: LocalStation, ids: list[str]) -> bool:
    return all(message(st, i)["delivered_at_us"] is not None for i in ids)


def test_a_restored_station_resumes_and_names_the_gap(net: Net, db: str, tmp_path: Path) -> None:
    a, b = net.pair(FAST_LINE, FAST_LINE)
    a.start()
    b.start()
    first = [send(a, "bravo", f"before the backup {i}")["message_id"] for i in range(2)]
    wait_until("the first messages delivered", lambda: delivered(a, first), timeout=60)
    saved = tmp_path / "alpha.backup"
    backup(a, db, saved)
    lost = [send(a, "bravo", f"after the backup {i}")["message_id"] for i in range(3)]
    wait_until("the later messages delivered", lambda: delivered(a, lost), timeout=60)
    theirs = send(b, "alpha", "from bravo after the backup")["message_id"]
    wait_until("bravo's message delivered", lambda: delivered(b, [theirs]), timeout=60)
    # bravo cosigns a checkpoint of alpha's log that the backup does not have
    size_after = a.api("POST", "/api/v1/link/bravo/test")
    assert size_after["ok"] is True
    stop_station(a)
    restore(a, db, saved)
    a.start()

    def gap() -> list[dict[str, Any]]:
        return [x for x in alarms(a) if x.get("kind") == "sequence_gap"]

    [alarm] = wait_until("alpha's sequence_gap alarm", gap, timeout=60)
    assert alarm["peer"] == "bravo"
    assert "3..5" in alarm["detail"]
    after = send(a, "bravo", "after the restore")
    assert after["sequence"] == 6
    wait_until(
        "the new message at bravo",
        lambda: [m for m in messages(b, direction="in") if m["message_id"] == after["message_id"]],
        timeout=60,
    )
    wait_until("its receipt at alpha", lambda: delivered(a, [after["message_id"]]), timeout=60)
    # bravo learns that alpha lost what bravo sent after the backup (alpha had receipted it)
    [lost] = wait_until(
        "bravo's peer_lost alarm",
        lambda: [x for x in alarms(b) if x.get("kind") == "peer_lost"],
        timeout=60,
    )
    assert lost["ref"] == "1"
    # the fork bravo sees, and its resolution (docs/operations.md, Restore)
    wait_until(
        "bravo's fork alarm",
        lambda: [x for x in alarms(b) if x.get("kind") == "fork"],
        timeout=60,
    )
    card = tmp_path / "alpha.card"
    got = cli("card", "-d", a.data_dir, "--out", card)
    assert got.returncode == 0, got.stderr
    got = cli("peer", "rekey", card, "--yes", "--operator", "duty", "-d", b.data_dir)
    assert got.returncode == 0, got.stdout + got.stderr
    wait_until(
        "bravo cosigning alpha's restored log",
        lambda: a.api("POST", "/api/v1/link/bravo/test"),
        lambda r: r.get("cosigned") is True,
        timeout=60,
    )
