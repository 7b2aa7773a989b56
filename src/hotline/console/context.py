"""What every console page and fragment needs: the line, the officers, the templates.

Owns rendering (``Console.render``: a template with the officer, the station and the
CSRF-free page context; the autoescaping environment of ``templates.py``) and the one
way a fragment reads the store (``Console.read``: a read-side query in a worker thread,
never on the event loop). Must not touch: SQL, writes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment

from hotline.api.auth import principal
from hotline.errors import NotFoundError
from hotline.service import registry
from hotline.service.line import Line
from hotline.service.officers import Officers
from hotline.service.roles import Action, Principal

T = TypeVar("T")


@dataclass
class Console:
    line: Line
    officers: Officers
    templates: Environment
    #: the deconfliction service (sites, activities, conflicts, concerns), if this station
    #: runs one
    deconfliction: Any = None

    @property
    def station_id(self) -> str:
        return self.line.station_id

    def now(self) -> dt.datetime:
        """The line's clock now, as an aware UTC datetime (the registry's time)."""
        return registry.utc(self.line.clock.now_us())

    def projection(self) -> Any:
        """The registry's projection (sites, activities, concerns); 404 without one."""
        if self.deconfliction is None:
            raise NotFoundError("this station keeps no registry")
        return self.deconfliction.projection

    def who(self, request: Request) -> Principal:
        """The officer the gate authenticated (fragments are never public)."""
        return principal(request)

    async def read(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """``fn(conn, *args, **kw)`` on a read connection, in a worker thread."""

        def run() -> T:
            with self.line.reader.connect() as conn:
                return fn(conn, *args, **kw)

        return await asyncio.to_thread(run)

    def render(
        self, name: str, who: Principal | None, status_code: int = 200, **values: Any
    ) -> HTMLResponse:
        """A page or fragment; ``values`` are escaped by the template environment."""
        template = self.templates.get_template(name)
        html = template.render(
            station=self.station_id,
            me=who,
            can=(lambda action: who is not None and who.may(Action(action))),
            **values,
        )
        return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})
