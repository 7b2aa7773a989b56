"""``hotline demo --paths``: one line on two paths, a cut cable, and a bundle by hand.

Two stations, alpha and bravo, on loopback, each sending on HTTPS (preferred) and on a
NATS JetStream relay. Alpha reaches bravo's peer endpoint through a cable that the demo
cuts (``localnet.Cable``: the connections close and new ones are refused, as a cut line
does), and reaches the relay through a second one. The demo shows messages on HTTPS,
the same line failing over to the relay when the HTTPS cable is cut (and how long the
last message took), the HTTPS path DOWN with its own alarm, HTTPS preferred again once
healed, and, with alpha cut off on both paths, a bundle file carried by hand and
answered. Every check waits for a state, never for a time. Must not touch: a station's
internals (only its operator API, like any operator).
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import socket
import time
import urllib.parse
from pathlib import Path
from typing import Any

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from hotline.cli import demowatch
from hotline.cli.common import console, plain
from hotline.cli.demo import DemoFailure, _step, _wait

DEFAULT_RELAY = "nats://127.0.0.1:4222"


def relay_reachable(url: str) -> str | None:
    """None when something answers TCP at the relay's address; else why not."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 4222
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        return f"no NATS relay answers at {host}:{port} ({exc.strerror or exc})"
    return None


def _message(st: Any, mid: str) -> dict[str, Any]:
    got: dict[str, Any] = st.api("GET", f"/api/v1/messages/{mid}")
    return got


def _send(src: Any, dst: Any, text: str, precedence: str = "PRIORITY") -> str:
    r = src.api(
        "POST",
        "/api/v1/messages",
        json={"peer": dst.station_id, "channel": "working", "precedence": precedence,
              "text": text},
    )  # fmt: skip
    return str(r["message_id"])


def _paths(st: Any, peer: str) -> dict[str, str]:
    for ln in st.api("GET", "/api/v1/link"):
        if ln["peer"] == peer:
            return {p["path"]: p["state"] for p in ln.get("paths", [])}
    return {}


def _delivered(st: Any, mids: list[str]) -> bool:
    return all(_message(st, m)["state"] in ("delivered", "acknowledged") for m in mids)


def _alarm_refs(st: Any, kind: str) -> list[str]:
    return [a.get("ref") or "" for a in st.api("GET", "/api/v1/alarms") if a["kind"] == kind]


def run_paths(root: Path, stations: list[Any], timeout: float, relay: str) -> dict[str, Any]:
    """The paths demo; ``stations`` gets each station once started (the caller stops
    them), and the cables are closed here."""
    from hotline import localnet

    out: dict[str, Any] = {"root": str(root), "relay": relay}
    prefix = f"demo{secrets.token_hex(3)}"
    parts = urllib.parse.urlsplit(relay)
    relay_port = parts.port or 4222
    common = {
        **demowatch.SETTINGS,
        "paths": ["https", "nats"],
        "relay_prefix": prefix,
        "link_test_interval_s": 3.0,
        "peer_timeout_s": 2.0,
    }
    with contextlib.ExitStack() as cables, Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=console, transient=False,
    ) as progress:  # fmt: skip
        with _step(progress, "create alpha and bravo, each on HTTPS and the NATS relay"):
            bravo_api, bravo_peer = localnet.free_port(), localnet.free_port()
            https = localnet.Cable(bravo_peer)
            cables.callback(https.close)
            to_relay = localnet.Cable(relay_port)
            cables.callback(to_relay.close)
            a = localnet.make_station(
                root, "alpha",
                settings={**common, "relay_url": f"nats://127.0.0.1:{to_relay.port}"},
            )  # fmt: skip
            b = localnet.make_station(
                root, "bravo", settings={**common, "relay_url": relay},
                ports=(bravo_api, bravo_peer), endpoint_port=https.port,
            )  # fmt: skip
        with _step(progress, "pair them and start them"):
            out["safety_number"] = localnet.pair(a, b)
            stations += [a, b]
            for st in stations:
                st.start(wait_s=timeout)
        step = "both paths UP on both lines (their own link tests)"
        with _step(progress, step):
            _wait(step, timeout, lambda: _paths(a, "bravo") == {"https": "UP", "nats": "UP"})
            _wait(step, timeout, lambda: _paths(b, "alpha") == {"https": "UP", "nats": "UP"})
        step = "three messages alpha → bravo: on HTTPS, the preferred path"
        with _step(progress, step):
            first = [_send(a, b, f"Line check {i} on the preferred path.") for i in range(3)]
            _wait(step, timeout, lambda: _delivered(a, first))
        step = "cut the HTTPS cable; five messages fail over to the relay"
        with _step(progress, step):
            https.cut()
            cut_at = time.monotonic()
            during = [_send(a, b, f"Sent with the HTTPS cable cut ({i}).") for i in range(5)]
            _wait(step, timeout, lambda: _delivered(a, during))
            out["failover_s"] = time.monotonic() - cut_at
        step = "the HTTPS path is DOWN with its own alarm; the line stays UP"
        with _step(progress, step):
            _wait(step, timeout, lambda: _paths(a, "bravo").get("https") == "DOWN")
            _wait(step, timeout, lambda: "https" in _alarm_refs(a, "path_down"))
            out["line_state"] = next(
                ln["state"] for ln in a.api("GET", "/api/v1/link") if ln["peer"] == "bravo"
            )
            out["paths_while_cut"] = _paths(a, "bravo")
        step = "heal the cable: HTTPS UP again and preferred again"
        with _step(progress, step):
            https.heal()
            _wait(step, timeout, lambda: _paths(a, "bravo").get("https") == "UP")
            after = [_send(a, b, "The cable is mended.")]
            _wait(step, timeout, lambda: _delivered(a, after))
        out["messages"] = [_message(a, m) for m in first + during + after]
        out["bundle"] = _bundle(progress, root, a, b, https, to_relay, timeout)
        out["messages"] += [_message(a, m) for m in out["bundle"]["messages"]]
        out["alarms"] = a.api("GET", "/api/v1/alarms")
    return out


