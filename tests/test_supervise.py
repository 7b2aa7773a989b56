"""A background round that fails unexpectedly is logged and tried again; cancel stops."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hotline.supervise import forever


def test_an_unexpected_error_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    async def round_() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("database went away")
        if len(calls) == 3:
            raise asyncio.CancelledError

    caplog.set_level(logging.ERROR)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(forever("test loop", round_, pause_s=0))
    assert calls == [0, 1, 2]
    [record] = [r for r in caplog.records if "test loop failed" in r.getMessage()]
    assert record.exc_info is not None
