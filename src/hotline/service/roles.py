"""Who may do what: officers' roles, the actions they take, and the one check.

Owns the role × action table (``ALLOWED``), the authenticated ``Principal`` every API
route and service use case receives, and ``require``, which refuses an action with a
``PermissionDeniedError`` naming the roles that may take it. A channel narrows this
further (the roles that may read and send on it at this station: service/channelbook.py).

Pure: must not touch the store, the network or the clock. How a principal is
authenticated (tokens, sessions, passwords, TOTP) is service/officers.py and api/auth.py.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from hotline.errors import PermissionDeniedError


class Role(enum.StrEnum):
    WATCH_OFFICER = "watch_officer"
    SENIOR_WATCH_OFFICER = "senior_watch_officer"
    #: a chief of staff, a minister's office: sends and acknowledges at the top levels
    PRINCIPAL = "principal"
    #: accounts, peers, settings
    ADMINISTRATOR = "administrator"
    #: read-only, exports
    AUDITOR = "auditor"


class Action(enum.StrEnum):
    READ = "read"  # threads, messages, alarms, link state, search
    SEND = "send"  # messages, replies, typed messages, concerns, notices
    ACKNOWLEDGE = "acknowledge"  # messages, notices, alarms
    APPROVE = "approve"  # the second officer of the two-person rule
    DISSEMINATE = "disseminate"  # record passing a message on
    HANDOVER = "handover"  # write and acknowledge shift handovers
    SUSPEND = "suspend"  # declare a channel or the line suspended, and resumed
    CHANNELS = "channels"  # propose and accept channels
    ROTA = "rota"  # the duty rota
    OFFICERS = "officers"  # accounts and tokens of others
    PEERS = "peers"  # add, remove, re-key peers; registry reference data
    EXPORT = "export"  # transcripts, printable logs


_WATCH = {Action.READ, Action.SEND, Action.ACKNOWLEDGE, Action.DISSEMINATE, Action.HANDOVER}
_SENIOR = _WATCH | {Action.APPROVE, Action.SUSPEND, Action.ROTA, Action.EXPORT}
#: the table: what each role may do (a principal's roles add up)
ALLOWED: dict[Role, frozenset[Action]] = {
    Role.WATCH_OFFICER: frozenset(_WATCH),
    Role.SENIOR_WATCH_OFFICER: frozenset(_SENIOR),
    Role.PRINCIPAL: frozenset(_SENIOR | {Action.CHANNELS}),
    Role.ADMINISTRATOR: frozenset(
        {Action.READ, Action.OFFICERS, Action.PEERS, Action.CHANNELS, Action.ROTA, Action.EXPORT}
    ),
    Role.AUDITOR: frozenset({Action.READ, Action.EXPORT}),
}

#: actions a browser session takes only soon after its password was given (the console
#: asks for it again): approving another's message, suspending, peers, accounts
SENSITIVE: frozenset[Action] = frozenset(
    {Action.APPROVE, Action.SUSPEND, Action.PEERS, Action.OFFICERS}
)

#: roles in ladder order, lowest first (escalation climbs it)
LADDER: tuple[Role, ...] = (Role.WATCH_OFFICER, Role.SENIOR_WATCH_OFFICER, Role.PRINCIPAL)


def roles_for(action: Action) -> tuple[Role, ...]:
    """The roles that may take ``action``, in the table's order."""
    return tuple(role for role, actions in ALLOWED.items() if action in actions)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated officer (or the station's own token, ``STATION_USERNAME``)."""

    username: str
    display_name: str
    roles: frozenset[Role]
    #: how it was authenticated: "token" (an officer's API token), "session" (a browser
    #: session), "station" (the station's bootstrap token)
    via: str = "token"
    #: False for a browser session whose password was given longer ago than the setting
    #: ``session_reauth_s``: it may still read and act, but not take a sensitive action
    #: (``SENSITIVE``) until the officer gives the password again
    fresh: bool = True

    def may(self, action: Action) -> bool:
        return any(action in ALLOWED[role] for role in self.roles)

    @property
    def role(self) -> Role:
        """The highest role of the ladder this officer holds (what a peer is shown), else
        the first of its roles."""
        for role in reversed(LADDER):
            if role in self.roles:
                return role
        return sorted(self.roles)[0] if self.roles else Role.AUDITOR


#: the station's bootstrap token authenticates as this (every role: see docs/operations.md)
STATION_USERNAME = "station"
STATION = Principal(STATION_USERNAME, "station token", frozenset(Role), via="station")


def require(principal: Principal, action: Action, *, what: str | None = None) -> None:
    """Refuse ``action`` unless one of the principal's roles allows it (``forbidden``)."""
    if principal.may(action):
        return
    needed = ", ".join(roles_for(action))
    raise PermissionDeniedError(
        f"{principal.username} may not {what or action.value}: it needs one of the roles {needed}",
        hint="ask an administrator for the role (hotline officer add --role ...), or hand "
        "the task to an officer who holds it",
    )


def parse_roles(names: Iterable[str]) -> frozenset[Role]:
    """Roles from their names; an unknown name is an ``InputError`` listing the roles."""
    from hotline.errors import InputError

    out = set()
    for name in names:
        try:
            out.add(Role(name))
        except ValueError:
            raise InputError(
                f"unknown role {name!r}",
                code="bad_role",
                hint="roles are " + ", ".join(r.value for r in Role),
            ) from None
    return frozenset(out)
