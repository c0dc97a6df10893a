"""Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with an HTTP status.

Owner: the gateway's request handlers. Every failure a client can cause maps to a 4xx with a stable
`code`; kernel error codes map by the table below (docs/gateway.md lists it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# kernel code -> (HTTP status, OpenAI error type)
KERNEL_CODES: dict[str, tuple[int, str]] = {
    "INVALID_ARGUMENT": (400, "invalid_request_error"),
    "CONTEXT_TOO_LONG": (400, "invalid_request_error"),
    "TOO_LARGE": (413, "invalid_request_error"),
    "UNAUTHENTICATED": (401, "authentication_error"),
    "PERMISSION_DENIED": (403, "permission_error"),
    "NOT_FOUND": (404, "not_found_error"),
    "ALREADY_EXISTS": (409, "conflict_error"),
    "QUOTA_EXCEEDED": (429, "quota_exceeded_error"),
    "CANCELLED": (499, "request_cancelled"),
    "UNAVAILABLE": (503, "service_unavailable"),
    "TIMEOUT": (504, "timeout_error"),
}
# kernel argument names -> the OpenAI parameter they come from
PARAMS = {"max_new_tokens": "max_tokens", "stop": "stop", "seed": "seed", "temperature": "temperature",
          "top_p": "top_p", "request_id": "user"}
_FIELD = re.compile(r"field '([A-Za-z_]+)")


@dataclass(slots=True)
class APIError(Exception):
    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_param(param: str, message: str, code: str = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


def from_kernel(code: str, message: str, prompt_param: str = "messages") -> APIError:
    """An error reply of the kernel as the client sees it (`code` is the kernel's, lower-cased)."""
    status, kind = KERNEL_CODES.get(code, (500, "server_error"))
    field = _FIELD.search(message)
    param = None
    if field is not None:
        param = prompt_param if field.group(1) == "prompt" else PARAMS.get(field.group(1), field.group(1))
    if code == "CONTEXT_TOO_LONG":
        return APIError(status, message, kind, prompt_param, "context_length_exceeded")
    return APIError(status, message, kind, param, code.lower())
