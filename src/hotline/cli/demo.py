"""``hotline demo``: two stations on loopback, paired, talking, tested, acknowledged.

Every check waits for a state, never for a time, and none depends on what the stations'
own scheduled link tests did meanwhile: that each message is in its recipient's log is
checked by the demo itself, with the recipient's inclusion proof against the checkpoint
the sender cosigned. Values from the APIs are printed through ``common.plain``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from hotline.cli.common import console, err_console, plain, us_to_text
from hotline.errors import HotlineError

if TYPE_CHECKING:
    from rich.progress import Progress

PRECEDENCES = ["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"]
TEXTS = {
    "FLASH": "Air activity reported 4 km from the nuclear plant perimeter. Confirm intentions.",
    "IMMEDIATE": "Repair crew to enter substation area at 0600Z. Request confirmation.",
    "PRIORITY": "Convoy route for tomorrow attached on the working channel.",
    "ROUTINE": "Scheduled line check. Nothing further.",
}


class DemoFailure(Exception):
    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"{step}: {detail}")
        self.step, self.detail = step, detail


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    once: Annotated[
        bool, typer.Option("--once", help="Do the exchange, print a summary, exit.")
    ] = False,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Keep the stations in DIR/alpha and DIR/bravo.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds each step may take.")] = 60.0,
    paths: Annotated[
        bool,
        typer.Option(
            "--paths",
            help="Show one line on two paths instead: HTTPS and a NATS relay, a cut cable "
            "and the failover, and a bundle file carried by hand.",
        ),
    ] = False,
    relay: Annotated[
        str, typer.Option(help="With --paths: the NATS JetStream relay to use.")
    ] = "nats://127.0.0.1:4222",
) -> None:
    """Start two stations, alpha and bravo, on loopback; pair them; exchange messages of
    every precedence, acknowledge them, and test the line each way.

    The summary ends with each station's web console address and a login made for it
    (user officer, a random password printed once). Stays up until Ctrl-C, or with
    --once prints the summary and exits 0 (non-zero naming the first step that failed).

    With --paths: alpha and bravo each send on HTTPS and on a NATS relay (a nats-server
    with JetStream at --relay); the demo cuts the HTTPS cable (the line fails over to the
    relay), mends it, then cuts alpha off on both paths and carries a bundle file by hand.

    Example: hotline demo --once --dir /tmp/hotline-demo
    Example: hotline demo --paths --once
    """
    from hotline import localnet
    from hotline.cli import demopaths

    with contextlib.ExitStack() as stack:
        root = directory or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="hotline-"))
        )
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            for name in ("alpha", "bravo", "icrc"):
                if (directory / name).exists():
                    err_console.print(
                        plain(("error:", "bold red"), f" {directory / name} exists: choose an "
                             "empty --dir")
                    )  # fmt: skip
                    raise typer.Exit(2)
        stations: list[localnet.LocalStation] = []
        stack.callback(_stop_all, stations)
        try:
            if paths:
                demopaths.fail_if_no_relay(relay)
                summary = demopaths.run_paths(root, stations, timeout, relay)
            else:
                summary = _run(root, stations, timeout)
        except DemoFailure as exc:
            err_console.print(
                plain((f"demo failed at step '{exc.step}':", "bold red"), " ", exc.detail)
            )
            for s in stations:
                err_console.print(plain(f"  log of {s.station_id}: {s.data_dir / 'station.log'}"))
            raise typer.Exit(1) from None
        if paths:
            demopaths.print_paths(summary)
        else:
            _print_summary(summary)
        if once:
            if directory is not None:
                console.print(plain(f"the stations are stopped; 'hotline run -d {directory}/NAME' "
                                    "serves a station and its console again"))  # fmt: skip
            else:
                console.print(plain("the stations are stopped and removed (--once); without "
                                    "--once they stay up for the consoles"))  # fmt: skip
            return
        if paths:
            console.print(plain(f"try: hotline send bravo 'hello' -d {stations[0].data_dir}"))
            console.print("[dim]Ctrl-C stops both stations.[/]")
            with contextlib.suppress(KeyboardInterrupt):
                while all(s.proc is not None and s.proc.poll() is None for s in stations):
                    time.sleep(0.5)
            return
        a, b, c = stations
        console.print()
        console.print(
            plain(f"alpha API {a.api_url}   bravo API {b.api_url}   icrc API {c.api_url}")
        )
        for who in summary["people"]["officers"]:
            console.print(plain(f"officer {who['username']} at {who['station']}: "
                                f"hotline login -u {who['username']} -d {who['data_dir']} "
                                f"(password {who['password']})"))  # fmt: skip
        console.print(plain(f"try: hotline send bravo 'hello' -d {a.data_dir}"))
        console.print(plain(f"     hotline inbox -d {b.data_dir}"))
        console.print("[dim]Ctrl-C stops both stations.[/]")
        with contextlib.suppress(KeyboardInterrupt):
            while all(s.proc is not None and s.proc.poll() is None for s in stations):
                time.sleep(0.5)


def _stop_all(stations: list[Any]) -> None:
    for s in stations:
        s.stop()


def _state_of(station: Any, message_id: str) -> str:
    return str(station.api("GET", f"/api/v1/messages/{message_id}")["state"])


def _is(station: Any, message_id: str, state: str) -> bool:
    return _state_of(station, message_id) == state


def _is_not(station: Any, message_id: str, state: str) -> bool:
    return _state_of(station, message_id) != state


@contextlib.contextmanager
def _step(progress: Progress, name: str) -> Iterator[None]:
    task = progress.add_task(name, total=None)
    try:
        yield
    except DemoFailure:
        raise
    except HotlineError as exc:
        raise DemoFailure(name, str(exc)) from exc
    progress.update(task, description=f"[green]✓[/] {escape(name)}", completed=1, total=1)


def _wait(step: str, timeout: float, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise DemoFailure(step, f"not done after {timeout:.0f}s")


def _run(root: Path, stations: list[Any], timeout: float) -> dict[str, Any]:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from hotline import localnet
    from hotline.cli import demowatch

    out: dict[str, Any] = {"root": str(root)}
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        with _step(progress, "create stations alpha and bravo, and icrc (a facilitator)"):
            a = localnet.make_station(root, "alpha", settings=demowatch.SETTINGS)
            b = localnet.make_station(root, "bravo", settings=demowatch.SETTINGS)
            c = localnet.make_station(root, "icrc", settings=demowatch.SETTINGS)
        with _step(progress, "pair them (exchange cards)"):
            out["safety_number"] = localnet.pair(a, b)
            localnet.pair(a, c)
            localnet.pair(b, c)
        with _step(progress, "start the stations"):
            stations += [a, b, c]
            for st in stations:
                st.start(wait_s=timeout)
        out["apis"] = {"alpha": a.api_url, "bravo": b.api_url}
        sent: list[tuple[Any, Any, dict[str, Any]]] = []
        with _step(progress, "send one message of each precedence, each way"):
            for src, dst in ((a, b), (b, a)):
                for prec in PRECEDENCES:
                    r = src.api(
                        "POST",
                        "/api/v1/messages",
                        json={
                            "peer": dst.station_id,
                            "channel": "working",
                            "precedence": prec,
                            "text": TEXTS[prec],
                        },
                    )
                    sent.append((src, dst, r))
        step = "wait for every receipt"
        with _step(progress, step):
            for src, _dst, r in sent:
                mid = r["message_id"]
                _wait(step, timeout, functools.partial(_is_not, src, mid, "queued"))
        with _step(progress, "acknowledge every message on the receiving side"):
            for _src, dst, r in sent:
                dst.api(
                    "POST",
                    f"/api/v1/messages/{r['message_id']}/ack",
                    json={},
                )
        step = "wait for every acknowledgement to come back"
        with _step(progress, step):
            for src, _dst, r in sent:
                mid = r["message_id"]
                _wait(step, timeout, functools.partial(_is, src, mid, "acknowledged"))
        step = "link tests each way: checkpoints cosigned, receipts proved"
        with _step(progress, step):
            out["link"] = _link_tests(step, a, b, sent)
        out["deconfliction"] = _deconfliction(progress, a, b, timeout)
        out["people"] = _people(progress, a, b, c, timeout)
        with _step(progress, "console logins: an officer account on each station"):
            out["consoles"] = demowatch.console_logins(stations)
        out["checkpoints"] = {
            s.station_id: s.api("GET", "/api/v1/ledger/checkpoint") for s in (a, b)
        }
        out["messages"] = [
            src.api("GET", f"/api/v1/messages/{r['message_id']}") | {"from": src.station_id}
            for src, _d, r in sent
        ]
        out["status"] = {s.station_id: s.api("GET", "/api/v1/status") for s in (a, b)}
        out["alarms"] = {s.station_id: s.api("GET", "/api/v1/alarms") for s in (a, b)}
    return out


def _link_tests(step: str, a: Any, b: Any, sent: list[tuple[Any, Any, Any]]) -> dict[str, Any]:
    """Two rounds of link tests each way (the first has each side cosign the other's
    checkpoint, the second asks for proofs of receipts against them); then the demo checks
    for itself that every message is in its recipient's log at a checkpoint its sender
    cosigned. What the stations' scheduled tests proved in between changes nothing: the
    receipts the demo's own tests prove are reported, not required."""
    out: dict[str, Any] = {}
    for _round in range(2):
        for src, dst in ((a, b), (b, a)):
            t = src.api("POST", f"/api/v1/link/{dst.station_id}/test")
            if not t["ok"] or not t.get("cosigned"):
                why = t.get("error") or t.get("witness_error") or "not cosigned"
                raise DemoFailure(step, f"{src.station_id} → {dst.station_id}: {why}")
            if t.get("receipts_failed"):
                raise DemoFailure(
                    step, f"{src.station_id}: {t['receipts_failed']} receipts do not prove"
                )
            key = f"{src.station_id}→{dst.station_id}"
            proved = out.get(key, {}).get("receipts_proved", 0)
            out[key] = t | {"receipts_proved": proved + (t.get("receipts_proved") or 0)}
    for src, dst in ((a, b), (b, a)):
        ids = [r["message_id"] for s, d, r in sent if s is src and d is dst]
        key = f"{src.station_id}→{dst.station_id}"
        out[key]["verified"] = _verify_in_peer_log(step, src, dst, ids)
    return out


