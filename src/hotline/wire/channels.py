"""A channel's terms: what its member stations agree to (the proposal's and acceptance's
payload data), parsed in one step.

A channel is a conversation between a set of stations at one level (working-level
deconfliction, chiefs of staff, ministers, or a configured level). Its terms say who the
members are, which roles may read and send on it at each station, its acknowledgement
deadlines per precedence, whether a second officer must approve what leaves (the
two-person rule), how brief FLASH and IMMEDIATE texts must be, what may still be sent
while it is suspended, and its escalation ladder.

Pure: must not touch keys, the store, the network. Agreement (proposal, acceptance, on
the record) is service/channels.py; the book of channels a station knows is
service/channelbook.py.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: the levels every station knows; a channel may name a configured one (``channel_levels``)
LEVELS = ("working", "chiefs_of_staff", "ministers")
PRECEDENCES = ("FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE")
ROLE_NAMES = ("watch_officer", "senior_watch_officer", "principal", "administrator", "auditor")

StationId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
RoleName = Annotated[str, Field(pattern="^(" + "|".join(ROLE_NAMES) + ")$")]
PrecedenceName = Annotated[str, Field(pattern="^(" + "|".join(PRECEDENCES) + ")$")]


class _Terms(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class StationRoles(_Terms):
    """The roles that may read and send on the channel at one member station."""

    read: Annotated[list[RoleName], Field(max_length=5)] = list(ROLE_NAMES)
    send: Annotated[list[RoleName], Field(max_length=5)] = [
        "watch_officer",
        "senior_watch_officer",
        "principal",
    ]


class EscalationStep(_Terms):
    """``after_s`` past the acknowledgement deadline, the role ``role`` is alarmed; on both
    sides when ``both_sides``."""

    after_s: Annotated[float, Field(ge=0, le=7 * 86400)]
    role: RoleName
    both_sides: bool = False


class ChannelSpec(_Terms):
    """A channel's agreed terms. ``members`` empty means a standing channel: this station
    and whichever peer a message is addressed to (the line's own channels)."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    level: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")]
    members: Annotated[list[StationId], Field(max_length=16)] = []
    #: per member station: who may read and send there (a station not named: the default)
    roles: Annotated[dict[StationId, StationRoles], Field(max_length=16)] = {}
    #: acknowledgement deadline in seconds per precedence (a precedence not named: the
    #: station's setting ``ack_deadline_*_s``)
    ack_deadlines_s: Annotated[
        dict[PrecedenceName, Annotated[float, Field(gt=0, le=7 * 86400)]], Field(max_length=4)
    ] = {}
    #: the two-person rule: a second officer approves before a message leaves
    two_person: bool = False
    approval_deadline_s: Annotated[float, Field(gt=0, le=86400)] = 600.0
    #: FLASH and IMMEDIATE texts have at most this many words
    brevity_words: Annotated[int, Field(ge=1, le=100_000)] = 200
    #: what may still be sent while the channel (or the line) is suspended
    suspended_allow: Annotated[list[PrecedenceName], Field(max_length=4)] = ["FLASH"]
    escalation: Annotated[list[EscalationStep], Field(max_length=8)] = []

    @field_validator("name")
    @classmethod
    def _name_bytes(cls, value: str) -> str:
        if len(value.encode()) > 64 or not value.isprintable():
            raise ValueError("a channel name is 1 to 64 bytes of printable UTF-8")
        return value

    @field_validator("members")
    @classmethod
    def _members(cls, value: list[str]) -> list[str]:
        if value and (len(value) < 2 or len(set(value)) != len(value)):
            raise ValueError("a channel has two or more distinct member stations")
        return sorted(value)

    @property
    def standing(self) -> bool:
        return not self.members

    def roles_at(self, station: str) -> StationRoles:
        return self.roles.get(station, StationRoles())

    def deadline_s(self, precedence: int, default: float) -> float:
        return self.ack_deadlines_s.get(PRECEDENCES[precedence], default)

    def recipients(self, station: str, peer: str | None = None) -> list[str]:
        """Who a message from ``station`` on this channel goes to: every other member, or
        on a standing channel the one ``peer`` addressed."""
        if self.standing:
            return [peer] if peer is not None else []
        return [m for m in self.members if m != station]


# --- agreement: the data of the typed messages channel_propose / _accept / _decline -------

#: the typed messages of channel agreement (they travel on the standing channel "working")
PROPOSE, ACCEPT, DECLINE = "channel_propose", "channel_accept", "channel_decline"
AGREEMENT_TYPES = (PROPOSE, ACCEPT, DECLINE)
#: the standing channel agreement travels on
AGREEMENT_CHANNEL = "working"

ProposalId = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class ChannelProposal(_Terms):
    """``channel_propose``: the proposer's terms for ``spec.name`` at ``version`` (a new
    version of an agreed channel changes its terms once every member accepts it)."""

    version: Annotated[int, Field(ge=1, le=2**31)]
    spec: ChannelSpec


class ChannelVote(_Terms):
    """``channel_accept`` and ``channel_decline``: a member's answer to the proposal
    ``proposal`` (its id: ``proposal_id``) for the channel ``name``. Who answers is the
    envelope's signed sender, never a field."""

    proposal: ProposalId
    name: Annotated[str, Field(min_length=1, max_length=64)]
    reason: Annotated[str, Field(max_length=500)] | None = None


def proposal_id(proposer: str, proposal: ChannelProposal) -> str:
    """A proposal's id: SHA-256 of the canonical JSON of its proposer, version and terms
    (every member computes the same id from the same proposal)."""
    body = {
        "proposer": proposer,
        "version": proposal.version,
        "spec": proposal.spec.model_dump(mode="json"),
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_proposal(proposer: str, me: str, proposal: ChannelProposal, levels: list[str]) -> str:
    """Why a proposal from ``proposer`` cannot be considered at ``me``: a refusal code
    (``bad_level``, ``proposer_not_member``, ``not_a_member``), or "" when it can be.
    Pure: the checks that need the station's peers and channels are the service's."""
    spec = proposal.spec
    if spec.level not in levels:
        return "bad_level"
    if spec.standing or proposer not in spec.members:
        return "proposer_not_member"
    if me not in spec.members:
        return "not_a_member"
    return ""
