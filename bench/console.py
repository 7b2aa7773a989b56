"""Console benchmark: two real station processes on loopback and Debian's Chromium.

Prints human-readable figures; the last line is one JSON object.

- first page load: ``/`` after login, each load in a fresh browser context (cold cache,
  the session cookie carried over): navigation start to the load event, and to the action
  queue filled (``#queue`` no longer says "Loading…": the fragment ``/console/queue`` is
  swapped in); median and p95 over N loads (40; 10 with --quick). Target ≤ 300 ms. Also
  the same page reloaded in a warm context;
- event to screen: bravo's operator API sends a FLASH to alpha; from the POST to the card
  with the FLASH's unique text in alpha's ``#queue [data-card]`` (the queue helper's
  cards); where the queue has no cards yet, to the ``message.received`` event seen by
  the page's script (``Hotline.on``), and the report says which; median and p95 over N
  (40; 10 with --quick). Target ≤ 1 s;
- the map with 10,000 sites (2,000 with --quick): bravo imports a GeoJSON
  FeatureCollection of random points across Europe (nuclear plants among them), which
  notifies them to alpha; then opening alpha's map tab until
  ``document.body.dataset.mapReady === "1"`` and the map element's ``data-sites`` is the
  count; then the frame times (requestAnimationFrame deltas) during a scripted
  ``panBy`` sequence of ``Hotline.map``. Where the console has no map yet, this part is
  reported as not available (and the import is skipped).

    python bench/console.py            # full
    python bench/console.py --quick    # fewer loads and flashes, 2,000 sites
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchkit import machine, pct
from hotline import localnet
from hotline.console import headless

CHROMIUM, CHROMIUM_ARGS = headless.CHROMIUM, list(headless.ARGS)
USERNAME, PASSWORD = "bench", "bench password on loopback"
SETTINGS: dict[str, Any] = {"api_rate_per_s": 100_000.0}
#: site categories of the generated registry, with weights (nuclear plants are rare)
CATEGORIES = [
    ("nuclear_power_plant", 2),
    ("power_station", 10),
    ("substation", 20),
    ("dam", 5),
    ("water_works", 10),
    ("hospital", 25),
    ("school", 20),
    ("humanitarian_office", 4),
    ("humanitarian_warehouse", 4),
]

#: put in every page before its own scripts (init scripts are not subject to the CSP):
#: when the queue's placeholder goes, and when a card or an event with a token shows
PROBE = """
(() => {
  window.__hl = {queueReady: null, cards: {}, events: {}, tokens: []};
  const seen = () => {
    const q = document.getElementById("queue");
    if (!q) return;
    if (window.__hl.queueReady === null && !q.textContent.includes("Loading…"))
      window.__hl.queueReady = performance.now();
    const cards = q.querySelectorAll("[data-card]");
    for (const t of window.__hl.tokens) {
      if (window.__hl.cards[t]) continue;
      for (const c of cards) {
        if (c.textContent.includes(t)) { window.__hl.cards[t] = Date.now(); break; }
      }
    }
  };
  document.addEventListener("DOMContentLoaded", () => {
    const all = {childList: true, subtree: true, characterData: true};
    new MutationObserver(seen).observe(document.body, all);
    if (window.Hotline && window.Hotline.on)
      window.Hotline.on("message.received", (d) => {
        const now = Date.now();
        for (const t of window.__hl.tokens) {
          if ((d.text || "").includes(t)) window.__hl.events[t] = now;
        }
      });
  });
})();
"""

#: each subresource of the page: its path and the time from request start to its end
RESOURCES = """
() => performance.getEntriesByType("resource").filter((e) => e.responseEnd > 0)
  .map((e) => [new URL(e.name).pathname, e.responseEnd - e.startTime])
