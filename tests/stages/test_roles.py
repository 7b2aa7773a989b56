"""Roles on the stages use cases: a refusal names the roles needed; an auditor's look
records no read; the action queue lists acknowledgements only for officers who may
acknowledge. Nothing here takes an officer's name from a request: the principal's."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hotline.errors import PermissionDeniedError
from hotline.service import actions, stages
from hotline.service.roles import Principal, Role
from tests.service.conftest import ledger_actions
from tests.stages.conftest import AUDITOR, KIM, Pair

ADMIN = Principal("adm.choi", "Admin Choi", frozenset({Role.ADMINISTRATOR}))


def test_roles_on_reads_acknowledgements_and_the_queue(run_pair: Callable[..., None]) -> None:
    async def scenario(p: Pair) -> None:
        mid = str((await p.send("for the watch")).message_id)
        await p.flush()
        ctx = p.bravo.line.ctx
        assert await stages.mark_read(ctx, AUDITOR, mid) is False  # a look, not a read
        assert await stages.mark_read(ctx, ADMIN, mid) is False
        assert ledger_actions(p.bravo, "read") == []
        for who in (AUDITOR, ADMIN):
            with pytest.raises(PermissionDeniedError) as err:
                await stages.acknowledge_many(ctx, who, message_ids=[mid])
            assert "watch_officer" in err.value.message
            with pytest.raises(PermissionDeniedError):
                await stages.acknowledge_alarm(ctx, who, 1, None)
        with p.bravo.read_engine.connect() as conn:
            now = p.clock.now_us()
            assert actions.required(conn, AUDITOR, now) == []
            [item] = actions.required(conn, KIM, now)
        assert (item.kind, item.ref, item.peer) == ("acknowledge", mid, "alpha")
        done = await stages.acknowledge_many(ctx, KIM, message_ids=[mid], note="seen")
        assert done == {"acknowledged": [mid], "skipped": []}
        [ack] = ledger_actions(p.bravo, "ack")
        assert (ack["officer"], ack["note"]) == ("wo.kim", "seen")

    run_pair(scenario)
