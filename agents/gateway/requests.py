"""OpenAI request bodies -> llm.generate arguments (pure; docs/gateway.md "Mapping").

Unknown fields are refused (400 `unknown_parameter`), like OpenAI's own API; fields that would change
the output in a way aiosim cannot honour are refused unless they carry their neutral value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.gateway.errors import APIError, bad_param

MAX_N = 16
SEED_MODULUS = 2**63  # the kernel's seed range
COMMON = {"model", "max_tokens", "temperature", "top_p", "seed", "stop", "n", "stream", "stream_options", "logprobs",
          "user", "frequency_penalty", "presence_penalty", "logit_bias"}
ACCEPTED = {"chat": COMMON | {"messages", "max_completion_tokens", "top_logprobs"},
            "completion": COMMON | {"prompt", "echo"}}
NEUTRAL = {"frequency_penalty": (0, 0.0), "presence_penalty": (0, 0.0), "logit_bias": ({},), "echo": (False,),
           "top_logprobs": (0,)}


@dataclass(slots=True)
class Generation:
    """One OpenAI request as the kernel will run it: `n` llm.generate calls sharing `args`."""

    kind: str  # "chat" | "completion"
    model: str
    args: dict
    seeds: list[int | None]
    is_stream: bool = False
    include_usage: bool = False
    logprobs: bool = False
    user: str | None = None
    stops: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.seeds)

    def call_args(self, index: int, label: str) -> dict:
        """The llm.generate arguments of choice `index`, whose request label is `label`."""
        args = {**self.args, "request_id": label, "stream": self.is_stream}
        if self.seeds[index] is not None:
            args["seed"] = self.seeds[index]
        return args


def parse(kind: str, body: Any) -> Generation:
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object", code="invalid_json")
    body = {k: v for k, v in body.items() if v is not None}  # null means absent, as in OpenAI's API
    _check_fields(kind, body)
    model = _typed(body, "model", str, required=True)
    args: dict = {"prompt": _messages(body) if kind == "chat" else _prompt(body)}
    _copy_sampling(body, args)
    stops = _stops(body)
    if stops:
        args["stop"] = stops
    logprobs = _logprobs(kind, body)
    if logprobs:
        args["logprobs"] = True
    gen = Generation(kind, model, args, _seeds(body), logprobs=logprobs, stops=stops,
                     user=_typed(body, "user", str))
    gen.is_stream = bool(_typed(body, "stream", bool))
    options = _typed(body, "stream_options", dict) or {}
    if options and not gen.is_stream:
        raise bad_param("stream_options", "stream_options is only allowed with stream: true")
    gen.include_usage = bool(options.get("include_usage"))
    return gen


def _check_fields(kind: str, body: dict) -> None:
    for name, value in body.items():
        if name not in ACCEPTED[kind]:
            raise bad_param(name, f"unrecognized request argument supplied: {name}", "unknown_parameter")
        if name in NEUTRAL and value not in NEUTRAL[name]:
            raise bad_param(name, f"{name} is not supported by aiosim (only {NEUTRAL[name][0]!r})", "unsupported_parameter")


def _typed(body: dict, name: str, kind: type | tuple, required: bool = False) -> Any:
    value = body.get(name)
    if value is None:
        if required:
            raise bad_param(name, f"missing required parameter: '{name}'", "missing_required_parameter")
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise bad_param(name, f"'{name}' must be of type {names}", "invalid_type")
    return value


def _messages(body: dict) -> list[dict]:
    messages = _typed(body, "messages", list, required=True)
    if not messages:
        raise bad_param("messages", "'messages' must not be empty")
    return [_message(i, m) for i, m in enumerate(messages)]


def _message(i: int, message: Any) -> dict:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise bad_param(f"messages[{i}]", f"messages[{i}] must be an object with a string 'role'")
    content = message.get("content")
    if isinstance(content, list):  # content parts: only text is understood
        if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content):
            raise bad_param(f"messages[{i}].content", "only text content parts are supported", "unsupported_parameter")
        content = "".join(p["text"] for p in content)
    if not isinstance(content, str):
        raise bad_param(f"messages[{i}].content", f"messages[{i}].content must be a string or text parts")
    return {"role": message["role"], "content": content}


def _prompt(body: dict) -> str | list[int]:
    prompt = _typed(body, "prompt", (str, list), required=True)
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]  # a batch of one
    if isinstance(prompt, list) and not all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        raise bad_param("prompt", "prompt must be a string, a list of token ids, or a list of one of those "
                        "(one prompt per request; send several requests instead)", "unsupported_parameter")
    if not prompt:
        raise bad_param("prompt", "prompt must not be empty")
    return prompt


def _copy_sampling(body: dict, args: dict) -> None:
    max_tokens = _typed(body, "max_tokens", int)
    max_completion = _typed(body, "max_completion_tokens", int)
    if max_tokens is not None and max_completion is not None and max_tokens != max_completion:
        raise bad_param("max_completion_tokens", "max_tokens and max_completion_tokens differ; send one of them")
    if (max_tokens or max_completion) is not None:
        args["max_new_tokens"] = max_tokens if max_tokens is not None else max_completion
    for name in ("temperature", "top_p"):
        value = _typed(body, name, (int, float))
        if value is not None:
            args[name] = float(value)


def _stops(body: dict) -> list[str]:
    stop = _typed(body, "stop", (str, list))
    stops = [stop] if isinstance(stop, str) else (stop or [])
    if not all(isinstance(s, str) and s for s in stops):
        raise bad_param("stop", "stop must be a non-empty string or a list of non-empty strings")
    return stops


def _logprobs(kind: str, body: dict) -> bool:
    if kind == "chat":
        return bool(_typed(body, "logprobs", bool))
    value = _typed(body, "logprobs", int)
    if value:
        raise bad_param("logprobs", "only logprobs: 0 (the chosen tokens' log-probabilities) is supported: "
                        "aiosim returns no alternatives", "unsupported_parameter")
    return value == 0


def _seeds(body: dict) -> list[int | None]:
    """One seed per choice: seed, seed+1, ... (None: the kernel derives it from the request id)."""
    n = _typed(body, "n", int)
    n = 1 if n is None else n
    if not 1 <= n <= MAX_N:
        raise bad_param("n", f"n must be between 1 and {MAX_N}")
    seed = _typed(body, "seed", int)
    if seed is not None and not 0 <= seed < SEED_MODULUS:
        raise bad_param("seed", f"seed must be between 0 and {SEED_MODULUS - 1}")
    return [None if seed is None else (seed + i) % SEED_MODULUS for i in range(n)]
