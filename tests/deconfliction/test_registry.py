"""Registry: versions, ownership, acknowledgements, staleness, conflict changes, and
rebuild == incremental."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.deconfliction.models import ActivityNotice, SiteNotice
from hotline.deconfliction.registry import AckEntry, NoticeEntry, Registry
from hotline.errors import InputError, NotFoundError, PermissionDeniedError

from .conftest import T0, ZNPP, activity_payload, iso, site_payload


def site(**kw: Any) -> SiteNotice:
    return SiteNotice.from_payload(site_payload(**kw))


def act(**kw: Any) -> ActivityNotice:
    return ActivityNotice.from_payload(activity_payload(**kw))


def test_conflict_opens_and_ends_when_the_activity_is_cancelled() -> None:
    reg = Registry()
    assert reg.apply(site(), "ua", T0) == []
    (ch,) = reg.apply(act(geometry={"type": "Point", "coordinates": [34.6, 47.55]}), "ru", T0)
    assert ch.change == "opened"
    assert ch.notice_id == "a1"
    assert ch.conflict.site_station == "ua"
    assert ch.conflict.activity_station == "ru"
    assert [c.key for c in reg.conflicts()] == [("ZNPP", "A1")]
    cancel = ActivityNotice.from_payload(
        {"notice_id": "a2", "action": "cancel", "activity_id": "A1"}
    )
    (end,) = reg.apply(cancel, "ru", T0)
    assert end.change == "ended"
    assert end.reason == "activity cancelled"
    assert reg.conflicts() == []


def test_site_withdrawal_ends_conflicts_and_modify_updates_them() -> None:
    reg = Registry()
    reg.apply(site(), "ua", T0)
    reg.apply(act(), "ru", T0)
    (upd,) = reg.apply(site(notice_id="s2", action="modify", radius=20_000.0), "ua", T0)
    assert upd.change == "updated"
    assert upd.conflict.reach_m == 20_000.0
    far = site(notice_id="s3", action="modify", coords=(30.0, 50.0))
    (ended,) = reg.apply(far, "ua", T0)
    assert ended.change == "ended"
    (opened,) = reg.apply(site(notice_id="s4", action="modify"), "ua", T0)
    assert opened.change == "opened"
    withdraw = SiteNotice.from_payload(
        {"notice_id": "s5", "action": "withdraw", "site_id": "ZNPP", "reason": "test"}
    )
    (gone,) = reg.apply(withdraw, "ua", T0)
    assert gone.change == "ended"
    assert gone.reason == "site withdrawn"
    rec = reg.site("ZNPP")
    assert not rec.live
    assert [v.action for v in rec.versions] == [
        "add",
        "modify",
        "modify",
        "modify",
        "withdraw",
    ]
    assert [v.version for v in rec.versions] == [1, 2, 3, 4, 5]


def test_activity_outside_the_site_validity_does_not_conflict() -> None:
    reg = Registry()
    reg.apply(site(valid_from=T0 + timedelta(days=1)), "ua", T0)
    assert reg.apply(act(), "ru", T0) == []


def test_new_site_is_checked_against_live_activities() -> None:
    reg = Registry()
    reg.apply(act(), "ru", T0)
    (ch,) = reg.apply(site(), "ua", T0)
    assert ch.change == "opened"


REFUSALS = [
    ("duplicate notice id", lambda r: r.apply(site(site_id="X"), "ua", T0), InputError),
    ("add of a live id", lambda r: r.apply(site(notice_id="n9"), "ua", T0), InputError),
    (
        "modify unknown",
        lambda r: r.apply(site(notice_id="n9", site_id="Q", action="modify"), "ua", T0),
        NotFoundError,
    ),
    (
        "other station modifies",
        lambda r: r.apply(site(notice_id="n9", action="modify"), "ru", T0),
        PermissionDeniedError,
    ),
    ("ack of unknown notice", lambda r: r.acknowledge("nope", "ru", T0), NotFoundError),
    ("unknown site", lambda r: r.site("nope"), NotFoundError),
    ("unknown activity", lambda r: r.activity("nope"), NotFoundError),
]


@pytest.mark.parametrize(("name", "call", "error"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_change_nothing(name: str, call: Any, error: type[Exception]) -> None:
    reg = Registry()
    reg.apply(site(), "ua", T0)
    before = reg.snapshot()
    with pytest.raises(error):
        call(reg)
    assert reg.snapshot() == before


def test_modify_after_withdraw_is_refused() -> None:
    reg = Registry()
    reg.apply(site(), "ua", T0)
    reg.apply(
        SiteNotice.from_payload({"notice_id": "w", "action": "withdraw", "site_id": "ZNPP"}),
        "ua",
        T0,
    )
    with pytest.raises(InputError, match="no longer live"):
        reg.apply(site(notice_id="m", action="modify"), "ua", T0)
    reg.apply(site(notice_id="again"), "ua", T0)  # notified again: a new version
    assert reg.site("ZNPP").live
    assert len(reg.site("ZNPP").versions) == 3


def test_acknowledgements_per_recipient() -> None:
    reg = Registry()
    reg.apply(site(), "ua", T0)
    assert reg.unacknowledged("s1", ["ru", "icrc"]) == ["icrc", "ru"]
    reg.acknowledge("s1", "ru", T0 + timedelta(minutes=3))
    reg.acknowledge("s1", "ru", T0 + timedelta(minutes=9))  # the first one counts
    assert reg.acknowledgements("s1") == {"ru": T0 + timedelta(minutes=3)}
    assert reg.unacknowledged("s1", ["ru", "icrc"]) == ["icrc"]


def test_stale_after_reconfirmation_date_and_reconfirm_clears_it() -> None:
    reg = Registry()
    reg.apply(site(reconfirm_by=T0 + timedelta(days=1)), "ua", T0)
    assert reg.stale_sites(T0) == []
    assert reg.stale_sites(T0 + timedelta(days=2)) == ["ZNPP"]
    again = SiteNotice.from_payload(
        {
            "notice_id": "r1",
            "action": "reconfirm",
            "site_id": "ZNPP",
            "reconfirm_by": iso(T0 + timedelta(days=60)),
        }
    )
    assert reg.apply(again, "ua", T0 + timedelta(days=2)) == []
    assert reg.stale_sites(T0 + timedelta(days=2)) == []
    rec = reg.site("ZNPP")
    assert rec.versions[-1].action == "reconfirm"
    assert rec.versions[-1].notified_by == "ua"
    assert rec.current is not None


def _random_log(seed: int) -> list[NoticeEntry | AckEntry]:
    rng = random.Random(seed)
    log: list[NoticeEntry | AckEntry] = []
    reg = Registry()
    for i in range(40):
        t = T0 + timedelta(minutes=i)
        choice = rng.random()
        sid, aid = f"S{rng.randint(0, 4)}", f"A{rng.randint(0, 4)}"
        lon, lat = ZNPP[0] + rng.uniform(-0.5, 0.5), ZNPP[1] + rng.uniform(-0.3, 0.3)
        n: SiteNotice | ActivityNotice
        if choice < 0.35:
            action = rng.choice(["add", "modify"])
            n = site(
                site_id=sid,
                notice_id=f"n{i}",
                action=action,
                coords=(lon, lat),
                radius=rng.uniform(1000, 20_000),
            )
        elif choice < 0.45:
            action = rng.choice(["withdraw", "reconfirm"])
            n = SiteNotice.from_payload(
                {
                    "notice_id": f"n{i}",
                    "site_id": sid,
                    "action": action,
                    **({"reconfirm_by": iso(t)} if action == "reconfirm" else {}),
                }
            )
        elif choice < 0.8:
            n = act(
                activity_id=aid,
                notice_id=f"n{i}",
                action=rng.choice(["add", "modify"]),
                geometry={"type": "Point", "coordinates": [lon, lat]},
                radius=rng.uniform(0, 5000),
            )
        elif choice < 0.9:
            n = ActivityNotice.from_payload(
                {"notice_id": f"n{i}", "activity_id": aid, "action": "cancel"}
            )
        else:
            if i:
                e = AckEntry(f"n{rng.randint(0, i - 1)}", rng.choice(["ru", "ua"]), t)
                try:
                    reg.acknowledge(e.notice_id, e.recipient, e.at)
                    log.append(e)
                except NotFoundError:
                    pass
            continue
        by = rng.choice(["ua", "ru"])
        try:
            reg.apply(n, by, t)
        except (InputError, NotFoundError, PermissionDeniedError):
            continue
        log.append(NoticeEntry(n, by, t))
    return log


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=10**6))
def test_rebuild_equals_incremental(seed: int) -> None:
    log = _random_log(seed)
    assert len(log) >= 5
    incremental = Registry(max_delta=2)
    for e in log:
        if isinstance(e, NoticeEntry):
            incremental.apply(e.notice, e.notified_by, e.at)
        else:
            incremental.acknowledge(e.notice_id, e.recipient, e.at)
    rebuilt = Registry.rebuild(log)
    assert rebuilt.snapshot() == incremental.snapshot()
    assert {c.key for c in rebuilt.conflicts()} == {c.key for c in incremental.conflicts()}


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=0, max_value=10**6))
def test_acknowledge_all_equals_acknowledging_one_by_one(seed: int) -> None:
    """A rebuild's bulk acknowledgements: the same first-time-counts state; a notice
    the registry does not hold raises before any acknowledgement is recorded."""
    log = _random_log(seed)
    notices = [e for e in log if isinstance(e, NoticeEntry)]
    acks = [e for e in log if isinstance(e, AckEntry)]
    one, bulk = Registry.rebuild(notices), Registry.rebuild(notices)
    applied = [a for a in acks if a.notice_id in one._notices]
    for a in applied:
        one.acknowledge(a.notice_id, a.recipient, a.at)
    bulk.acknowledge_all((a.notice_id, a.recipient, a.at) for a in applied)
    assert bulk.snapshot() == one.snapshot()
    fresh = Registry.rebuild(notices)
    with pytest.raises(NotFoundError):
        fresh.acknowledge_all([*((a.notice_id, a.recipient, a.at) for a in applied),
                               ("no-such-notice", "ua", T0)])  # fmt: skip
    assert fresh.snapshot() == Registry.rebuild(notices).snapshot()
