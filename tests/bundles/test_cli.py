"""The CLI with two real station processes that have no network path to each other
(each card names an endpoint where nothing listens): bundles carried as files."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline import localnet
from hotline.crypto.keys import update_endpoints
from tests.integration.conftest import Net, cli, cli_process, db, message, net, send

__all__ = ["db", "net"]


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_two_stations_exchange_bundle_files_through_the_cli(net: Net, tmp_path: Path) -> None:
    a, b = net.station("alpha"), net.station("bravo")
    for st in (a, b):  # a card whose endpoint no one listens on: no network path
        update_endpoints(st.data_dir, [f"https://127.0.0.1:{localnet.free_port()}"])
    localnet.pair(a, b)
    a.start()
    b.start()
    sent = [send(a, "bravo", f"по бумаге {i}")["message_id"] for i in range(3)]
    back = send(b, "alpha", "reply by hand")["message_id"]

    carried = tmp_path / "usb" / "alpha-to-bravo.bundle"
    carried.parent.mkdir()
    r = cli_process("bundle", "export", "--peer", "bravo", carried, "-d", a.data_dir)
    assert r.returncode == 0, r.stderr
    assert "3 envelope(s)" in r.stdout
    assert carried.stat().st_mode & 0o777 == 0o600

    r = cli("bundle", "import", carried, "-d", b.data_dir)
    assert r.returncode == 0, r.stderr
    assert "3 new, 0 already held" in r.stdout
    answer = carried.with_name(carried.name + ".answer")
    assert answer.is_file()
    assert message(b, back)["state"] != "delivered"

    again = cli("bundle", "import", carried, "-d", b.data_dir)
    assert again.returncode == 1
    assert "bundle_imported" in again.stderr

    r = cli("bundle", "import", answer, "--answer", tmp_path / "last.bundle", "-d", a.data_dir)
    assert r.returncode == 0, r.stderr
    assert "3 receipt(s) recorded" in r.stdout
    assert [message(a, mid)["state"] for mid in sent] == ["delivered"] * 3

    r = cli("bundle", "import", tmp_path / "last.bundle", "-d", b.data_dir)
    assert r.returncode == 0, r.stderr
    assert message(b, back)["state"] == "delivered"

    listed = cli("bundle", "list", "--peer", "bravo", "-d", a.data_dir)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("out") >= 2
