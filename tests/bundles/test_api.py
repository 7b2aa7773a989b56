"""The bundle routes of the operator API, in process: export at one station, import at
the other, the answer back; the body limit; who did it on the ledger."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from hotline.service.roles import Role
from tests.officers.conftest import Desk, error_of, run_pair, with_desks
from tests.service.conftest import Pair, ledger_actions

__all__ = ["run_pair"]
sqlite_only = pytest.mark.parametrize("run_pair", ["sqlite"], indirect=True)
MAX = 64 * 1024


@sqlite_only
def test_export_import_and_answer_through_the_api(run_pair: Any) -> None:
    async def scenario(p: Pair, alpha: Desk, bravo: Desk) -> None:
        await p.send("by hand")
        ha = await alpha.token("ada", Role.ADMINISTRATOR)
        hb = await bravo.token("bo", Role.ADMINISTRATOR)
        async with alpha.client(ha) as ca, bravo.client(hb) as cb:
            r = await ca.post("/api/v1/bundles/export", json={"peer": "bravo"})
            assert r.status_code == 200, r.text
            out = r.json()
            assert out["sequences"] == [1]
            raw = base64.b64decode(out["file"])
            assert len(raw) == out["size"]

            octets = {"content-type": "application/octet-stream"}
            r = await cb.post("/api/v1/bundles/import", content=raw, headers=octets)
            assert r.status_code == 200, r.text
            got = r.json()
            assert got["stored"] == [1]
            assert got["answer"]["answers"] == out["bundle_id"]

            r = await cb.post("/api/v1/bundles/import", content=raw, headers=octets)
            assert r.status_code == 422
            assert error_of(r)["code"] == "bundle_imported"

            answer = base64.b64decode(got["answer"]["file"])
            r = await ca.post("/api/v1/bundles/import", content=answer, headers=octets)
            assert r.status_code == 200, r.text
            assert r.json()["receipts_recorded"] == 1
            assert r.json()["answered"] == out["bundle_id"]
            assert p.outbound(p.alpha, "bravo") == []

            listed = (await ca.get("/api/v1/bundles", params={"peer": "bravo"})).json()
            ways = [(b["direction"], b["bundle_id"]) for b in listed["bundles"]]
            assert ("out", out["bundle_id"]) in ways
            assert ("in", got["answer"]["bundle_id"]) in ways

            too_big = b"\x00" * (MAX + 1)
            r = await cb.post("/api/v1/bundles/import", content=too_big, headers=octets)
            assert r.status_code == 413

            r = await ca.post("/api/v1/bundles/export", json={"peer": "bravo"})
            assert r.status_code == 422
            assert error_of(r)["code"] == "nothing_to_carry"
            r = await ca.post("/api/v1/bundles/export", json={"peer": "zulu"})
            assert r.status_code == 400
            assert error_of(r)["code"] == "unknown_peer"
        [exported] = ledger_actions(p.alpha, "bundle_export")[:1]
        assert exported["by"] == "ada"
        assert ledger_actions(p.bravo, "bundle_import")[0]["by"] == "bo"

    with_desks(run_pair, scenario, bundle_max_bytes=MAX)