def _verify_in_peer_log(step: str, src: Any, dst: Any, message_ids: list[str]) -> int:
    """Check, from the operator APIs alone, that each message ``src`` sent is in
    ``dst``'s log at dst's newest checkpoint that ``src`` cosigned; returns how many."""
    from hotline.ledger import merkle
    from hotline.ledger.checkpoint import parse_checkpoint
    from hotline.ledger.note import parse_note

    # dst's newest checkpoint that src cosigned: a scheduled link test to another peer
    # (icrc) may have signed a newer one since, cosigned by that peer only
    cp = dst.api("GET", "/api/v1/ledger/checkpoint", params={"cosigned_by": src.station_id})
    if src.station_id not in cp["cosigned_by"]:
        raise DemoFailure(step, f"{dst.station_id}'s checkpoint lacks {src.station_id}'s "
                          "cosignature")  # fmt: skip
    checkpoint = parse_checkpoint(parse_note(cp["note"]).text)
    for mid in message_ids:
        p = dst.api(
            "GET",
            "/api/v1/ledger/proof/inclusion",
            params={"message_id": mid, "size": checkpoint.size},
        )
        try:
            merkle.verify_inclusion(
                bytes.fromhex(p["leaf_hash"]),
                int(p["leaf_index"]),
                checkpoint.size,
                [bytes.fromhex(h) for h in p["proof"]],
                checkpoint.root,
            )
        except (HotlineError, ValueError) as exc:
            raise DemoFailure(step, f"message {mid} is not proved in {dst.station_id}'s log: "
                              f"{exc}") from None  # fmt: skip
    return len(message_ids)


