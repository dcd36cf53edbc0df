"""Politeness: at most ``rate`` requests per second per host, for the whole run.

:class:`HostRateLimiter` hands out reservations instead of sleeping: ``reserve(host)``
returns how long the caller must wait before its request, and books that slot, so one
limiter can serve every download thread of every worker on every node (the Ray module
hosts it in one actor) without ever blocking on a caller. Over any window of ``w``
seconds a host sees at most ``burst + rate * w`` requests.
"""

from __future__ import annotations

import time

# Requests are booked this much under the configured rate: a request leaves its worker
# some milliseconds after its booked time, unevenly, and that jitter must not carry a
# site's count over ``rate * w + burst`` in any window.
PACING_MARGIN = 0.95


class HostRateLimiter:
    def __init__(self, rate: float, burst: int, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate * PACING_MARGIN, burst, clock
        self.state: dict[str, tuple[float, float]] = {}  # host -> (tokens, at time); tokens < 0: booked ahead

    def reserve(self, host: str) -> float:
        """Book the next request to ``host``; returns the seconds to wait before sending it."""
        return self._book(host, self.clock())

    def reserve_at(self, host: str) -> float:
        """Book the next request to ``host``; returns when (on ``clock``) it may be sent.
        A remote caller waits until that time rather than for a number of seconds counted
        from when the answer reached it, so the answer's varying latency does not shift
        its request later, into the next booked slot's second."""
        now = self.clock()
        return now + self._book(host, now)

    def _book(self, host: str, now: float) -> float:
        if self.rate <= 0:
            return 0.0
        tokens, last = self.state.get(host, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate) - 1.0
        self.state[host] = (tokens, now)
        return 0.0 if tokens >= 0 else -tokens / self.rate
