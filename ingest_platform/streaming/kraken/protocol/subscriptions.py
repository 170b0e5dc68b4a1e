"""One connection's subscriptions, each a small state machine keyed by (channel, symbol).

::

    (none) --subscribe sent--------------------> PENDING
    PENDING --ack (trade, ohlc)-----------------> ACTIVE
    PENDING --ack (book)------------------------> PENDING   (a book is live once its
    PENDING --snapshot verified (book)----------> ACTIVE     snapshot verifies, not on the ack)
    PENDING/ACTIVE --error ack------------------> REJECTED  (retry at `retry_at_ns`, with its
    REJECTED --retry sent-----------------------> PENDING    own full-jitter backoff)
    ACTIVE --resync (book)----------------------> UNSUBSCRIBING
    UNSUBSCRIBING --unsubscribe acked-----------> PENDING   (resubscribed for a fresh snapshot)
    any --"already subscribed" error------------> ACTIVE    (the server's view wins)
    connection lost ----------------------------> (none)    (every subscription is gone)

A snapshot that verifies while its book is UNSUBSCRIBING belongs to the old subscription (held
back, e.g. by maintenance): the book is in sync again, but the subscription stays
UNSUBSCRIBING and the resubscribe's snapshot closes the gap.
"""

from __future__ import annotations

import enum
import random

from ingest_platform.core.backoff import Backoff

Key = tuple[str, str]
"""``(channel, symbol)``."""


class SubscriptionState(enum.Enum):
    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBING = "unsubscribing"
    REJECTED = "rejected"


class Subscription:
    """Where one (channel, symbol) subscription stands."""

    __slots__ = ("backoff", "retry_at_ns", "state")

    def __init__(self, state: SubscriptionState) -> None:
        self.state = state
        self.retry_at_ns: int | None = None
        self.backoff: Backoff | None = None


class Subscriptions:
    """The transitions above; `control.Control` sends the requests they imply."""

    def __init__(self, backoff_base: float, backoff_cap: float, rng: random.Random) -> None:
        self._base = backoff_base
        self._cap = backoff_cap
        self._rng = rng
        self._subs: dict[Key, Subscription] = {}

    def state(self, channel: str, symbol: str) -> SubscriptionState | None:
        sub = self._subs.get((channel, symbol))
        return sub.state if sub is not None else None

    def _get(self, channel: str, symbol: str, default: SubscriptionState) -> Subscription:
        sub = self._subs.get((channel, symbol))
        if sub is None:
            sub = self._subs[(channel, symbol)] = Subscription(default)
        return sub

    def requested(self, channel: str, symbol: str) -> None:
        """A subscribe request went out."""
        sub = self._get(channel, symbol, SubscriptionState.PENDING)
        sub.state = SubscriptionState.PENDING
        sub.retry_at_ns = None

    def acked(self, channel: str, symbol: str) -> bool:
        """A success ack arrived; True when the subscription is now live (never for a book)."""
        sub = self._get(channel, symbol, SubscriptionState.PENDING)
        if channel == "book":
            if sub.state is not SubscriptionState.ACTIVE:
                sub.state = SubscriptionState.PENDING
            return False
        sub.state = SubscriptionState.ACTIVE
        sub.backoff = None
        return True

    def snapshot_verified(self, symbol: str) -> bool:
        """A book's snapshot verified; False when it belongs to a subscription being replaced."""
        sub = self._subs.get(("book", symbol))
        if sub is None:
            return True
        if sub.state is SubscriptionState.UNSUBSCRIBING:
            return False
        sub.state = SubscriptionState.ACTIVE
        return True

    def rejected(self, channel: str, symbol: str, now_ns: int) -> float:
        """An error ack: schedule a retry; returns its delay in seconds."""
        sub = self._get(channel, symbol, SubscriptionState.REJECTED)
        sub.state = SubscriptionState.REJECTED
        if sub.backoff is None:
            sub.backoff = Backoff(self._base, self._cap, self._rng)
        delay = sub.backoff.next_delay()
        sub.retry_at_ns = now_ns + int(delay * 1e9)
        return delay

    def already_subscribed(self, channel: str, symbol: str) -> None:
        self._get(channel, symbol, SubscriptionState.ACTIVE).state = SubscriptionState.ACTIVE

    def start_unsubscribe(self, symbol: str, resyncing: bool) -> bool:
        """A book must resync: True when an unsubscribe should go out now.

        Not while a snapshot is already on its way (PENDING), a retry is scheduled (REJECTED),
        there is no subscription, or this very resync is already unsubscribing.
        """
        sub = self._subs.get(("book", symbol))
        if sub is None or sub.state in (SubscriptionState.PENDING, SubscriptionState.REJECTED):
            return False
        if resyncing and sub.state is SubscriptionState.UNSUBSCRIBING:
            return False
        sub.state = SubscriptionState.UNSUBSCRIBING
        return True

    def unsubscribed(self, symbol: str) -> bool:
        """An unsubscribe was acknowledged; True when the book should be resubscribed."""
        return self.state("book", symbol) is SubscriptionState.UNSUBSCRIBING

    def due(self, now_ns: int) -> list[Key]:
        """Rejected subscriptions whose retry time has come."""
        return [
            key
            for key, sub in self._subs.items()
            if sub.state is SubscriptionState.REJECTED
            and sub.retry_at_ns is not None
            and now_ns >= sub.retry_at_ns
        ]

    def active(self) -> list[Key]:
        return [key for key, sub in self._subs.items() if sub.state is SubscriptionState.ACTIVE]

    def clear(self) -> None:
        """The connection is gone, and every subscription with it."""
        self._subs.clear()
