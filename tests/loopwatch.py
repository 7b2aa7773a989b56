"""What ran on the event loop's thread: a watch for tests that the loop never blocks.

A SQLAlchemy ``before_cursor_execute`` listener on a station's read engine records every
statement run on the loop's thread; a statement run anywhere else waits until the loop
runs a callback (the loop probe): if the loop were blocked at that moment the probe would
count a stall. Functions that parse large input are watched the same way (``wrap``).
Used by tests/api/test_peer_endpoint_loop.py, tests/api/test_operator_loop.py and
tests/link/test_linktest_loop.py.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa


class LoopWatch:
    """What ran on the event loop's thread, and whether the loop stalled meanwhile."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.loop_thread = threading.get_ident()
        self.on_loop: list[str] = []
        self.off_loop = 0
        #: every name ``wrap`` saw (on the loop or off it): proof that the path ran
        self.seen: set[str] = set()
        self.stalls = 0
        self._engines: list[sa.Engine] = []

    def statement(self, _c: Any, _cur: Any, statement: str, *_: Any) -> None:
        self._saw(statement.split("\n")[0][:100])

    def _saw(self, what: str) -> None:
        if threading.get_ident() == self.loop_thread:
            self.on_loop.append(what)
            return
        self.off_loop += 1
        alive = threading.Event()
        self.loop.call_soon_threadsafe(alive.set)
        if not alive.wait(30):
            self.stalls += 1

    def engine(self, engine: sa.Engine) -> None:
        sa.event.listen(engine, "before_cursor_execute", self.statement)
        self._engines.append(engine)

    def wrap(self, fn: Callable[..., Any], name: str) -> Callable[..., Any]:
        def watched(*args: Any, **kw: Any) -> Any:
            self.seen.add(name)
            self._saw(name)
            return fn(*args, **kw)

        return watched

    def close(self) -> None:
        for engine in self._engines:
            sa.event.remove(engine, "before_cursor_execute", self.statement)
