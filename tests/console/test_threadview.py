"""service/threadview.py without a database: a group send is one card with a line per
recipient, replies sit under what they answer with their depth, a reply to a message not
on the page says so, and a cycle of replies (never expected) still shows every card."""

from __future__ import annotations

from typing import Any

import pytest

from hotline.service import queries, threadview


def msg(mid: str, direction: str = "in", *, group: str | None = None, reply: str | None = None,
        peer: str = "bravo", read_by: tuple[str, str] | None = None,
        kind: str = "text") -> dict[str, Any]:  # fmt: skip
    body: dict[str, Any] = {"type": kind, "text": f"text {mid}"}
    if group:
        body["group"] = group
    if reply:
        body["in_reply_to"] = reply
    stages = [{"stage": "received" if direction == "in" else "queued", "at_us": 1, "by": peer,
               "claimed_at_us": None, "ref": None}]  # fmt: skip
    if read_by:
        stages.append({"stage": "read", "at_us": 2, "by": read_by[1], "claimed_at_us": None,
                       "ref": read_by[0]})  # fmt: skip
    recipient = {"peer": peer, "stage": stages[-1]["stage"], "stages": stages}
    return {"message_id": mid, "direction": direction, "peer": peer, "type": kind, "body": body,
            "recipients": [recipient]}  # fmt: skip


def cards(monkeypatch: pytest.MonkeyPatch, oldest_first: list[dict[str, Any]]) -> list[Any]:
    monkeypatch.setattr(queries, "list_with_stages", lambda conn, now, **kw: oldest_first[::-1])
    return threadview.thread_cards(None, 0, "working", station="alpha", officer="wo")  # type: ignore[arg-type]


def test_a_group_send_is_one_card_with_each_recipient(monkeypatch: pytest.MonkeyPatch) -> None:
    got = cards(monkeypatch, [
        msg("m1", "out", group="g", peer="bravo"),
        msg("m2", "out", group="g", peer="icrc"),
        msg("r1", "in", reply="m2", peer="icrc"),
        msg("n1", "in", kind="read"),
    ])  # fmt: skip
    assert [c.key for c in got] == ["g", "r1"]
    assert [r["peer"] for r in got[0].recipients] == ["bravo", "icrc"]
    assert got[0].ids == ["m1", "m2"]
    assert got[1].depth == 1  # answers one envelope of the group: under the group's card


def test_replies_are_placed_under_their_parent_depth_first(monkeypatch: pytest.MonkeyPatch) -> None:
    got = cards(monkeypatch, [
        msg("a"), msg("b"), msg("a1", "out", reply="a"), msg("a1x", reply="a1"),
        msg("b1", "out", reply="b"), msg("orphan", reply="gone"),
    ])  # fmt: skip
    assert [(c.key, c.depth) for c in got] == [
        ("a", 0), ("a1", 1), ("a1x", 2), ("b", 0), ("b1", 1), ("orphan", 0)
    ]  # fmt: skip
    assert got[-1].parent_missing


def test_unread_is_per_officer_of_this_station(monkeypatch: pytest.MonkeyPatch) -> None:
    got = cards(monkeypatch, [
        msg("x", read_by=("alpha", "wo")), msg("y", read_by=("alpha", "wo2")),
        msg("z", read_by=("bravo", "wo")), msg("o", "out"),
    ])  # fmt: skip
    assert [c.unread for c in got] == [False, True, True, False]


def test_a_cycle_of_replies_still_shows_every_card(monkeypatch: pytest.MonkeyPatch) -> None:
    got = cards(monkeypatch, [msg("p", reply="q"), msg("q", reply="p")])
    assert sorted(c.key for c in got) == ["p", "q"]


def test_deep_threads_stop_indenting(monkeypatch: pytest.MonkeyPatch) -> None:
    chain = [msg("m0")] + [msg(f"m{i}", reply=f"m{i - 1}") for i in range(1, 12)]
    got = cards(monkeypatch, chain)
    assert max(c.depth for c in got) == threadview.MAX_DEPTH
