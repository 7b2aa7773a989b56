"""The console's shell in a real browser: login, the session, CSP, the tabs, axe-core.

Each test drives Debian's Chromium against real station processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.console.conftest import AXE, PASSWORD, axe, login_page, require_browser, start_floor

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("console")]


def test_login_shows_the_watch_page_with_the_officer(floor: Any, login: Any) -> None:
    page = login(floor.alpha, "wo")
    assert "Watch Officer Ana" in page.inner_text("#topbar")
    assert "alpha" in page.inner_text("#topbar .brand")
    # the line's pill names the peer and its state in words, not only a colour
    page.wait_for_selector("#topbar .pill:has-text('bravo: UP')")
    assert page.evaluate("document.body.dataset.stream") in ("open", None)
    page.wait_for_function("() => document.body.dataset.stream === 'open'")


def test_wrong_password_is_refused_on_the_page(floor: Any, browser: Any) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(floor.alpha.api_url + "/login")
        page.fill("#username", "aud")
        page.fill("#password", "not the password")
        page.click("button[type=submit]")
        page.wait_for_selector("#login-error:not([hidden])")
        assert "wrong username, password" in page.inner_text("#login-error").lower()
        assert page.url.endswith("/login")
    finally:
        context.close()


def test_pages_without_a_session_go_to_login_and_fragments_refuse(floor: Any) -> None:
    with httpx.Client(base_url=floor.alpha.api_url, follow_redirects=False) as c:
        for path in ("/", "/wall"):
            r = c.get(path)
            assert r.status_code == 303
            assert r.headers["location"] == "/login"
        r = c.get("/console/topbar")
        assert r.status_code == 401
        r = c.get("/login")
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "'unsafe-inline'" not in csp
        assert "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        # the bundled libraries are served from the package, not the internet
        js = c.get("/static/vendor/htmx.min.js")
        assert js.status_code == 200
        assert "htmx" in js.text[:2000]
        assert c.get("/static/vendor/maplibre-gl-csp.js").status_code == 200
        assert c.get("/static/%2e%2e/%2e%2e/settings.py").status_code == 404
        # static files are GET only, and nothing else is public
        assert c.post("/static/console.js").status_code == 401


def test_a_session_cookie_needs_its_csrf_token_on_unsafe_requests(floor: Any) -> None:
    with httpx.Client(base_url=floor.alpha.api_url) as c:
        r = c.post("/api/v1/session", json={"username": "wo", "password": PASSWORD})
        assert r.status_code == 200
        token = r.json()["csrf_token"]
        # the console's script reads the same token from its cookie (double submit)
        assert r.cookies["hotline_csrf"] == token
        # (httpx keeps Secure cookies to https; a browser sends them to 127.0.0.1 too)
        c.headers["Cookie"] = f"hotline_session={r.cookies['hotline_session']}"
        assert c.get("/console/topbar").status_code == 200
        refused = c.post("/api/v1/messages", json={"peer": "bravo", "text": "x"})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "csrf"
        ok = c.post(
            "/api/v1/messages",
            json={"peer": "bravo", "text": "with the token"},
            headers={"X-CSRF-Token": token},
        )
        assert ok.status_code == 201, ok.text


def test_tabs_keyboard_and_logout(floor: Any, login: Any) -> None:
    page = login(floor.alpha, "wo")
    page.keyboard.press("g")
    page.keyboard.press("m")
    page.wait_for_function("() => location.hash === '#map'")
    assert page.get_attribute("#tab-map", "aria-selected") == "true"
    page.keyboard.press("?")
    page.wait_for_selector("#keys[open]")
    assert "Open Map" in page.inner_text("#keys-list")
    page.keyboard.press("Escape")
    page.click("#logout")
    page.wait_for_url(floor.alpha.api_url + "/login")
    page.goto(floor.alpha.api_url + "/")
    assert page.url.endswith("/login")


def test_idle_lock_asks_for_the_password_again(floor: Any, login: Any) -> None:
    page = login(floor.alpha, "wo2")
    page.evaluate("Hotline.lock()")
    page.wait_for_selector("#lock:not([hidden])")
    page.fill("#lock-password", "wrong")
    page.click("#lock-form button[type=submit]")
    page.wait_for_selector("#lock-error:not([hidden])")
    assert not page.is_hidden("#lock")
    page.fill("#lock-password", PASSWORD)
    page.click("#lock-form button[type=submit]")
    page.wait_for_selector("#lock", state="hidden")


def test_the_event_stream_banner_shows_when_the_station_is_gone(
    tmp_path: Path, browser: Any
) -> None:
    f = start_floor(tmp_path)
    try:
        page = login_page(browser, f.alpha, "wo")
        page.wait_for_function("() => document.body.dataset.stream === 'open'")
        assert page.is_hidden("#stream-banner")
        f.alpha.kill()
        page.wait_for_selector("#stream-banner:not([hidden])")
        page.context.close()
    finally:
        f.net.close()


def test_login_and_shell_have_no_serious_accessibility_violations(
    floor: Any, browser: Any, login: Any
) -> None:
    context = browser.new_context()
    try:
        if AXE.exists():  # the login page, before any session
            context.add_init_script(path=str(AXE))
        page = context.new_page()
        page.goto(floor.alpha.api_url + "/login")
        assert axe(page) == []
    finally:
        context.close()
    page = login(floor.alpha, "wo")
    page.wait_for_selector("#queue h2")
    assert axe(page) == []


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def any_store_floor(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[Any]:
    require_browser()
    if request.param == "postgresql":
        from tests.conftest import require_pg

        require_pg()
    f = start_floor(tmp_path_factory.mktemp(f"floor-{request.param}"), request.param)
    try:
        yield f
    finally:
        f.net.close()


def test_the_console_runs_on_either_store(any_store_floor: Any, login: Any) -> None:
    page = login(any_store_floor.bravo, "swo")
    assert "Senior Officer Cleo" in page.inner_text("#topbar")


def test_a_sensitive_action_asks_for_the_password_again_then_goes(
    tmp_path: Path, browser: Any
) -> None:
    """After session_reauth_s (1 s here) a suspension from the console's session is
    refused with reauth_required; the console asks for the password and retries once."""
    f = start_floor(tmp_path, session_reauth_s=1)
    try:
        page = login_page(browser, f.alpha, "swo")
        page.wait_for_timeout(1500)  # the setting's second passes: the session is old
        body = {"peer": "bravo", "channel": "working", "reason": "line check of the drill"}
        # started, not awaited (the page asks for the password before it can answer)
        call = (
            "([p, b]) => { window.__done = null;"
            " Hotline.api('POST', p, b).then(r => { window.__done = r; }); }"
        )
        page.evaluate(call, ["/api/v1/suspensions", body])
        page.wait_for_selector("#lock:not([hidden]) #lock-cancel:not([hidden])")
        assert "password again" in page.inner_text("#lock-title").lower()
        page.fill("#lock-password", PASSWORD)
        page.click("#lock-form button[type=submit]")
        page.wait_for_selector("#lock", state="hidden")
        result = page.wait_for_function("() => window.__done").json_value()
        assert result["ok"], result
        states = f.alpha.api("GET", "/api/v1/suspensions")
        assert "line check of the drill" in str(states)
        # Cancel: nothing done, and the console says so
        page.wait_for_timeout(1500)
        page.evaluate(call, ["/api/v1/suspensions/resume", {"peer": "bravo", "channel": "working"}])
        page.wait_for_selector("#lock-cancel:not([hidden])")
        page.click("#lock-cancel")
        assert page.wait_for_function("() => window.__done").json_value()["status"] == 403
        page.wait_for_selector(".toast-error:has-text('password was not given')")
        assert "line check of the drill" in str(f.alpha.api("GET", "/api/v1/suspensions"))
        page.context.close()
    finally:
        f.net.close()