def _deconfliction(progress: Progress, a: Any, b: Any, timeout: float) -> dict[str, Any]:
    """bravo notifies its protected sites; alpha notifies an activity 5 km from the
    Zaporizhzhia plant; both see the conflict; bravo raises the drafted concern, alpha
    acknowledges and answers, bravo closes it."""
    out: dict[str, Any] = {}
    step = "bravo notifies the reference sites (Ukraine's power plants)"
    with _step(progress, step):
        out["sites"] = len(b.api("POST", "/api/v1/sites/reference")["imported"])
        _wait(step, timeout, lambda: len(a.api("GET", "/api/v1/sites")["sites"]) >= out["sites"])
    step = "alpha notifies artillery 5 km from Zaporizhzhia NPP: conflict on both stations"
    with _step(progress, step):
        start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=6)
        activity = {
            "kind": "artillery",
            "geometry": {"type": "Point", "coordinates": [34.585, 47.467]},
            "radius_m": 500.0,
            "altitude": {"lower_m": 0.0, "upper_m": 3000.0},
            "window": {
                "start": start.isoformat(),
                "end": (start + dt.timedelta(hours=4)).isoformat(),
            },
        }
        _notify(
            a,
            type="activity_notice",
            notice_id="demo-act-1-add",
            action="add",
            activity_id="demo-act-1",
            activity=activity,
        )

        def znpp(st: Any) -> dict[str, Any] | None:
            return next(
                (
                    c
                    for c in st.api("GET", "/api/v1/conflicts")["conflicts"]
                    if c["site_id"] == "UA-NPP-ZNPP"
                ),
                None,
            )

        _wait(step, timeout, lambda: znpp(a) is not None and znpp(b) is not None)
        conflict = znpp(b)
        if conflict is None:  # pragma: no cover - waited for above
            raise DemoFailure(step, "conflict vanished")
        out["conflict"] = conflict
        out["alarms"] = {
            s.station_id: [x for x in s.api("GET", "/api/v1/alarms") if x["kind"] == "conflict"]
            for s in (a, b)
        }
    step = "bravo raises the drafted concern (IAEA five principles)"
    cid = conflict["draft_concern"]["concern_id"]
    with _step(progress, step):
        b.api("POST", f"/api/v1/concerns/{cid}/raise", json={})
        _wait(step, timeout, lambda: _concern_state(a, cid) == "raised")
    step = "alpha acknowledges and answers; bravo closes the concern"
    with _step(progress, step):
        _notify(a, type="concern", concern_id=cid, step="acknowledge")
        _wait(step, timeout, lambda: _concern_state(b, cid) == "acknowledged")
        _notify(
            a,
            type="concern",
            concern_id=cid,
            step="answer",
            text="The activity is moved 25 km east, clear of the plant.",
        )
        _wait(step, timeout, lambda: _concern_state(b, cid) == "answered")
        _notify(b, type="concern", concern_id=cid, step="close")
        _wait(step, timeout, lambda: _concern_state(a, cid) == "closed")
        out["concern"] = b.api("GET", f"/api/v1/concerns/{cid}")
    step = "alpha cancels the activity: the conflict ends on both stations"
    with _step(progress, step):
        _notify(
            a,
            type="activity_notice",
            notice_id="demo-act-1-cancel",
            action="cancel",
            activity_id="demo-act-1",
        )
        _wait(step, timeout, lambda: znpp(a) is None and znpp(b) is None)
    return out


