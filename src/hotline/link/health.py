"""Link health: the state of one line from its link tests and deliveries. Pure.

States: UNTESTED (no test yet), UP, DEGRADED (answers, but slow, skewed or after a
failure), DOWN (``down_after`` consecutive failures). Owns only the transition rules;
the link stores the result and raises or clears alarms on entering or leaving DOWN.
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


def measure(t1: int, t2: int, t3: int, t4: int) -> tuple[float, float]:
    """Round trip and clock skew (peer minus us) in ms from NTP-style timestamps (µs)."""
    rtt = ((t4 - t1) - (t3 - t2)) / 1000
    skew = ((t2 - t1) + (t3 - t4)) / 2000
    return max(rtt, 0.0), skew