"""

#: frame times while panning: rAF deltas during a sequence of panBy calls
PAN = """
async (steps) => {
  const H = window.Hotline || {};
  const m = H.map && typeof H.map.panBy === "function" ? H.map : (H.map && H.map.map);
  if (!m || typeof m.panBy !== "function") return null;
  const deltas = [];
  let last = performance.now(), running = true;
  const loop = (t) => {
    deltas.push(t - last); last = t; if (running) requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
  for (let i = 0; i < steps; i++) {
    const dx = (i % 4 < 2 ? 1 : -1) * 400, dy = (i % 2 ? 1 : -1) * 250;
    await new Promise((ok) => { m.once("moveend", ok); m.panBy([dx, dy], {duration: 400}); });
  }
  running = false;
  return deltas.slice(1);
}
"""


def sites_geojson(n: int, seed: int = 9) -> dict[str, Any]:
    """``n`` point sites at random across Europe (deterministic for a seed)."""
    rnd = random.Random(seed)
    names, weights = zip(*CATEGORIES, strict=True)
    features = []
    for i in range(n):
        category = rnd.choices(names, weights)[0]
        radius = 30_000.0 if category == "nuclear_power_plant" else rnd.choice([500.0, 1_000.0])
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Point",
                    "coordinates": [round(rnd.uniform(-10, 40), 5), round(rnd.uniform(36, 70), 5)],
                },
                "properties": {
                    "site_id": f"EU-{i:05d}",
                    "name": f"{category.replace('_', ' ')} {i}",
                    "category": category,
                    "protection_radius_m": radius,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


@contextlib.contextmanager
def stations(root: Path) -> Iterator[tuple[localnet.LocalStation, localnet.LocalStation]]:
    alpha = localnet.make_station(root, "alpha", settings=SETTINGS)
    bravo = localnet.make_station(root, "bravo", settings=SETTINGS)
    localnet.pair(alpha, bravo)
    try:
        for st in (alpha, bravo):
            st.start(wait_s=120)
            st.api("POST", "/api/v1/officers", json={
                "username": USERNAME, "display_name": "Bench officer",
                "roles": ["senior_watch_officer"], "password": PASSWORD,
            })  # fmt: skip
        wait("the line up both ways", 60, lambda: all(
            [ln["state"] for ln in st.api("GET", "/api/v1/link")] == ["UP"] for st in (alpha, bravo)
        ))  # fmt: skip
        yield alpha, bravo
    finally:
        for st in (alpha, bravo):
            st.stop()


def wait(what: str, timeout: float, check: Any, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(interval)
    raise SystemExit(f"bench: {what}: not after {timeout:.0f}s")


def login_state(browser: Any, st: localnet.LocalStation) -> Any:
    """Log in through the login page; the context's cookies for the next contexts."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(st.api_url + "/login")
    page.fill("#username", USERNAME)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(st.api_url + "/#*")
    state = context.storage_state()
    context.close()
    return state


def available(page: Any, st: Any, path: str) -> bool:
    """Whether this console serves the fragment ``path`` (a 404: the area is not built)."""
    return int(page.request.get(st.api_url + path).status) == 200


def stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": round(statistics.median(values), 1), "p95": round(pct(values, 95), 1),
            "n": len(values)}  # fmt: skip


def page_loads(browser: Any, st: Any, state: Any, n: int, queue: bool) -> dict[str, Any]:
    cold_load, cold_queue, warm_load, warm_queue = [], [], [], []
    cold_ttfb, cold_dcl = [], []
    resources: dict[str, list[float]] = {}
    nav = (
        "() => { const e = performance.getEntriesByType('navigation')[0];"
        " return [e.loadEventEnd, e.responseStart, e.domContentLoadedEventEnd]; }"
    )
    for i in range(n):
        context = browser.new_context(storage_state=state, viewport={"width": 1600, "height": 1000})
        context.add_init_script(PROBE)
        page = context.new_page()
        for warm in (False, True) if i < n // 2 else (False,):
            page.goto(st.api_url + "/", wait_until="load")
            loaded = "() => performance.getEntriesByType('navigation')[0].loadEventEnd > 0"
            page.wait_for_function(loaded)
            load, ttfb, dcl = page.evaluate(nav)
            (warm_load if warm else cold_load).append(load)
            if not warm:
                cold_ttfb.append(ttfb)
                cold_dcl.append(dcl)
                for name, took in page.evaluate(RESOURCES):
                    resources.setdefault(name, []).append(took)
            if queue:
                page.wait_for_function("() => window.__hl.queueReady !== null")
                (warm_queue if warm else cold_queue).append(page.evaluate("window.__hl.queueReady"))
        context.close()
    return {
        "cold_load_ms": stats(cold_load),
        "cold_first_byte_ms": stats(cold_ttfb),
        "cold_dom_content_loaded_ms": stats(cold_dcl),
        "cold_slowest_resources_ms": dict(
            sorted(
                ((k, round(statistics.median(v), 1)) for k, v in resources.items()),
                key=lambda kv: -kv[1],
            )[:5]
        ),
        "cold_queue_ms": stats(cold_queue),
        "warm_load_ms": stats(warm_load),
        "warm_queue_ms": stats(warm_queue),
    }


