"""``hotline demo --once`` does not depend on timing: its last check (every message is in
its recipient's log at a checkpoint its sender cosigned) holds whatever the stations'
scheduled link tests proved before the demo's own tests ran. Before, on a loaded machine,
the scheduled tests proved the receipts first, the demo's tests proved none, and the demo
failed with "only 0 receipts proved".

The stations are fakes with a real Merkle tree (hotline.ledger.tree), driven through the
real demo command; their link tests prove nothing, as after a scheduled test.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hotline.cli import app, demo
from hotline.crypto import primitives
from hotline.errors import HotlineError
from hotline.ledger import merkle, tree
from hotline.ledger.checkpoint import Checkpoint, sign_checkpoint
from hotline.ledger.note import NoteSigner


class FakeStation:
    def __init__(self, root: Path, station_id: str, tamper: str | None = None) -> None:
        self.station_id, self.data_dir = station_id, root / station_id
        self.api_url = f"http://fake/{station_id}"
        self.proc = None
        self.peer: FakeStation | None = None
        self.tamper = tamper  # "proof" or "cosignature": this station misbehaves
        self.nodes = tree.MemoryNodeStore()
        self.frontier: list[bytes] = []
        self.size = 0
        self.index: dict[str, int] = {}
        self.out: dict[str, dict[str, Any]] = {}
        self.cosigned_at = 0
        self.officers: list[dict[str, Any]] = []
        self.signer = NoteSigner(station_id, primitives.random_bytes(32))
        self._append(b"genesis")

    def start(self, wait_s: float = 0) -> None:
        pass

    def stop(self) -> None:
        pass

    def _append(self, entry: bytes) -> int:
        nodes, self.frontier = tree.append_leaves(self.size, self.frontier,
                                                  [merkle.leaf_hash(entry)])  # fmt: skip
        self.nodes.put_nodes(nodes)
        self.size += 1
        return self.size - 1

    def api(self, method: str, path: str, json: Any = None, params: Any = None) -> Any:
        if (method, path) == ("POST", "/api/v1/officers"):  # icrc (no peer here) too
            self.officers.append(json)
            return {"username": json["username"]}
        assert self.peer is not None
        parts = path.removeprefix("/api/v1/").split("/")
        if (method, parts) == ("POST", ["messages"]):
            mid = str(uuid.uuid4())
            self.peer.index[mid] = self.peer._append(mid.encode())
            self._append(b"sent " + mid.encode())
            self.out[mid] = {
                "message_id": mid, "peer": json["peer"], "state": "delivered",
                "precedence": json["precedence"], "sequence": len(self.out) + 1,
                "sent_at_us": 1, "delivered_at_us": 2, "acknowledged_by": None,
            }  # fmt: skip
            return {"message_id": mid}
        if method == "POST" and parts[0] == "messages" and parts[-1] == "ack":
            self.peer.out[parts[1]] |= {"state": "acknowledged", "acknowledged_by": "station"}
            return {}
        if (method, parts[0]) == ("GET", "messages"):
            return self.out[parts[1]]
        if (method, parts[0]) == ("POST", "link"):
            # the peer cosigns our checkpoint; our receipts were proved by a scheduled test
            self.cosigned_at = self.size
            return {
                "ok": True, "cosigned": True, "state": "UP", "rtt_ms": 1.0, "skew_ms": 0.0,
                "checkpoint_size": self.size, "receipts_proved": 0, "receipts_failed": 0,
            }  # fmt: skip
        if path == "/api/v1/ledger/checkpoint":
            size = self.cosigned_at
            cp = Checkpoint(f"hotline/{self.station_id}", size,
                            tree.root_at(self.nodes, size, self.size))  # fmt: skip
            by = [] if self.tamper == "cosignature" else [self.peer.station_id]
            return {"size": size, "note": sign_checkpoint(cp, self.signer), "cosigned_by": by}
        if path == "/api/v1/ledger/proof/inclusion":
            idx, size = self.index[params["message_id"]], params["size"]
            proof = tree.inclusion_proof(self.nodes, idx, size, self.size)
            if self.tamper == "proof":
                proof = [bytes(32), *proof[1:]]
            leaf = merkle.leaf_hash(params["message_id"].encode())
            return {"leaf_index": idx, "tree_size": size, "leaf_hash": leaf.hex(),
                    "root": tree.root_at(self.nodes, size, self.size).hex(),
                    "proof": [h.hex() for h in proof]}  # fmt: skip
        if path == "/api/v1/status":
            return {"counts": {"entries": self.size, "sent": 4, "received": 4, "queued": 0}}
        if path == "/api/v1/alarms":
            return []
        raise HotlineError(f"the fake has no {method} {path}", code="fake")


DECONFLICTION = {
    "sites": 38,
    "conflict": {"activity_id": "demo-act-1", "activity_station": "alpha", "distance_m": 4900.0,
                 "site_id": "UA-NPP-ZNPP", "protected_distance_m": 5500.0},
    "alarms": {"alpha": [{"severity": "CRITICAL"}], "bravo": [{"severity": "CRITICAL"}]},
    "concern": {"concern_id": "c-1", "steps": [{"step": "raise", "by": "bravo"}]},
}  # fmt: skip


#: act two (cli/demowatch.py), as its summary reads it; the real one runs in
#: tests/integration/test_cli.py
PEOPLE = {
    "officers": [{"username": "olena", "station": "alpha", "data_dir": "/x", "password": "p"}],
    "approval": {"approval": {"requester": "olena", "decided_by": "taras"}},
    "escalation": {"alpha": [{"step": 1, "role": "senior_watch_officer", "origin": "local",
                              "status": "raised"}], "bravo": []},
    "facilitated": {"group": {"group_id": "g", "recipients": [{"peer": "bravo",
                                                                "state": "delivered"}]},
                    "disseminations": [{"to": "ops cell", "officer": "mykola"}]},
}  # fmt: skip


def _demo(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tamper: str | None = None,
    made: dict[str, FakeStation] | None = None,
    once: bool = True,
) -> Any:
    """Run the demo on fakes; ``made`` gets the fake stations by id."""
    from hotline import localnet

    made = {} if made is None else made

    def make_station(root: Path, station_id: str, **_: Any) -> FakeStation:
        made[station_id] = FakeStation(root, station_id, tamper if station_id == "bravo" else None)
        return made[station_id]

    def pair(a: FakeStation, b: FakeStation) -> str:
        if {a.station_id, b.station_id} == {"alpha", "bravo"}:  # icrc only in act two
            a.peer, b.peer = b, a
        return "12345 67890"

    monkeypatch.setattr(localnet, "make_station", make_station)
    monkeypatch.setattr(localnet, "pair", pair)
    monkeypatch.setattr(demo, "_deconfliction", lambda *a: DECONFLICTION)
    monkeypatch.setattr(demo, "_people", lambda *a: PEOPLE)
    args = ["demo", "--dir", str(tmp_path / "d"), "--timeout", "5"]
    return CliRunner().invoke(app, [*args, "--once"] if once else args)


def test_the_demo_passes_when_scheduled_tests_proved_the_receipts_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _demo(tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "4 messages verified in the peer's cosigned log" in flat
    assert "0 receipts proved by these tests" in flat


@pytest.mark.parametrize(
    ("tamper", "said"),
    [("proof", "is not proved in bravo's log"), ("cosignature", "lacks alpha's cosignature")],
)
def test_the_demo_fails_when_a_message_is_not_in_the_peers_cosigned_log(
    tamper: str, said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _demo(tmp_path, monkeypatch, tamper)
    assert result.exit_code == 1, result.output
    flat = " ".join(result.output.split())
    assert "demo failed at step 'link tests each way" in flat
    assert said in flat


def test_the_demo_prints_each_stations_console_and_a_login_made_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One account ``officer`` per station (icrc too), with its own random password, made
    through the station's API; the summary prints the address and the login once."""
    made: dict[str, FakeStation] = {}
    result = _demo(tmp_path, monkeypatch, made=made)
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    passwords = []
    for name in ("alpha", "bravo", "icrc"):
        [account] = made[name].officers
        assert account["username"] == "officer"
        assert account["roles"] == ["senior_watch_officer"]
        password = account["password"]
        assert len(password) >= 12
        assert f"console {name}: http://fake/{name}/ login: officer / {password}" in flat
        passwords.append(password)
    assert len(set(passwords)) == 3, "each station has its own password"
    # --once with --dir: how to serve a console again
    assert "the stations are stopped; 'hotline run -d" in flat
    # the summary lines before it are all still there
    assert "safety number alpha–bravo: 12345 67890" in flat
    assert re.search(r"alpha: ledger \d+ entries", flat)


def test_without_once_the_consoles_are_printed_before_the_stations_stay_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --once the demo prints the same console lines, then how to use the running
    stations, and waits for Ctrl-C (here: the fakes have no process, so it returns)."""
    made: dict[str, FakeStation] = {}
    result = _demo(tmp_path, monkeypatch, made=made, once=False)
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    for name in ("alpha", "bravo", "icrc"):
        password = made[name].officers[0]["password"]
        assert f"console {name}: http://fake/{name}/ login: officer / {password}" in flat
    assert flat.index("console icrc:") < flat.index("Ctrl-C stops both stations")
    assert "the stations are stopped" not in flat
