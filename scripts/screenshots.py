"""The README's screenshots of the console, made from two stations with demo content.

Starts alpha and bravo on loopback (``hotline.localnet``, as ``hotline demo`` does),
gives them what a watch looks like: messages of every precedence both ways (a FLASH that
waits for acknowledgement among them), bravo's protected sites and an activity of alpha's
5 km from the Zaporizhzhia plant (a conflict, left open), a shift handover; then logs in
to alpha's console with Playwright and Debian's Chromium and saves PNGs in docs/img/:

- ``console-queue.png``: the action queue with the first card's details (and
  ``console-queue-dark.png``, the same in the dark theme);
- ``console-thread.png``: the threads tab with a thread open;
- ``console-map.png``: the map with the conflict;
- ``console-wall.png``: the wall view.

A tab that this console does not serve yet (its fragment answers 404) is skipped with a
note. Needs Chromium at /usr/bin/chromium (``apt-get install chromium``) and the test
extras (``pip install -e '.[test]'``: Playwright).

    python scripts/screenshots.py [--out docs/img]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hotline import localnet
from hotline.cli.demo import TEXTS
from hotline.cli.demowatch import Officer
from hotline.console import headless

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMIUM_ARGS = headless.CHROMIUM, list(headless.ARGS)
VIEWPORT = {"width": 1600, "height": 1000}
#: the console's officer on alpha (the password exists only while the script runs)
USERNAME = "officer"
#: the details column's text before anything is selected
PLACEHOLDER = "Select an item in the queue"
#: once the map says it is ready, until MapLibre has drawn what it has (Hotline.map is
#: the map, or holds it as .map)
MAP_DRAWN = """
() => { const H = window.Hotline || {}; const m = H.map && (H.map.loaded ? H.map : H.map.map);
        return !m || !m.loaded || m.loaded(); }
"""


def wait(what: str, check: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            value = check()
            if value:
                return value
        time.sleep(0.2)
    raise SystemExit(f"screenshots: {what}: not after {timeout:.0f}s")


@contextlib.contextmanager
def floor(root: Path) -> Iterator[tuple[Any, Any]]:
    a = localnet.make_station(root, "alpha")
    b = localnet.make_station(root, "bravo")
    localnet.pair(a, b)
    try:
        for st in (a, b):
            st.start(wait_s=120)
        wait("the line up", lambda: all(
            [ln["state"] for ln in st.api("GET", "/api/v1/link")] == ["UP"] for st in (a, b)
        ))  # fmt: skip
        yield a, b
    finally:
        for st in (a, b):
            st.stop()


def content(a: Any, b: Any) -> dict[str, Any]:
    """What a watch looks like at alpha; returns alpha's officer (for the login)."""
    officer = Officer(a, USERNAME, "Olena Kovalenko", ["senior_watch_officer"])
    mykola = Officer(b, "mykola", "Mykola Bondar", ["watch_officer"])
    taras = Officer(a, "taras", "Taras Melnyk", ["watch_officer"])
    # bravo's protected sites; alpha's activity near the plant: an open conflict
    n = len(b.api("POST", "/api/v1/sites/reference")["imported"])
    wait("bravo's sites at alpha", lambda: len(a.api("GET", "/api/v1/sites")["sites"]) >= n)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=2)
    a.api("POST", "/api/v1/notices", json={"notice": {
        "type": "activity_notice", "notice_id": "shot-act-1-add", "action": "add",
        "activity_id": "shot-act-1",
        "activity": {
            "kind": "artillery", "geometry": {"type": "Point", "coordinates": [34.585, 47.467]},
            "radius_m": 500.0, "altitude": {"lower_m": 0.0, "upper_m": 3000.0},
            "window": {"start": start.isoformat(),
                       "end": (start + dt.timedelta(hours=4)).isoformat()},
        },
    }})  # fmt: skip
    wait("the conflict at alpha", lambda: a.api("GET", "/api/v1/conflicts")["conflicts"])
    # messages both ways; alpha's officer acknowledges the routine ones, not the FLASH
    sent = []
    for prec in ("ROUTINE", "PRIORITY", "IMMEDIATE", "FLASH"):
        body = {"peer": "alpha", "channel": "working", "precedence": prec, "text": TEXTS[prec]}
        sent.append(mykola.api("POST", "/api/v1/messages", json=body))
    reply = officer.api("POST", "/api/v1/messages", json={
        "peer": "bravo", "channel": "working", "precedence": "PRIORITY",
        "text": "Received. Our air activity near the plant is being checked; answer by 0700Z.",
        "in_reply_to": sent[-1]["message_id"]})  # fmt: skip
    for r in sent:
        wait("delivered", lambda r=r: b.api("GET", f"/api/v1/messages/{r['message_id']}")[
            "state"] != "queued")  # fmt: skip
    for r in sent[:2]:
        officer.api("POST", f"/api/v1/messages/{r['message_id']}/ack", json={})
    taras.api("POST", "/api/v1/handovers", json={
        "note": "Night shift: bravo's FLASH on air activity near ZNPP is open; the conflict "
        "with our artillery notice needs the concern raised before 0600Z."})  # fmt: skip
    return {"officer": officer, "reply": reply}