def _people(progress: Progress, a: Any, b: Any, c: Any, timeout: float) -> dict[str, Any]:
    """The second act (cli/demowatch.py): officers, channels at two levels with a
    facilitator, the two-person rule, an escalation, a dissemination record."""
    from hotline.cli import demowatch

    out: dict[str, Any] = {}

    def wait(step: str, check: Callable[[], bool]) -> None:
        _wait(step, timeout, check)

    with _step(progress, "officers log in with their own accounts and tokens"):
        people = demowatch.officers(a, b, c)
        out["officers"] = [
            {"username": o.username, "station": o.station.station_id,
             "data_dir": str(o.station.data_dir), "password": o.password}
            for o in people.values()
        ]  # fmt: skip
    with _step(progress, "agree a chiefs-of-staff channel and a humanitarian one with icrc"):
        demowatch.channels(a, b, c, people, wait)
    with _step(progress, "a FLASH on the chiefs' channel waits for a second officer"):
        out["approval"] = demowatch.two_person(b, people, wait)
    with _step(progress, "nobody acknowledges in time: the deadline escalates on both sides"):
        out["escalation"] = demowatch.escalation(a, b, out["approval"]["message_id"], people, wait)
    with _step(progress, "icrc and bravo get one message; bravo records passing it on"):
        out["facilitated"] = demowatch.facilitated(a, b, c, people, wait)
    return out


def _notify(station: Any, **notice: Any) -> None:
    """Send a site notice, activity notice or concern step through the station's API."""
    station.api("POST", "/api/v1/notices", json={"notice": notice})


def _concern_state(station: Any, concern_id: str) -> str | None:
    for c in station.api("GET", "/api/v1/concerns", params={"all": True})["concerns"]:
        if c["concern_id"] == concern_id:
            return str(c["state"])
    return None


