"""The record tab and link health: checkpoints, cosignatures, the peer's log, link history.

Owns ``/console/tab/record`` (our signed checkpoints with the peers' cosignatures, per
peer the last consistency check of its log and what we cosigned of it, forks and
refusals as red rows with words, the link health of each peer, and the transcript export
link: ``GET /api/v1/transcript``, the API's) and ``/console/link/{peer}`` (one peer's
link health: state, round-trip and clock-skew history as small SVG charts drawn here,
last good test, last cosigned checkpoint, open alarms). Charts are SVG elements with
attributes (no style attribute, no script): the CSP holds. Must not touch: SQL (the
store), writes, keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from hotline.api.routers import api_router
from hotline.console.context import Console
from hotline.console.templates import utc
from hotline.service import queries
from hotline.service import record as record_view
from hotline.store.linkhistory import LinkTest

CHART_W, CHART_H, CHART_PAD = 320, 72, 4  #: an SVG chart's view box and inner margin
CHART_TESTS = 120  #: link tests a chart draws at most (the ring keeps more)
MAX_PEER_NAME = 32


@dataclass(frozen=True, slots=True)
class Chart:
    """A small line chart: the polyline, one point per answered test, failures as ticks."""

    label: str
    unit: str
    points: str
    dots: list[tuple[float, float, str]]
    fails: list[float]
    low: float | None
    high: float | None
    last: float | None
    width: int = CHART_W
    height: int = CHART_H


def chart(label: str, unit: str, tests: list[LinkTest], field: str) -> Chart:
    """``field`` ("rtt_ms" or "skew_ms") of each test, oldest left; a test that failed is
    a tick on the bottom edge. Pure: values to coordinates."""
    n = len(tests)
    values = [getattr(t, field) for t in tests]
    got = [v for v in values if v is not None]
    low, high = (min(got), max(got)) if got else (None, None)
    span_lo = min(0, low) if low is not None else 0
    span_hi = max(high, span_lo + 1) if high is not None else 1
    inner_w, inner_h = CHART_W - 2 * CHART_PAD, CHART_H - 2 * CHART_PAD

    def x(i: int) -> float:
        return round(CHART_PAD + (inner_w * i / (n - 1) if n > 1 else inner_w / 2), 1)

    def y(v: float) -> float:
        return round(CHART_PAD + inner_h * (1 - (v - span_lo) / (span_hi - span_lo)), 1)

    dots, fails = [], []
    for i, (t, v) in enumerate(zip(tests, values, strict=True)):
        if v is None:
            fails.append(x(i))
        else:
            dots.append((x(i), y(v), f"{v} {unit} at {_hhmmss(t.at_us)}"))
    return Chart(
        label=label,
        unit=unit,
        points=" ".join(f"{cx},{cy}" for cx, cy, _ in dots),
        dots=dots,
        fails=fails,
        low=low,
        high=high,
        last=got[-1] if got else None,
    )


def _hhmmss(us: int) -> str:
    return utc(us)[11:]


def record_router(console: Console) -> APIRouter:
    router = api_router(prefix="/console", include_in_schema=False)

    @router.get("/tab/record", response_class=HTMLResponse)
    async def record_tab(request: Request) -> Response:
        who = console.who(request)
        peers = console.line.peers.ids()
        data = await console.read(record_view.record, peers)
        links = await console.read(queries.link_status, peers)
        return console.render("record/tab.html", who, record=data, links=links)

    @router.get("/link/{peer}", response_class=HTMLResponse)
    async def link_details(request: Request, peer: str) -> Response:
        who = console.who(request)
        if len(peer) > MAX_PEER_NAME or peer not in console.line.peers.ids():
            return console.render("record/no_peer.html", who, status_code=404)
        d = await console.read(record_view.link_details, peer, CHART_TESTS)
        tests = d["history"]
        charts = [
            chart("Round trip", "ms", tests, "rtt_ms"),
            chart("Clock skew", "ms", tests, "skew_ms"),
        ]
        failed = sum(1 for t in tests if not t.ok)
        return console.render(
            "record/link.html", who, d=d, charts=charts, tests=len(tests), failed=failed
        )

    return router
