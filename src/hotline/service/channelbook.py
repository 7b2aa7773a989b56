"""The channels this station knows, in memory, for the hot path.

Owns the book: the standing channels (the line's own, from the setting
``standing_channels``: this station and whichever peer a message is addressed to) and
the agreed ones (put here by service/channels.py when a proposal is accepted by every
member, live and on rebuild), and the one lookup use cases make: ``require`` refuses an
unknown channel with ``unknown_channel`` and lists the known ones.

Must not touch: the store (the book is filled by whoever projects the record), the
network. It is read on the loop and written by the writer's thread under its lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from hotline.errors import InputError
from hotline.wire.channels import ChannelSpec


class ChannelBook:
    def __init__(self, standing: Iterable[str] = ("working", "deconfliction")) -> None:
        self._lock = threading.Lock()
        self._standing = {name: ChannelSpec(name=name, level="working") for name in standing}
        self._agreed: dict[str, ChannelSpec] = {}
        #: terms this station has accepted (or proposed) that are not agreed by every
        #: member yet: a member's message on them is admitted (it may overtake the last
        #: acceptance on another link), nothing is sent on them from here
        self._held: dict[str, ChannelSpec] = {}

    def get(self, name: str) -> ChannelSpec | None:
        with self._lock:
            return self._agreed.get(name) or self._standing.get(name)

    def require(self, name: str) -> ChannelSpec:
        spec = self.get(name)
        if spec is None:
            known = ", ".join(self.names()) or "none"
            raise InputError(
                f"no channel {name!r}",
                code="unknown_channel",
                hint=f"the channels are: {known} (hotline channel list); a new one is "
                "proposed with hotline channel propose",
            )
        return spec

    def names(self) -> list[str]:
        with self._lock:
            return sorted({*self._standing, *self._agreed})

    def all(self) -> list[ChannelSpec]:
        with self._lock:
            merged = {**self._standing, **self._agreed}
        return [merged[n] for n in sorted(merged)]

    def agree(self, spec: ChannelSpec) -> None:
        """Record a channel every member has accepted (its terms replace older ones)."""
        with self._lock:
            self._agreed[spec.name] = spec

    def clear_agreed(self) -> None:
        """Forget the agreed channels (a rebuild fills the book again from the ledger)."""
        with self._lock:
            self._agreed.clear()
            self._held.clear()

    def standing(self, name: str) -> bool:
        with self._lock:
            return name in self._standing

    def hold(self, spec: ChannelSpec) -> None:
        """Terms this station accepted, waiting for the other members' acceptances."""
        with self._lock:
            self._held[spec.name] = spec

    def release(self, name: str) -> None:
        with self._lock:
            self._held.pop(name, None)

    def admits(self, name: str, sender: str, me: str) -> bool:
        """Whether a message from ``sender`` on ``name`` may be stored here: a standing
        channel, or one (agreed, or accepted here and waiting) naming both as members."""
        with self._lock:
            if name in self._standing and name not in self._agreed:
                return True
            specs = [s for s in (self._agreed.get(name), self._held.get(name)) if s is not None]
        return any(sender in s.members and me in s.members for s in specs)
