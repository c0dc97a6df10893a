"""Declarations of the llm.* syscalls (scheduled generation)."""

from __future__ import annotations

from syscalls.names import (
    LABEL_PATTERN,
    MAX_LABEL_LEN,
    MAX_NAME_LEN,
    MAX_REQUEST_ID_LEN,
    NAME_PATTERN,
)
from syscalls.schema import Field, Syscall

LLM = (
    Syscall(
        name="llm.generate",
        doc=(
            "Queues a generation request with the scheduler and replies when it finishes. "
            "With stream=true the kernel first sends stream messages carrying new tokens. "
            "If the worker running it dies, the request resumes on another worker from its last checkpoint or "
            "its prompt: the agent sees only a delay, no token is streamed twice, and the output is the one an "
            "uninterrupted run gives (a replay that differs fails with REPLAY_DIVERGED). If the kernel crashes, a "
            "kernel restarted on the same state dir resumes it from its journal; the agent re-attaches with "
            "llm.attach (section 4)."
        ),
        args=(
            Field("prompt", "str|list", "text, a list of token ids, or chat messages [{role, content}]", required=True, min=1),
            Field("max_new_tokens", "int", "tokens to generate at most", default=64, min=1, max=8192),
            Field("temperature", "float", "0 = greedy; > 0 = sampling", default=0.0, min=0.0, max=100.0),
            Field("top_k", "int", "sampling: keep the k most likely tokens (0 = off)", default=0, min=0),
            Field("top_p", "float", "sampling: nucleus mass (1.0 = off)", default=1.0, min=0.0, max=1.0, is_min_exclusive=True),
            Field("seed", "int|nil", "sampling seed; default derives from request_id", min=0, max=2**63 - 1),
            Field("num_beams", "int", "beam search when >= 2", default=1, min=1, max=16),
            Field("length_penalty", "float", "beam search: score / length**length_penalty", default=1.0, min=-10.0, max=10.0),
            Field("early_stopping", "bool", "beam search: stop when num_beams hypotheses are finished", default=False),
            Field("stop", "list|nil", "stop strings (non-empty)", items="str", item_min=1, max=16),
            Field("stop_token_ids", "list|nil", "stop token ids (the model's EOS always stops)", items="int", max=64),
            Field("priority", "int", "for the priority policy: lower runs first (aging: it runs ahead of every request arriving more than priority x --priority-aging-s after it)", default=0, min=0, max=99),
            Field("expected_tokens", "int|nil", "length hint for the srpt policy: the tokens this call is expected to generate (default max_new_tokens); the kernel ranks by hint minus tokens generated, never checks it", min=1, max=8192),
            Field("program_id", "str|nil", "for the plas policy: groups this call with the caller's other calls under the same label into one program, ranked by the program's total decode service (default: all the caller's calls form one program)",
                  min=1, max=MAX_LABEL_LEN, pattern=LABEL_PATTERN),
            Field("stream", "bool", "send stream messages as tokens come", default=False),
            Field("logprobs", "bool", "return each output token's log-probability (float32, the model's distribution before temperature/top-k/top-p); not with num_beams >= 2", default=False),
            Field("request_id", "str|nil", "caller's label, unique per agent among its requests in flight; the request id is '<agent>/<label>' (default: <agent>/<n>)",
                  min=1, max=MAX_LABEL_LEN, pattern=LABEL_PATTERN),
            Field("context_policy", "str", "what to do when the prompt exceeds the model's window", default="error", choices=("error", "truncate", "summarize")),
        ),
        result="{request_id, text, token_ids, [logprobs: one float per token_ids entry, only with logprobs=true], finish_reason: 'length'|'stop'|'eos', prompt_tokens, timing: {arrival, first_scheduled, first_token, finish, waiting_s, queued_s, turnaround_s, ttft_s, preemptions, num_slices}}",
        errors=("CONTEXT_TOO_LONG", "CANCELLED", "UNAVAILABLE", "SNAPSHOT_INVALID", "REPLAY_DIVERGED", "ALREADY_EXISTS"),
        example_args={"prompt": "Once upon a time", "max_new_tokens": 8},
        example_result={"request_id": "math-0/0", "text": "...", "token_ids": [12, 99], "finish_reason": "length", "prompt_tokens": 17, "timing": {"waiting_s": 0.01}},
        is_streaming=True,
    ),
    Syscall(
        name="llm.attach",
        doc=(
            "Re-attaches the caller to one of its llm.generate requests, by request id, and replies with that call's "
            "result (or error) when it is available. For a kernel that crashed and was restarted on the same state "
            "dir: it resumes every request of its journal from its last checkpoint or prompt, and an agent that "
            "re-registers under the same name re-attaches to them (the SDK does both on its own). A request whose "
            "agent does not re-attach within the kernel's --reattach-grace seconds is cancelled; a finished "
            "request's reply stays fetchable that long. If the original call streamed, the kernel first streams the "
            "tokens after the first `received` (those the caller already has), so none arrives twice."
        ),
        args=(
            Field("request_id", "str", "the request: its label or its full id '<caller>/<label>'", required=True, min=1,
                  max=MAX_REQUEST_ID_LEN, pattern=LABEL_PATTERN),
            Field("received", "int", "stream tokens the caller already received for it", default=0, min=0),
        ),
        result="the llm.generate result of that request",
        errors=("NOT_FOUND", "CANCELLED", "UNAVAILABLE", "REPLAY_DIVERGED", "CONTEXT_TOO_LONG", "SNAPSHOT_INVALID"),
        example_args={"request_id": "math-0/3", "received": 5},
        example_result={"request_id": "math-0/3", "text": "...", "token_ids": [12, 99], "finish_reason": "length",
                        "prompt_tokens": 17, "timing": {"waiting_s": 0.01}},
        is_streaming=True,
    ),
    Syscall(
        name="llm.info",
        doc=("The model the workers serve: id, vocabulary size (prompt token ids are 0..vocab_size-1), context window "
             "(prompt + max_new_tokens), EOS token, engine, batch invariance, device, and each worker's KV capacity."),
        args=(),
        result=("{model_id: str, vocab_size: int, context_window: int, eos_token_id: int|nil, engine: 'native'|'hf', "
                "batch_invariant: bool, device: str, dtype: str, num_workers: int, max_batch: int, "
                "kv_capacity: {pool_bytes, num_blocks, block_size, bytes_per_token}|nil}"),
        errors=("UNAVAILABLE",),
        example_args={},
        example_result={"model_id": "tiny", "vocab_size": 259, "context_window": 2048, "eos_token_id": 257,
                        "engine": "native", "batch_invariant": True, "device": "cpu", "dtype": "float32",
                        "num_workers": 1, "max_batch": 1,
                        "kv_capacity": {"pool_bytes": 536870912, "num_blocks": 32768, "block_size": 8, "bytes_per_token": 2048}},
        needs_token=False,
    ),
    Syscall(
        name="llm.cancel",
        doc="Cancels a request (the caller's, or with a write grant on the owner's snapshots, the owner's); its pending llm.generate gets a CANCELLED error and its KV and snapshots are freed.",
        args=(Field("request_id", "str", "the request to cancel: its label or its full id '<owner>/<label>'", required=True, min=1,
                    max=MAX_REQUEST_ID_LEN, pattern=LABEL_PATTERN),
              Field("owner", "str|nil", "owning agent's name (default: the caller); needs a 'snapshots' write grant",
                    max=MAX_NAME_LEN, pattern=NAME_PATTERN)),
        result="{cancelled: bool}",
        errors=("NOT_FOUND", "PERMISSION_DENIED"),
        example_args={"request_id": "math-0/3"},
        example_result={"cancelled": True},
    ),
    Syscall(
        name="llm.snapshots",
        doc="Lists the owner's requests whose decoding state is swapped out to LMDB (the kernel's snapshot index: request, size, whether it holds KV).",
        args=(Field("owner", "str|nil", "owning agent's name (default: the caller); needs a 'snapshots' read grant",
                    max=MAX_NAME_LEN, pattern=NAME_PATTERN),),
        result="{snapshots: [{request_id, bytes, has_kv}]}",
        errors=("PERMISSION_DENIED",),
        example_args={},
        example_result={"snapshots": [{"request_id": "math-0/3", "bytes": 262144, "has_kv": True}]},
    ),
)
