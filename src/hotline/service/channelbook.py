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