def event_to_screen(
    browser: Any, alpha: Any, bravo: Any, state: Any, n: int, cards: bool
) -> dict[str, Any]:
    context = browser.new_context(storage_state=state, viewport={"width": 1600, "height": 1000})
    context.add_init_script(PROBE)
    page = context.new_page()
    page.goto(alpha.api_url + "/")
    # a function, not an expression: the page's CSP refuses eval of a string at each poll
    page.wait_for_function("() => document.body.dataset.stream === 'open'")
    where = "cards" if cards else "events"
    out: list[float] = []
    with bravo.client() as c:
        for i in range(n):
            token = f"bench-{i}-{uuid.uuid4().hex[:12]}"
            page.evaluate("(t) => window.__hl.tokens.push(t)", token)
            body = {"peer": "alpha", "channel": "working", "precedence": "FLASH",
                    "text": f"Console bench {token}: confirm receipt."}  # fmt: skip
            t0 = time.time() * 1000
            r = c.post("/api/v1/messages", json=body)
            r.raise_for_status()
            page.wait_for_function(f"(t) => window.__hl.{where}[t]", arg=token, timeout=30_000)
            seen = page.evaluate(f"(t) => window.__hl.{where}[t]", token)
            out.append(seen - t0)
    context.close()
    return {"latency_ms": stats(out), "measured_to": "queue card" if cards else "page event"}


