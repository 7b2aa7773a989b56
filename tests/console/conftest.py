"""Fixtures of the console's browser tests: real station processes, real Chromium.

Playwright (the Python package) drives Debian's Chromium (/usr/bin/chromium, installed
by .ci/run); no browser is downloaded. Without Chromium or Playwright the tests skip
with the reason, except in CI, where they fail. The stations are real processes on
loopback with real TLS between them (``tests/integration/conftest.py``'s ``Net``), on
SQLite: the store's behaviour on PostgreSQL is covered by the store and API tests; one
console test (test_shell.py) runs on both.

``officers`` are created through the operator API with the station's bootstrap token;
``login`` logs a fresh browser context in through the login page, as an officer would.
``axe`` runs axe-core (frontend/node_modules, from the npm lockfile) on a page.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hotline.console import headless
from tests.integration.conftest import FAST_LINE, Net, _make_net, wait_until

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = headless.CHROMIUM
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "correct horse battery staple"
CHROMIUM_ARGS = list(headless.ARGS)

#: every console test module's officers: username -> (display name, roles)
OFFICERS: dict[str, tuple[str, list[str]]] = {
    "wo": ("Watch Officer Ana", ["watch_officer"]),
    "wo2": ("Watch Officer Ben", ["watch_officer"]),
    "swo": ("Senior Officer Cleo", ["senior_watch_officer"]),
    "aud": ("Auditor Dev", ["auditor"]),
}


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)"
    return None


def require_browser() -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser tests: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one module. Not for the session: Playwright's sync API keeps an event
    loop running on the main thread while it is open, and the other tests of an xdist
    worker call ``asyncio.run``. Also: ``page.wait_for_function`` takes the function
    form (``"() => expr"``); a bare expression is compiled by eval, which the console's
    CSP refuses."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Floor:
    """Two paired, running stations with the same officers on each."""

    net: Net
    alpha: Any
    bravo: Any

    def station(self, name: str) -> Any:
        return {"alpha": self.alpha, "bravo": self.bravo}[name]


def add_officers(st: Any) -> None:
    for username, (display, roles) in OFFICERS.items():
        st.api(
            "POST",
            "/api/v1/officers",
            json={
                "username": username,
                "display_name": display,
                "roles": roles,
                "password": PASSWORD,
            },
        )


def start_floor(root: Path, db: str = "sqlite", **settings: Any) -> Floor:
    net = _make_net(root, db)
    a, b = net.pair({**FAST_LINE, **settings}, {**FAST_LINE, **settings})
    a.start()
    b.start()
    for st in (a, b):
        add_officers(st)
    wait_until(
        "the line up both ways",
        lambda: [ln["state"] for st in (a, b) for ln in st.api("GET", "/api/v1/link")],
        lambda states: states == ["UP", "UP"],
    )
    return Floor(net, a, b)


@pytest.fixture(scope="module")
def floor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Floor]:
    """alpha and bravo, running, paired, the line up, officers on both (per module)."""
    require_browser()
    f = start_floor(tmp_path_factory.mktemp("floor"))
    try:
        yield f
    finally:
        f.net.close()


def login_page(browser: Any, st: Any, username: str, password: str = PASSWORD) -> Any:
    """A new browser context logged in on ``st`` through its login page; the console page.

    ``page.hl_errors`` collects uncaught script errors and CSP violations; the ``login``
    fixture fails the test if there are any."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    if AXE.exists():  # injected by the browser itself: the page's CSP does not apply
        context.add_init_script(path=str(AXE))
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on(
        "console",
        lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    page.hl_errors = errors  # type: ignore[attr-defined]
    page.goto(st.api_url + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(st.api_url + "/#*")
    page.wait_for_selector("#topbar .who")
    return page


@pytest.fixture
def login(browser: Any) -> Iterator[Callable[..., Any]]:
    pages: list[Any] = []

    def open_(st: Any, username: str = "wo", password: str = PASSWORD) -> Any:
        page = login_page(browser, st, username, password)
        pages.append(page)
        return page

    yield open_
    problems = [e for page in pages for e in page.hl_errors]
    for page in pages:
        page.context.close()
    assert not problems, f"script errors or CSP violations in the console: {problems}"


def axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not AXE.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{AXE} is missing: .ci/run installs it (cd frontend && npm ci)")
        pytest.skip("axe-core is not installed: cd frontend && npm ci")
    result = page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})); }"
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]
