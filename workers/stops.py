"""Why a sequence stops after appending a token: model EOS, a stop token id, or a stop string.

The stopping token is kept in the output ids (the kernel may trim text after a stop string).
"""

from __future__ import annotations

from typing import Any

from workers.params import GenParams

TAIL_SLACK_TOKENS = 8  # extra tokens decoded so that multi-byte characters are complete


def stop_reason(ids: list[int], params: GenParams, eos_id: int, tokenizer: Any) -> str | None:
    """`ids` are the generated ids including the newly chosen last one."""
    token = ids[-1]
    if token == eos_id:
        return "eos"
    if token in params.stop_token_ids:
        return "stop"
    if params.stop and tail_has_stop_string(ids, params.stop, tokenizer):
        return "stop"
    return None


def tail_has_stop_string(ids: list[int], stops: list[str], tokenizer: Any) -> bool:
    """Only the tail is decoded: a stop string that ended earlier would already have stopped."""
    window = max(len(s.encode()) for s in stops) + TAIL_SLACK_TOKENS
    tail = tokenizer.decode(ids[-window:], skip_special_tokens=True)
    return any(s in tail for s in stops)