def map_with_sites(
    browser: Any, alpha: Any, bravo: Any, state: Any, n_sites: int
) -> dict[str, Any]:
    context = browser.new_context(storage_state=state, viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.goto(alpha.api_url + "/")
    if not available(page, alpha, "/console/tab/map"):
        context.close()
        return {"available": False, "why": "no /console/tab/map on this console"}
    before = len(alpha.api("GET", "/api/v1/sites")["sites"])
    t = time.perf_counter()
    body = json.dumps(sites_geojson(n_sites)).encode()
    with bravo.client(timeout=1800) as c:
        r = c.post("/api/v1/sites/import", content=body, params={"prefix": "bench-eu"})
        r.raise_for_status()
    import_s = time.perf_counter() - t
    total = before + n_sites

    def arrived() -> bool:
        return len(alpha.api("GET", "/api/v1/sites")["sites"]) >= total

    wait("the sites at alpha", 600, arrived, interval=2.0)
    notified_s = time.perf_counter() - t
    ready = (
        "(n) => document.body.dataset.mapReady === '1' &&"
        " Number((document.querySelector('[data-sites]') || {dataset: {}}).dataset.sites) >= n"
    )
    t0 = page.evaluate("performance.now()")
    page.click("#tab-map")
    try:
        page.wait_for_function(ready, arg=total, timeout=120_000, polling=10)
    except Exception as exc:  # reported, not raised: the merger re-runs the bench
        context.close()
        return {"available": False, "why": f"the map never said ready with {total} sites: {exc}"}
    open_ms = page.evaluate("performance.now()") - t0
    deltas = page.evaluate(PAN, 12)
    context.close()
    out: dict[str, Any] = {
        "available": True, "sites": total, "import_s": round(import_s, 1),
        "notified_s": round(notified_s, 1), "open_ms": round(open_ms, 1),
    }  # fmt: skip
    if deltas is None:
        out["pan"] = "not available: no Hotline.map with panBy"
    else:
        out["pan_frame_ms"] = stats(deltas)
        out["pan_frame_max_ms"] = round(max(deltas), 1)
        out["pan_fps"] = round(1000 / statistics.mean(deltas), 1)
    return out


def fmt(s: dict[str, float] | None) -> str:
    return "not available" if s is None else f"median {s['median']:.0f} ms, p95 {s['p95']:.0f} ms"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 loads and flashes, 2,000 sites")
    ap.add_argument("--loads", type=int, default=None)
    ap.add_argument("--flashes", type=int, default=None)
    ap.add_argument("--sites", type=int, default=None)
    ap.add_argument("--no-map", action="store_true", help="skip the map part")
    args = ap.parse_args(argv)
    n_loads = args.loads or (10 if args.quick else 40)
    n_flash = args.flashes or (10 if args.quick else 40)
    n_sites = args.sites or (2_000 if args.quick else 10_000)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"bench: no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    summary: dict[str, Any] = {"bench": "console", "machine": machine(), "quick": args.quick}
    with (
        tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp,
        stations(Path(tmp)) as (
            alpha,
            bravo,
        ),
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        state = login_state(browser, alpha)
        probe = browser.new_context(storage_state=state)
        page = probe.new_page()
        page.goto(alpha.api_url + "/")
        queue = available(page, alpha, "/console/queue")
        probe.close()
        summary["queue_available"] = queue
        summary["page_load"] = page_loads(browser, alpha, state, n_loads, queue)
        summary["event_to_screen"] = event_to_screen(browser, alpha, bravo, state, n_flash, queue)
        if args.no_map:
            summary["map"] = {"available": False, "why": "--no-map"}
        else:
            summary["map"] = map_with_sites(browser, alpha, bravo, state, n_sites)
        browser.close()

    m, pl, ev = summary["machine"], summary["page_load"], summary["event_to_screen"]
    mp = summary["map"]
    print(f"machine: {m['nproc']} cores, {m['cpu']}, load {m['loadavg_1m_at_start']:.2f} at start")
    print(f"first load of / (cold context), to the load event: {fmt(pl['cold_load_ms'])}"
          "  (target ≤ 300 ms)")  # fmt: skip
    print(f"  of which first byte: {fmt(pl['cold_first_byte_ms'])}; DOMContentLoaded: "
          f"{fmt(pl['cold_dom_content_loaded_ms'])}")  # fmt: skip
    slow = ", ".join(f"{k} {v:.0f} ms" for k, v in pl["cold_slowest_resources_ms"].items())
    print(f"  slowest resources (median, request to end): {slow}")
    if queue:
        print(f"first load of /, to the action queue filled: {fmt(pl['cold_queue_ms'])}")
    else:
        print("first load of /, to the action queue filled: not available (no /console/queue)")
    print(f"reload (warm context), to the load event: {fmt(pl['warm_load_ms'])}"
          + (f"; to the queue: {fmt(pl['warm_queue_ms'])}" if queue else ""))  # fmt: skip
    print(f"FLASH from bravo's API to alpha's screen ({ev['measured_to']}): "
          f"{fmt(ev['latency_ms'])}  (target ≤ 1 s)")  # fmt: skip
    if not queue:
        print("  (no queue cards on this console: measured to the page's message.received "
              "event via Hotline.on, not to a card on screen)")  # fmt: skip
    if mp["available"]:
        print(f"map: {mp['sites']} sites (import {mp['import_s']} s, at alpha after "
              f"{mp['notified_s']} s); tab open to ready {mp['open_ms']:.0f} ms")  # fmt: skip
        if "pan_frame_ms" in mp:
            print(f"  panning: frame {fmt(mp['pan_frame_ms'])}, max {mp['pan_frame_max_ms']} ms, "
                  f"{mp['pan_fps']} fps")  # fmt: skip
        else:
            print(f"  panning: {mp['pan']}")
    else:
        print(f"map: not available ({mp['why']})")
    sys.stdout.flush()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