def _bundle(
    progress: Progress, root: Path, a: Any, b: Any, https: Any, to_relay: Any, timeout: float
) -> dict[str, Any]:
    """Alpha cut off on both paths: its messages go to bravo in a bundle file."""
    step = "cut alpha off on both paths; two messages wait in its outbox"
    with _step(progress, step):
        https.cut()
        to_relay.cut()
        mids = [_send(a, b, f"Carried by hand ({i}).", "IMMEDIATE") for i in range(2)]
        _wait(step, timeout, lambda: all(_message(a, m)["attempts"] for m in mids))
        if _delivered(a, mids):
            raise DemoFailure(step, "the messages were delivered although both cables are cut")
    with _step(progress, "alpha writes a bundle file for bravo (hotline bundle export)"):
        made = a.api("POST", "/api/v1/bundles/export", json={"peer": "bravo"})
        to_bravo = root / "alpha-to-bravo.bundle"
        to_bravo.write_bytes(base64.b64decode(made["file"]))
    with _step(progress, "bravo imports it once and writes the answer (hotline bundle import)"):
        got = b.api("POST", "/api/v1/bundles/import", content=to_bravo.read_bytes(),
                    headers={"content-type": "application/octet-stream"})  # fmt: skip
        if got["answer"] is None:
            raise DemoFailure("bundle import", "bravo wrote no answer")
        answer = root / "bravo-to-alpha.bundle"
        answer.write_bytes(base64.b64decode(got["answer"]["file"]))
        again = b.api_status("POST", "/api/v1/bundles/import", content=to_bravo.read_bytes(),
                             headers={"content-type": "application/octet-stream"})  # fmt: skip
    step = "alpha imports the answer: its receipts take the messages off the outbox"
    with _step(progress, step):
        back = a.api("POST", "/api/v1/bundles/import", content=answer.read_bytes(),
                     headers={"content-type": "application/octet-stream"})  # fmt: skip
        _wait(step, timeout, lambda: _delivered(a, mids))
    https.heal()
    to_relay.heal()
    return {
        "file": str(to_bravo),
        "size": made["size"],
        "sequences": made["sequences"],
        "stored_at_bravo": got["stored"],
        "second_import": again,
        "receipts_recorded": back["receipts_recorded"],
        "messages": mids,
    }


def print_paths(out: dict[str, Any]) -> None:
    console.print()
    console.print(plain(("One line, two paths", "bold"), f" (relay {out['relay']})"))
    table = Table("message", "state", "carried by", "text")
    for m in out["messages"]:
        table.add_row(
            plain(m["message_id"][:8]), plain(m["state"]), plain(m.get("path") or "—"),
            plain(str(m["body"].get("text", ""))[:60]),
        )  # fmt: skip
    console.print(table)
    console.print(plain(f"failover: the five messages sent after the cut were all delivered "
                        f"{out['failover_s']:.2f} s after it, on the relay"))  # fmt: skip
    states = ", ".join(f"{k} {v}" for k, v in sorted(out["paths_while_cut"].items()))
    console.print(plain(f"while cut: line {out['line_state']}; paths {states}"))
    b = out["bundle"]
    status, body = b["second_import"]
    code = body.get("error", {}).get("code", "") if isinstance(body, dict) else ""
    console.print(plain(f"bundle by hand: {b['file']} ({b['size']} bytes, sequence numbers "
                        f"{b['sequences']}) stored {b['stored_at_bravo']} at bravo; the answer "
                        f"recorded {b['receipts_recorded']} receipts at alpha"))  # fmt: skip
    console.print(plain(f"the same bundle imported again: refused, {status} {code} "
                        "(nothing changed)"))  # fmt: skip
    open_alarms = sorted({f"{x['kind']}({x.get('ref') or ''})" for x in out["alarms"]})
    console.print(plain(f"alpha's open alarms now: {', '.join(open_alarms) or 'none'}"))


def fail_if_no_relay(relay: str) -> None:
    why = relay_reachable(relay)
    if why is not None:
        raise DemoFailure(
            "find the relay",
            f"{why}: start one (nats-server -js) or name another with --relay URL",
        )