def _print_people(p: dict[str, Any]) -> None:
    console.print()
    console.print(plain("officers: " + ", ".join(
        f"{o['username']} ({o['station']})" for o in p["officers"])))  # fmt: skip
    ap = p["approval"]["approval"]
    console.print(plain(
        f"two-person rule: FLASH on chiefs requested by {ap['requester']}, approved by "
        f"{ap['decided_by']}, delivered to bravo"))  # fmt: skip
    for side, steps in p["escalation"].items():
        for s in steps:
            console.print(plain(f"escalation at {side}: step {s['step']} to {s['role']} "
                                f"({s['origin']}, {s['status']})"))  # fmt: skip
    g = p["facilitated"]["group"]
    console.print(plain(
        f"humanitarian channel (alpha, bravo, icrc): group {g['group_id']} to "
        + ", ".join(f"{r['peer']} {r['state']}" for r in g["recipients"])))  # fmt: skip
    for d in p["facilitated"]["disseminations"]:
        console.print(plain(f"dissemination reported by bravo: passed to {d['to']} by "
                            f"{d['officer']}"))  # fmt: skip


def _print_summary(out: dict[str, Any]) -> None:
    console.print()
    console.print(plain("safety number alpha–bravo: ", (out["safety_number"], "bold")))
    t = Table(title="messages", box=None)
    for col in (
        "from",
        "to",
        "precedence",
        "sequence",
        "state",
        "delivered",
        "acknowledged by",
        "latency ms",
    ):
        t.add_column(col)
    for m in out["messages"]:
        lat = (m["delivered_at_us"] - m["sent_at_us"]) / 1000 if m["delivered_at_us"] else None
        t.add_row(
            plain(m["from"]),
            plain(m["peer"]),
            plain(m["precedence"]),
            plain(m["sequence"]),
            plain(m["state"]),
            plain(us_to_text(m["delivered_at_us"])),
            plain(m["acknowledged_by"] or "-"),
            plain(f"{lat:.1f}" if lat is not None else "-"),
        )
    console.print(t)
    for name, r in out["link"].items():
        console.print(
            plain(
                f"link {name}: ",
                (r["state"], "green"),
                f" rtt {r['rtt_ms']} ms, skew {r['skew_ms']} ms, checkpoint "
                f"{r['checkpoint_size']} cosigned, {r['receipts_proved']} receipts proved by "
                f"these tests; {r['verified']} messages verified in the peer's cosigned log",
            )
        )
    for name, cp in out["checkpoints"].items():
        console.print(
            plain(
                f"{name}'s ledger: checkpoint of size {cp['size']} cosigned by "
                f"{', '.join(cp['cosigned_by'])}"
            )
        )
    d = out["deconfliction"]
    c = d["conflict"]
    console.print()  # a blank line: plain() shows a newline inside text as \x0a
    console.print(
        plain(
            f"{d['sites']} protected sites notified by bravo. Conflict: activity "
            f"{c['activity_id']} ({c['activity_station']}) is {c['distance_m']:,.0f} m from "
            f"{c['site_id']} (protected {c['protected_distance_m']:,.0f} m) — alarm on "
            + ", ".join(
                f"{n} ({len(al)} {al[0]['severity'] if al else ''})"
                for n, al in d["alarms"].items()
            )
        )
    )
    steps = " → ".join(f"{s['step']} by {s['by']}" for s in d["concern"]["steps"])
    console.print(
        plain(
            f"concern {d['concern']['concern_id']}: {steps}; activity cancelled, "
            "conflict ended on both stations"
        )
    )
    console.print("[dim]Notification is information, never permission.[/]")
    _print_people(out["people"])
    for name, st in out["status"].items():
        c = st["counts"]
        console.print(
            plain(
                f"{name}: ledger {c['entries']} entries, sent {c['sent']}, "
                f"received {c['received']}, queued {c['queued']}, "
                f"alarms {len(out['alarms'][name])}"
            )
        )
    console.print(plain(f"stations in {out['root']}"))
    _print_consoles(out["consoles"])


def _print_consoles(consoles: list[dict[str, str]]) -> None:
    """Each station's console address and its officer login (a password made for this
    demo and printed only here)."""
    console.print()
    for c in consoles:
        console.print(plain(f"console {c['station']}: {c['url']}  login: {c['username']} / "
                            f"{c['password']}"))  # fmt: skip
