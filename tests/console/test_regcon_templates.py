"""The Registry and Concerns templates without a browser: whatever a peer wrote (names,
concern text, answers, officer names, refusal reasons) comes out as text, never markup;
the data attributes the scripts read stay valid JSON.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from hotline.console.templates import environment
from hotline.service import registryview

ENV = environment()
EVIL = '<script>alert(1)</script><img src=x onerror="x()">&"\''
AT = dt.datetime(2026, 11, 30, 6, 21, tzinfo=dt.UTC)


def render(name: str, **values: Any) -> str:
    return ENV.get_template(name).render(
        station="alpha", me=None, can=lambda action: True, settings=None, **values
    )


def site(name: str) -> dict[str, Any]:
    return {
        "id": "B-1",
        "kind": "site",
        "owner": "bravo",
        "live": True,
        "current": {"names": {"en": name, "uk": name}, "category": "hospital"},
        "versions": [{"version": 1, "notice_id": "n-1", "action": "add", "notified_by": "bravo",
                      "at": AT.isoformat(), "acknowledged_by": {"alpha": AT.isoformat()}}],
        "reconfirm_by": AT.isoformat(),
        "stale": True,
    }  # fmt: skip


def concern(text: str) -> dict[str, Any]:
    steps = [
        {"step": "raise", "state": "raised", "station": "bravo", "at": AT, "at_us": 1,
         "officer": text, "text": None},
        {"step": "acknowledge", "state": "acknowledged", "station": "alpha", "at": AT,
         "at_us": 2, "officer": "Ana", "text": None},
        {"step": "answer", "state": "answered", "station": "alpha", "at": AT, "at_us": 3,
         "officer": "Ana", "text": text},
    ]  # fmt: skip
    return {
        "concern_id": "c-1",
        "state": "answered",
        "raised_by": "bravo",
        "ours": False,
        "asked": text,
        "text": text,
        "site_ids": ["S-1"],
        "activity_ids": ["A-1"],
        "steps": steps,
        "done": {s["state"]: s for s in steps},
        "opened_at_us": None,
        "conflict": None,
        "actions": ["answer"],
        "bodies": {"answer": registryview.step_body("c-1", "answer", "bravo", "alpha")},
    }


def assert_text_only(out: str, text: str) -> None:
    assert "<script>" not in out
    assert "<img" not in out
    assert str(escape(text)) in out


@pytest.mark.parametrize("text", [EVIL, "Запорізька АЕС", "a & b < c"])
def test_registry_tables_and_history_escape_the_peers_words(text: str) -> None:
    refused = [{"message_id": "m-1", "from": "bravo", "code": "bad", "reason": text}]
    out = render("registry/tables.html", sites=[site(text)], activities=[], refused=refused,
                 sites_total=1, activities_total=0)  # fmt: skip
    assert_text_only(out, text)
    assert "STALE" in out
    assert "acknowledged</span> by alpha" in out
    out = render("registry/record.html", rec=site(text))
    assert_text_only(out, text)


@settings(max_examples=50, deadline=None)
@given(text=st.text(min_size=1, max_size=80))
def test_concern_details_and_tab_keep_any_text_as_text(text: str) -> None:
    c = concern(text)
    for out in (
        render("concerns/details.html", c=c, workflow_states=registryview.WORKFLOW),
        render("concerns/tab.html", concerns=[c], workflow_states=registryview.WORKFLOW),
    ):
        # every tag in the output is one of the template's own
        tags = set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", out))
        assert tags <= {"div", "h2", "h3", "p", "ol", "li", "span", "time", "dl", "dt", "dd",
                        "form", "label", "textarea", "button", "ul", "strong"}, tags  # fmt: skip
    out = render("concerns/details.html", c=c, workflow_states=registryview.WORKFLOW)
    body = re.search(r'data-concern-answer="([^"]*)"', out)
    assert body is not None
    assert json.loads(html.unescape(body.group(1))) == {
        "notice": {"type": "concern", "concern_id": "c-1", "step": "answer"},
        "peer": "bravo",
    }


def test_concern_details_escape_the_peers_words() -> None:
    out = render("concerns/details.html", c=concern(EVIL), workflow_states=registryview.WORKFLOW)
    assert_text_only(out, EVIL)
