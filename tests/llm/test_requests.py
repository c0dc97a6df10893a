"""The replay check of kernel/llm/requests.py: a request replayed after its worker died must make
the tokens it already made; those are not streamed again, and a difference is reported."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kernel.llm.requests import LiveRequests, Submission, take_slice

ARGS = {"stream": True, "num_beams": 1}


def submission() -> Submission:
    return Submission("a/0", "a", dict(ARGS), 0.0, None)


@given(st.lists(st.integers(0, 9), min_size=1, max_size=40), st.data())
def test_a_replay_streams_each_token_once(tokens: list[int], data) -> None:
    """Slices of the first attempt, a crash at `lost`, a replay from `resume` in other slices:
    the concatenated fresh tokens are the tokens, once each."""
    sub = submission()
    lost = data.draw(st.integers(0, len(tokens)))
    resume = data.draw(st.integers(0, lost))
    streamed = []
    for part in _slices(tokens[:lost], data):
        fresh, diverged = take_slice(sub, part)
        assert diverged is None
        streamed += fresh
    sub.cursor = resume  # the worker died; the request resumes from a checkpoint at `resume`
    for part in _slices(tokens[resume:], data):
        fresh, diverged = take_slice(sub, part)
        assert diverged is None
        streamed += fresh
    assert streamed == tokens and sub.delivered == tokens


def test_a_differing_replay_is_reported_not_streamed() -> None:
    sub = submission()
    take_slice(sub, [1, 2, 3, 4])
    sub.cursor = 1
    fresh, diverged = take_slice(sub, [2, 9, 5])
    assert fresh == [] and diverged == "the replay of a/0 made [2, 9, 5] at token 1, not [2, 3, 4]"
    assert sub.delivered == [1, 2, 3, 4]


def _slices(tokens: list[int], data) -> list[list[int]]:
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(tokens) - 1)), max_size=4))) if tokens else []
    bounds = [0, *[c for c in cuts if c < len(tokens)], len(tokens)]
    return [tokens[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def test_live_requests_are_indexed_by_agent():
    live = LiveRequests()
    subs = [Submission(rid, rid.split("/")[0], dict(ARGS), 0.0, None) for rid in ("a/0", "a/1", "b/0")]
    for sub in subs:
        live.add(sub)
    assert [s.rid for s in live.of_agent("a")] == ["a/0", "a/1"] and live.counts() == {"a": 2, "b": 1}
    assert live.pop("a/0") is subs[0] and live.pop("a/0") is None
    assert live.pop("a/1") is subs[1] and live.of_agent("a") == [] and live.counts() == {"b": 1}
    assert "b/0" in live and "a/1" not in live and list(live) == ["b/0"] and len(live) == 1
