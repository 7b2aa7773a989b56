"""Link health: the state of one line from its link tests and deliveries. Pure.

Health is kept per (peer, path); the line's health is the best of its paths'
(``combine``). States: UNTESTED (no test yet), UP, DEGRADED (answers, but slow, skewed or after a
failure), DOWN (``down_after`` consecutive failures). Owns only the transition rules;
the link stores the result and raises or clears alarms on entering or leaving DOWN.
Envelopes the peer refused are counted (``refused``, ``last_refused``); a refusal is an
answer, so it does not change the state.

Also owns the link's timing rule (``Timing``): how long one link test may wait and how
soon a failed one is repeated, chosen so that a peer that stops answering (accepts TCP,
never replies) is DOWN within two link-test intervals: the first test after the hang
starts at most one interval later, and ``down_after`` tests with their waits in between
take less than one more.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

State = Literal["UNTESTED", "UP", "DEGRADED", "DOWN"]


@dataclass(frozen=True, slots=True)
class Health:
    state: State = "UNTESTED"
    failures: int = 0
    rtt_ms: int | None = None
    skew_ms: int | None = None
    last_test_at_us: int | None = None
    last_ok_at_us: int | None = None
    last_error: str | None = None
    #: envelopes the peer refused (they are parked, not retried unchanged)
    refused: int = 0
    last_refused: str | None = None


@dataclass(frozen=True, slots=True)
class Thresholds:
    degraded_rtt_ms: float
    max_skew_ms: float
    down_after: int


def after_success(h: Health, rtt_ms: float, skew_ms: float, now_us: int, t: Thresholds) -> Health:
    slow = rtt_ms > t.degraded_rtt_ms or abs(skew_ms) > t.max_skew_ms
    return dataclasses.replace(
        h,
        state="DEGRADED" if slow else "UP",
        failures=0,
        rtt_ms=round(rtt_ms),
        skew_ms=round(skew_ms),
        last_test_at_us=now_us,
        last_ok_at_us=now_us,
        last_error=None,
    )


def after_failure(h: Health, error: str, now_us: int, t: Thresholds) -> Health:
    failures = h.failures + 1
    state: State = "DOWN" if failures >= t.down_after else "DEGRADED"
    return dataclasses.replace(
        h, state=state, failures=failures, last_test_at_us=now_us, last_error=error
    )


#: how good a state is, for choosing the line's state from its paths
_RANK = {"UP": 3, "DEGRADED": 2, "UNTESTED": 1, "DOWN": 0}


def combine(paths: dict[str, Health], line: Health) -> Health:
    """The line's health from its paths' (``line``: the line's before, for its refusal
    counts): the best path's state and measurements (on a tie, the first path named), so
    that the line is DOWN only when every path is. With one path, that path's health."""
    if not paths:
        return line
    best = max(paths.values(), key=lambda h: _RANK[h.state])
    return dataclasses.replace(best, refused=line.refused, last_refused=line.last_refused)


def after_refusals(h: Health, count: int, code: str) -> Health:
    """``count`` more envelopes refused by the peer, the last with ``code``."""
    return dataclasses.replace(h, refused=h.refused + count, last_refused=code)


#: share of the per-test budget (interval / down_after) one link test may wait; the rest
#: is the pause before the next test while the line is not yet DOWN
_TEST_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class Timing:
    """When link tests run and how long they and deliveries may wait (seconds)."""

    interval_s: float
    down_after: int
    peer_timeout_s: float

    @property
    def test_bound_s(self) -> float:
        """The longest one link test waits for its reply, whatever the transport does."""
        return min(self.peer_timeout_s, _TEST_SHARE * self.interval_s / self.down_after)

    @property
    def test_timeout_s(self) -> float:
        """The timeout a transport is given for one link test: a little shorter than the
        bound, so that the transport times out (and closes its socket) by itself."""
        return 0.9 * self.test_bound_s

    @property
    def delivery_timeout_s(self) -> float:
        """The longest one delivery request waits in all (a peer that trickles bytes
        never trips a per-read timeout): one peer timeout plus one interval."""
        return self.peer_timeout_s + self.interval_s

    def wait_after(self, failures: int) -> float:
        """The pause before the next test after ``failures`` failures in a row (0: the
        interval). Until DOWN: 1, 2, 4 s ... but never more than the rest of the budget, so
        that ``down_after`` tests fit one interval; once DOWN: 1, 2, 4 s ... up to the
        interval, so that a line that comes back is seen UP within seconds."""
        if failures <= 0:
            return self.interval_s
        backoff = 2.0 ** min(failures - 1, 30)
        if failures < self.down_after:
            return min(backoff, (1 - _TEST_SHARE) * self.interval_s / self.down_after)
        return min(backoff, self.interval_s)

    def worst_time_to_down_s(self) -> float:
        """From the moment the peer stops answering until DOWN, at worst (no processing
        time counted): a whole interval before the next test, then ``down_after`` tests
        that each wait out their timeout, with the pauses in between."""
        pauses = sum(self.wait_after(f) for f in range(1, self.down_after))
        return self.interval_s + self.down_after * self.test_bound_s + pauses


def measure(t1: int, t2: int, t3: int, t4: int) -> tuple[float, float]:
    """Round trip and clock skew (peer minus us) in ms from NTP-style timestamps (µs)."""
    rtt = ((t4 - t1) - (t3 - t2)) / 1000
    skew = ((t2 - t1) + (t3 - t4)) / 2000
    return max(rtt, 0.0), skew
