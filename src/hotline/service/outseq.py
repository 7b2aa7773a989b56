"""The next sequence number towards each peer, in memory: the sender's guess, so that a
message is sealed and signed before it reaches the writer (service/sender.py).

Owns only the guess and its lock (taken on the loop, when a send takes a number, and on
the writer thread, when a unit settles the number it used). The store stays the truth:
the send unit compares the guess with the store's next number and seals again inside
the writer when they differ (a send refused after it took its number, a unit rolled
back, an acknowledgement or a resync that took a number inside the writer, a station
that took over the store). So a wrong guess costs time, never a gap or a reordering.
Must not touch: SQL, envelopes.
"""

from __future__ import annotations

import threading


class OutSequences:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, int] = {}

    def take(self, peer: str) -> int | None:
        """The next number towards ``peer`` (None: not known yet; the unit finds it)."""
        with self._lock:
            seq = self._next.get(peer)
            if seq is not None:
                self._next[peer] = seq + 1
            return seq

    def give_back(self, peer: str, seq: int) -> None:
        """``seq`` was taken and will not be used: the next send takes it, if nothing
        was taken after it."""
        with self._lock:
            if self._next.get(peer) == seq + 1:
                self._next[peer] = seq

    def used(self, peer: str, guess: int | None, seq: int) -> None:
        """A unit used ``seq`` (the store's next number) where the send guessed
        ``guess``: a wrong guess is corrected, so the sends after it guess right."""
        if guess == seq:
            return
        with self._lock:
            self._next[peer] = seq + 1
