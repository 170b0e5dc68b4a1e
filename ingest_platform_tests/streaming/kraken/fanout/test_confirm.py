"""`confirm.Confirmations` against a model of a JetStream stream: whatever the mix of confirmed
and unconfirmed publishes, refusals, duplicates and dropped connections, no publish is ever
settled as stored unless the stream holds it, and each is settled exactly once."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_platform.streaming.kraken.fanout.confirm import Answer, Confirmations


@dataclass
class _Stream:
    """A stream as JetStream keeps one: sequences from 1, message ids stored once."""

    seq: int = 0
    ids: dict[str, int] = field(default_factory=dict)

    def store(self, msg_id: str, refuse: bool) -> Answer:
        if msg_id in self.ids:
            return Answer(seq=self.ids[msg_id], duplicate=True)
        if refuse:
            return Answer(error="maximum bytes exceeded")
        self.seq += 1
        self.ids[msg_id] = self.seq
        return Answer(seq=self.seq)


_publish = st.tuples(
    st.integers(0, 30),  # message id (repeats are publishes sent again)
    st.booleans(),  # confirmed
    st.booleans(),  # refused, if new
)
_step = st.one_of(
    st.tuples(st.just("publish"), _publish),
    st.tuples(st.just("answer"), st.integers(1, 3)),
    st.tuples(st.just("drop"), st.none()),  # the connection drops: answers in flight are lost
    st.tuples(st.just("abandon"), st.none()),  # the caller gives up on the oldest group
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_step, max_size=80), st.data())
def test_nothing_is_settled_stored_that_the_stream_does_not_hold(steps, data):
    stream = _Stream()
    confirmations: Confirmations[str] = Confirmations()
    answers: list[tuple[str, Answer]] = []  # in flight, in order
    settled: dict[str, list[str]] = {}  # publish name -> outcomes
    names = iter(f"p{i}" for i in range(10_000))
    msg_ids: dict[str, str] = {}
    tokens = iter(range(10_000))

    def publish(name: str, msg_id: str, confirmed: bool, refuse: bool) -> None:
        msg_ids[name] = msg_id
        token = str(next(tokens)) if confirmed else None
        confirmations.sent(name, token)
        answer = stream.store(msg_id, refuse)
        if token is not None:
            answers.append((token, answer))

    def settle(outcome: str, name: str) -> None:
        settled.setdefault(name, []).append(outcome)
        if outcome in ("stored", "duplicate"):
            assert msg_ids[name] in stream.ids, f"{name} settled {outcome} but not stored"

    def answer_next() -> None:
        token, answer = answers.pop(0)
        result = confirmations.answered(token, answer)
        for name in result.stored:
            settle("stored", name)
        if result.confirming is not None:
            if answer.error:
                settle("refused", result.confirming)
            else:
                settle("duplicate" if answer.duplicate else "stored", result.confirming)
        for name in result.doubtful:  # what the bus does: each sent again, confirmed
            publish(next(names), msg_ids[name], True, data.draw(st.booleans()))
            settle("resent", name)

    for kind, arg in steps:
        if kind == "publish":
            msg_id, confirmed, refuse = arg
            publish(next(names), f"m{msg_id}", confirmed, refuse)
        elif kind == "answer":
            for _ in range(min(arg, len(answers))):
                answer_next()
        elif kind == "abandon":
            if confirmations.groups:  # its answer still comes, for a group no longer kept
                token = next(iter(confirmations.groups))
                for name in confirmations.give_up(token):
                    settle("timed out", name)
        else:
            answers.clear()
            confirmations.lost_connection()
            for token in list(confirmations.groups):  # the caller's timeouts give them up
                for name in confirmations.give_up(token):
                    settle("timed out", name)
    # the burst ends with a confirmed publish, and every answer comes
    if confirmations.open:
        publish(next(names), "closing", True, False)
    while answers:
        answer_next()
    assert not confirmations.open and not confirmations.groups
    for name, outcomes in settled.items():
        assert len(outcomes) == 1, f"{name} settled {outcomes}"
    assert set(settled) == set(msg_ids)  # every publish settled


def test_a_group_that_adds_up_is_stored_whole_and_one_that_does_not_is_sent_again():
    confirmations: Confirmations[str] = Confirmations()
    confirmations.sent("first", "t0")
    assert confirmations.answered("t0", Answer(seq=10)).stored == []  # alone: its own answer
    for name in ("a", "b"):
        confirmations.sent(name, None)
    confirmations.sent("c", "t1")
    whole = confirmations.answered("t1", Answer(seq=13))
    assert (whole.stored, whole.confirming, whole.doubtful) == (["a", "b"], "c", [])
    for name in ("d", "e"):
        confirmations.sent(name, None)
    confirmations.sent("f", "t2")
    short = confirmations.answered("t2", Answer(seq=15))  # one of d, e was not stored
    assert (short.stored, short.confirming, short.doubtful) == ([], "f", ["d", "e"])
    confirmations.sent("g", None)
    confirmations.sent("h", "t3")
    confirmations.lost_connection()
    after = confirmations.answered("t3", Answer(seq=17))  # the sum is unknown after a drop
    assert after.doubtful == ["g"]


def test_after_a_group_whose_confirming_publish_was_refused_the_next_sum_is_not_trusted():
    # "a" stored at 11, "b" refused: the stream is at 11, not 10. The next group ("c" refused,
    # "d" stored at 12) would add up from 10; it must be sent again instead.
    confirmations: Confirmations[str] = Confirmations()
    confirmations.sent("first", "t0")
    confirmations.answered("t0", Answer(seq=10))
    confirmations.sent("a", None)
    confirmations.sent("b", "t1")
    refused = confirmations.answered("t1", Answer(error="maximum bytes exceeded"))
    assert refused.doubtful == ["a"] and refused.confirming == "b"
    confirmations.sent("c", None)
    confirmations.sent("d", "t2")
    after = confirmations.answered("t2", Answer(seq=12))
    assert after.stored == [] and after.doubtful == ["c"]


def test_an_answer_for_a_group_given_up_on_moves_the_sum_on():
    # "a", "b" (given up on by the caller) were stored at 11 and 12; then "c" and "d" are
    # refused and "e" stored at 13: from a stale 10, the three would add up.
    confirmations: Confirmations[str] = Confirmations()
    confirmations.sent("first", "t0")
    confirmations.answered("t0", Answer(seq=10))
    confirmations.sent("a", None)
    confirmations.sent("b", "t1")
    assert confirmations.give_up("t1") == ["a", "b"]
    for name in ("c", "d"):
        confirmations.sent(name, None)
    confirmations.sent("e", "t2")
    assert confirmations.answered("t1", Answer(seq=12)).confirming is None
    after = confirmations.answered("t2", Answer(seq=13))
    assert after.stored == [] and after.doubtful == ["c", "d"]
