"""Hypothesis strategies: short prompts and the three decoding modes."""

from __future__ import annotations

from hypothesis import strategies as st

# Tokens the random tiny model emits often: as stop tokens they make beams finish early.
FREQUENT_TOKENS = [290, 379, 53, 113, 336]

prompts = st.lists(st.integers(0, 255), min_size=1, max_size=40)
stop_ids = st.sampled_from([[], [290], [379, 53], [113, 336]])


@st.composite
def gen_params(draw: st.DrawFn, max_new: int = 24) -> dict:
    mode = draw(st.sampled_from(["greedy", "sample", "beam"]))
    params = {"max_new_tokens": draw(st.integers(1, max_new)), "stop_token_ids": draw(stop_ids)}
    if mode == "sample":
        params.update(
            temperature=draw(st.sampled_from([0.5, 1.0, 1.7])),
            top_k=draw(st.sampled_from([0, 5, 50])),
            top_p=draw(st.sampled_from([1.0, 0.9, 0.5])),
            seed=draw(st.integers(0, 2**31)),
        )
    elif mode == "beam":
        params.update(
            num_beams=draw(st.integers(2, 3)),
            length_penalty=draw(st.sampled_from([1.0, 0.5, 2.0])),
            early_stopping=draw(st.booleans()),
        )
    return params


@st.composite
def cut_points(draw: st.DrawFn, max_new: int = 24) -> list[int]:
    return draw(st.lists(st.integers(1, max_new), min_size=1, max_size=5))
