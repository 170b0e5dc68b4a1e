"""Exponential backoff with a cap and full jitter, the one formula every retry loop uses.

``uniform(0, min(cap, base * 2**n))`` (the AWS architecture blog's "full jitter"): it spreads
a fleet of retrying clients over the whole window, so they do not come back in lockstep after
an outage. The HTTP layer's retries (`core.http.retry`) and the Kraken reconnect loop both
take their delays from here.
"""

from __future__ import annotations

import random


def full_jitter(base: float, cap: float, attempt: int, rng: random.Random) -> float:
    """The delay before retry number `attempt` (0-based): uniform in [0, min(cap, base*2**n)]."""
    return rng.uniform(0, min(cap, base * 2 ** min(attempt, 60)))


class Backoff:
    """Stateful full-jitter backoff for loops that reconnect: `next_delay`, then `reset`."""

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        if base < 0 or cap < 0:
            raise ValueError(f"backoff base and cap must be >= 0, got {base} and {cap}")
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def ceiling(self) -> float:
        """The longest the next delay can be."""
        return min(self.cap, self.base * 2 ** min(self.attempt, 60))

    def next_delay(self) -> float:
        delay = full_jitter(self.base, self.cap, self.attempt, self._rng)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
