"""Hypothesis over a peer's proposal and answer data: every input is either accepted by
the checks or refused with a documented code, never anything else; a proposal's id is
the same for the same proposal and differs for other terms or another proposer."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errors import EnvelopeError, InputError
from hotline.service.channelbook import ChannelBook
from hotline.service.channels import REFUSALS, ChannelsProjection
from hotline.settings import Settings
from hotline.wire.channels import (
    ACCEPT,
    PROPOSE,
    ChannelProposal,
    ChannelSpec,
    proposal_id,
)

STATIONS = ["alpha", "mallory", "bravo", "zulu", "", "a b", "x" * 65]
LEAF = st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.text(max_size=10)


ROLES = st.fixed_dictionaries(
    {},
    optional={
        "read": st.lists(st.sampled_from(["auditor", "king"]), max_size=6),
        "send": LEAF,
    },
)
STEPS = st.fixed_dictionaries(
    {"after_s": st.floats() | LEAF, "role": st.sampled_from(["principal", "god"])}
)


def spec_data() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "name": st.text(max_size=70) | LEAF,
            "level": st.sampled_from(["working", "ministers", "emperors", "UP"]) | LEAF,
        },
        optional={
            "members": st.lists(st.sampled_from(STATIONS), max_size=5) | LEAF,
            "roles": st.dictionaries(st.sampled_from(STATIONS), ROLES, max_size=3) | LEAF,
            "ack_deadlines_s": st.dictionaries(
                st.sampled_from(["FLASH", "ROUTINE", "SOON"]), st.floats() | st.integers()
            )
            | LEAF,
            "brevity_words": st.integers(-1, 10**6) | LEAF,
            "escalation": st.lists(STEPS, max_size=9) | LEAF,
            "extra": LEAF,
        },
    )


PROPOSALS = st.fixed_dictionaries(
    {"version": st.integers(-1, 2**32) | LEAF, "spec": spec_data() | LEAF},
    optional={"proposer": LEAF},
)
VOTES = st.fixed_dictionaries(
    {"proposal": st.text("0123456789abcdef", min_size=63, max_size=65) | LEAF,
     "name": st.text(max_size=70) | LEAF},
    optional={"reason": st.text(max_size=600) | LEAF, "station": LEAF},
)  # fmt: skip


def projection() -> ChannelsProjection:
    ctx = SimpleNamespace(
        station_id="alpha",
        settings=Settings(),
        channels=ChannelBook(),
        peers=_Peers({"mallory", "bravo"}),
    )
    return ChannelsProjection(ctx)  # type: ignore[arg-type]


class _Peers:
    def __init__(self, ids: set[str]) -> None:
        self.ids = ids

    def __contains__(self, station_id: object) -> bool:
        return station_id in self.ids


EXT = projection()
CODES = set(REFUSALS) | {"bad_channel"}


def _judge(kind: str, data: Any, channel: str = "working") -> str:
    """What the inbox does with it: 'ok', or the refusal's code."""
    code = "ok"
    try:
        EXT.validate(kind)(data)
        EXT.check_from_peer(kind)("mallory", channel, data)
    except (InputError, EnvelopeError) as exc:
        code = exc.code
    assert code in {*CODES, "bad_message_data", "ok"}, code
    return code


@settings(max_examples=300, deadline=None)
@given(data=PROPOSALS, channel=st.sampled_from(["working", "deconfliction", "chiefs"]))
def test_a_peers_proposal_is_accepted_or_refused_with_a_code(data: Any, channel: str) -> None:
    verdict = _judge(PROPOSE, data, channel)
    if verdict == "ok":
        proposal = ChannelProposal.model_validate(data)
        members = proposal.spec.members
        assert channel in ("working", "deconfliction")
        assert "alpha" in members
        assert "mallory" in members
        assert set(members) <= {"alpha", "mallory", "bravo"}
        assert proposal.spec.level in Settings().channel_levels
        assert proposal.spec.name not in ("working", "deconfliction")


@settings(max_examples=200, deadline=None)
@given(data=VOTES)
def test_a_peers_answer_is_accepted_or_refused_with_a_code(data: Any) -> None:
    verdict = _judge(ACCEPT, data)
    if "station" in data:  # a field naming another station does not exist
        assert verdict == "bad_message_data"


@given(
    name=st.sampled_from(["cos", "ministers-line"]),
    words=st.integers(1, 500),
    version=st.integers(1, 5),
)
def test_proposal_ids(name: str, words: int, version: int) -> None:
    spec = ChannelSpec(name=name, level="working", members=["bravo", "alpha"], brevity_words=words)
    p = ChannelProposal(version=version, spec=spec)
    same = ChannelProposal.model_validate_json(p.model_dump_json())
    assert proposal_id("alpha", p) == proposal_id("alpha", same)
    assert proposal_id("alpha", p) != proposal_id("bravo", p)
    other = ChannelProposal(version=version + 1, spec=spec)
    assert proposal_id("alpha", p) != proposal_id("alpha", other)
    assert spec.members == ["alpha", "bravo"]  # members are kept sorted