FAILED: list[str] = []


def shot(name: str, fn: Callable[..., None], *args: Any) -> None:
    """Make one view's screenshot; a failure is reported, and the other views still made."""
    try:
        fn(*args)
    except Exception as exc:  # reported, and the script exits 1 at the end
        FAILED.append(f"{name}: {exc}")
        print(f"FAILED {FAILED[-1]}", file=sys.stderr)


def served(page: Any, st: Any, path: str) -> bool:
    return int(page.request.get(st.api_url + path).status) == 200


def skip(name: str, why: str) -> None:
    print(f"skipped {name}: {why} (re-run this script once it is there)")


def login(browser: Any, st: Any, password: str, dark: bool = False) -> Any:
    context = browser.new_context(
        viewport=VIEWPORT, color_scheme="dark" if dark else "light", device_scale_factor=1
    )
    theme = "dark" if dark else "light"
    context.add_init_script(
        f"try {{ localStorage.setItem('hl-theme', '{theme}'); }} catch (e) {{}}"
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(st.api_url + "/login")
    page.fill("#username", USERNAME)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(st.api_url + "/#*")
    page.wait_for_selector("#topbar .who")
    return page


# Every wait_for_function is given a function ("() => ..."), never an expression: under
# the console's CSP (no eval) Playwright can poll a compiled function, but an expression
# is evaluated again at each poll, which the page refuses once its first try was false.


def settle(page: Any) -> None:
    """Wait until htmx has no request in flight and the fonts are in."""
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    page.evaluate("document.fonts.ready.then(() => true)")
    page.wait_for_timeout(400)  # the relative times' first tick and CSS transitions


def queue_shot(page: Any, st: Any, out: Path, name: str) -> None:
    if not served(page, st, "/console/queue"):
        skip(name, "no action queue (/console/queue) on this console")
        return
    page.wait_for_selector("#queue [data-card]")
    card = page.query_selector("#queue [data-card][data-details]")
    if card is not None:
        card.click()
        gone = f"() => !document.querySelector('#details').textContent.includes({PLACEHOLDER!r})"
        page.wait_for_function(gone)
    settle(page)
    page.screenshot(path=str(out / name))
    print(f"wrote {out / name}")


def tab_shot(page: Any, st: Any, out: Path, tab: str, name: str, ready: str | None = None) -> None:
    if not served(page, st, f"/console/tab/{tab}"):
        skip(name, f"no {tab} tab (/console/tab/{tab}) on this console")
        return
    page.click(f"#tab-{tab}")
    page.wait_for_function("() => document.querySelector('#tab').children.length > 0")
    if ready:
        page.wait_for_function(ready, timeout=60_000)
        if tab == "map":
            page.wait_for_function(MAP_DRAWN, timeout=60_000)
    first = page.query_selector("#tab [data-details]")
    if first is not None and tab == "threads":
        first.click()
        page.wait_for_timeout(300)
    settle(page)
    page.screenshot(path=str(out / name))
    print(f"wrote {out / name}")


def wall_shot(page: Any, st: Any, out: Path, name: str) -> None:
    if not served(page, st, "/console/wall"):
        skip(name, "no wall content (/console/wall) on this console")
        return
    page.goto(st.api_url + "/wall")
    page.wait_for_selector("#main:not(:has-text('Loading…'))")
    # the wall's map has drawn its data and gone idle (static/map.js marks its element)
    page.wait_for_selector("#wall-map[data-ready]", timeout=90_000)
    settle(page)
    page.screenshot(path=str(out / name))
    print(f"wrote {out / name}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    ap.add_argument(
        "--shell",
        action="store_true",
        help="also save console-shell[-dark].png: the page as it is (to check this script)",
    )
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"screenshots: no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="hotline-shots-") as tmp, floor(Path(tmp)) as (a, b):
        made = content(a, b)
        password = made["officer"].password
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for dark in (False, True):
                    page = login(browser, a, password, dark)
                    if args.shell:
                        settle(page)
                        shell = out / f"console-shell{'-dark' if dark else ''}.png"
                        page.screenshot(path=str(shell))
                        print(f"wrote {shell}")
                    queue = "console-queue-dark.png" if dark else "console-queue.png"
                    shot(queue, queue_shot, page, a, out, queue)
                    if dark:
                        page.context.close()
                        continue
                    shot("threads", tab_shot, page, a, out, "threads", "console-thread.png")
                    shot("map", tab_shot, page, a, out, "map", "console-map.png",
                         "() => document.body.dataset.mapReady === '1'")  # fmt: skip
                    shot("wall", wall_shot, page, a, out, "console-wall.png")
                    page.context.close()
            finally:
                browser.close()
    if FAILED:
        raise SystemExit("screenshots failed: " + "; ".join(FAILED))


if __name__ == "__main__":
    main()
