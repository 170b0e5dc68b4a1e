"""Which publishes one JetStream acknowledgement confirms: the rule, with no I/O.

JetStream answers a publish that carries a reply subject with the stream sequence it stored the
message at (or ``"duplicate": true`` and the earlier sequence, or an error). Asking for that
answer on every publish is what the fan-out's publisher paid most for: at 10k events/s an
answer per event cost the publisher process ~11 µs of CPU per event to parse and match, and the
server ~7 µs to send (``benchmarks/kraken_fanout.py``'s figures, performance.md). So most
publishes go out *without* a reply subject, and every so often (at the end of each burst, and
at least every ``confirm_every``-th) one goes *with* one; its answer confirms the whole group
since the previous confirmed publish, by arithmetic:

    the confirming publish was stored at S, the previous answer on this connection was stored at
    L, and the group holds k publishes  =>  if S == L + k, all k were stored, in order.

A single connection's publishes reach a stream in order, and its answers come back in order,
so L is known whenever the previous answer was a fresh store. When the sum does not hold (a
publish in the group was refused, or was a duplicate, or the previous answer was not a fresh
store, or the connection dropped in between), the group is *doubtful*: none of its other
publishes is assumed stored, and each is sent again on its own with a reply subject, same
``Nats-Msg-Id``. JetStream stores it once either way and answers ``duplicate`` if it already
had it: so every publish ends known stored, known duplicate, or known refused.

The one case the sum cannot see: another writer storing exactly as many messages on the same
stream as the group lost, between its publishes. The stream op is the stream's only writer (one
run at a time); where that cannot be promised, ``confirm_every=1`` asks for every answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Answer:
    """JetStream's answer to a confirmed publish: ``seq`` when it stored the message (fresh or
    as a ``duplicate`` of the one at ``seq``), ``error`` when it refused it."""

    seq: int | None = None
    duplicate: bool = False
    error: str | None = None

    @property
    def fresh(self) -> bool:
        """The publish was stored now, at ``seq`` (not a duplicate, not refused)."""
        return self.seq is not None and not self.duplicate and self.error is None


@dataclass(frozen=True, slots=True)
class Settled(Generic[T]):
    """What an answer settles: ``stored`` (fresh, by the sum), the confirming publish itself
    (``confirming``, whose own answer says what became of it), and ``doubtful`` publishes to
    send again each with its own reply subject."""

    stored: list[T]
    confirming: T | None
    doubtful: list[T]


class Confirmations(Generic[T]):
    """Publishes grouped by the confirmed publish that follows them, and the answers' sums.

    `sent` records each publish in order (``token``: the reply token of a confirmed one, None
    for one sent without a reply subject); `answered` takes each answer in the order they
    come; `lost_connection` forgets the last stored sequence (answers in flight may never
    come, and what was sent may or may not have arrived).
    """

    def __init__(self) -> None:
        self.open: list[T] = []
        self.groups: dict[str, list[T]] = {}
        self.last_seq: int | None = None

    def sent(self, item: T, token: str | None) -> None:
        if token is None:
            self.open.append(item)
            return
        self.open.append(item)
        self.groups[token] = self.open
        self.open = []

    def waiting(self) -> int:
        """Publishes whose fate is not known yet (open and in groups)."""
        return len(self.open) + sum(len(group) for group in self.groups.values())

    def lost_connection(self) -> None:
        self.last_seq = None

    def answered(self, token: str, answer: Answer) -> Settled[T]:
        group = self.groups.pop(token, None)
        if not group:
            # A group given up on (its publishes' caller timed out): nothing to settle, but the
            # stream moved on, and the next sum must start from where it is now.
            self.last_seq = answer.seq if answer.fresh else None
            return Settled([], None, [])
        others, confirming = group[:-1], group[-1]
        if answer.fresh:
            assert answer.seq is not None
            adds_up = self.last_seq is not None and answer.seq == self.last_seq + len(group)
            self.last_seq = answer.seq
            if adds_up or not others:
                return Settled(others, confirming, [])
            return Settled([], confirming, others)
        if others:
            self.last_seq = None  # how many of the others were stored is not known
        # A lone duplicate or refusal stored nothing: the last stored sequence stands.
        return Settled([], confirming, others)

    def give_up(self, token: str) -> list[T]:
        """The caller stopped waiting for this group (its timeout): drop it. Should its answer
        still come, it settles nothing but moves the sum on (`answered`)."""
        return self.groups.pop(token, [])

    def forget(self, token: str) -> list[T]:
        """A confirmed publish that will never be answered (its send failed): its group goes
        back to being open, to be confirmed by the next one."""
        group = self.groups.pop(token, [])
        if group:
            group.pop()
            self.open[:0] = group
        return group
