"""Generates the syscall reference of docs/protocol.md from SYSCALLS (the one list).

`python -m syscalls.docgen --write docs/protocol.md` rewrites the part between the markers;
a test fails when the file is out of date.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from syscalls.errors import ErrorCode
from syscalls.schema import Field, Syscall
from syscalls.table import PROTOCOL_VERSION, SYSCALLS

BEGIN = "<!-- BEGIN GENERATED SYSCALL REFERENCE (python -m syscalls.docgen --write docs/protocol.md) -->"
END = "<!-- END GENERATED SYSCALL REFERENCE -->"
COMMON_ERRORS = ("BAD_FRAME", "BAD_ENVELOPE", "UNSUPPORTED_VERSION", "TOO_LARGE", "UNKNOWN_CALL",
                 "INVALID_ARGUMENT", "UNAUTHENTICATED", "INTERNAL")


def _bounds(f: Field) -> str:
    parts = []
    is_number = any(t in ("int", "float") for t in f.type.split("|"))
    word = "" if is_number else "length "
    if f.min is not None:
        parts.append(f"{word}{'>' if f.is_min_exclusive else '>='} {f.min:g}")
    if f.max is not None:
        parts.append(f"{word}<= {f.max:g}")
    if f.choices:
        parts.append("one of " + ", ".join(f"`{c}`" for c in f.choices))
    if f.pattern:
        parts.append(f"matches `{f.pattern}`")
    if f.items:
        parts.append(f"items: {f.items}" + (f" of length >= {f.item_min}" if f.item_min else ""))
    return "; ".join(parts)


def _field_row(f: Field) -> str:
    need = "yes" if f.required else f"no (default `{json.dumps(f.default)}`)"
    return f"| `{f.name}` | {f.type.replace('|', ' or ')} | {need} | {_bounds(f) or '-'} | {f.doc} |"


def render_call(s: Syscall) -> str:
    lines = [f"### `{s.name}`", "", s.doc, ""]
    lines.append(f"Token required: {'yes' if s.needs_token else 'no (a token, if sent, must be valid)'}."
                 + (" Streaming: yes (see [Stream messages](#stream-messages); needs a DEALER socket)."
                    if s.is_streaming else ""))
    lines.append("")
    if s.args:
        lines += ["| field | type | required | bounds | meaning |", "|---|---|---|---|---|"]
        lines += [_field_row(f) for f in s.args]
    else:
        lines.append("No arguments (`args` is `{}`).")
    lines += ["", f"Result: `{s.result}`", ""]
    errors = ", ".join(f"`{e}`" for e in s.errors) or "none beyond the common ones"
    lines += [f"Errors: {errors}.", ""]
    request = {"v": PROTOCOL_VERSION, "id": 7, "call": s.name, "args": s.example_args}
    if s.needs_token:
        request["token"] = "9f2c..."
    reply = {"v": PROTOCOL_VERSION, "id": 7, "ok": True, "result": s.example_result}
    lines += ["Example:", "```json", json.dumps(request), json.dumps(reply), "```", ""]
    return "\n".join(lines)


def render() -> str:
    out = [BEGIN, "", "## Syscall index", ""]
    out += [f"- [`{name}`](#{name.replace('.', '')}): {s.doc.split('. ')[0].rstrip('.')}." for name, s in SYSCALLS.items()]
    out += ["", "## Error codes", "", "| code | meaning |", "|---|---|"]
    out += [f"| `{c.value}` | {ERROR_DOCS[c]} |" for c in ErrorCode]
    out += ["", f"Any call may also fail with the common errors: {', '.join(f'`{e}`' for e in COMMON_ERRORS)}.", ""]
    out += ["## Syscalls", ""]
    out += [render_call(s) for s in SYSCALLS.values()]
    out.append(END)
    return "\n".join(out) + "\n"


ERROR_DOCS = {
    ErrorCode.BAD_FRAME: "the frame is not a msgpack message, or the message has more or fewer than one body frame",
    ErrorCode.BAD_ENVELOPE: "not a map, or an envelope field is missing, unknown or of the wrong type",
    ErrorCode.UNSUPPORTED_VERSION: "`v` is not a protocol version the kernel speaks",
    ErrorCode.TOO_LARGE: "the message exceeds the kernel's `max_message_bytes`",
    ErrorCode.UNKNOWN_CALL: "no syscall of that name",
    ErrorCode.INVALID_ARGUMENT: "an argument is missing, unknown, mistyped or out of range; the message names the field",
    ErrorCode.UNAUTHENTICATED: "the token is absent, wrong, or belongs to an agent that exited",
    ErrorCode.PERMISSION_DENIED: "the caller has no grant from the owner for this resource and mode",
    ErrorCode.NOT_FOUND: "no such key, version, request, tool or identity",
    ErrorCode.ALREADY_EXISTS: "the name or request id is in use",
    ErrorCode.QUOTA_EXCEEDED: "a value larger than the agent's memory quota",
    ErrorCode.CONTEXT_TOO_LONG: "prompt plus max_new_tokens exceeds the model window (or one worker's KV budget)",
    ErrorCode.TIMEOUT: "a tool call ran past its timeout (the SDK also uses it for a missing reply)",
    ErrorCode.TOOL_ERROR: "the tool raised, crashed, or produced too much output",
    ErrorCode.CANCELLED: "the request was cancelled (llm.cancel, or its agent exited)",
    ErrorCode.UNAVAILABLE: "the service cannot serve now (kernel shutting down)",
    ErrorCode.SNAPSHOT_INVALID: "a snapshot failed its checksum or fingerprint check on restore",
    ErrorCode.WORKER_FAILED: "the worker process running the request died (no longer sent: its requests replay on another worker)",
    ErrorCode.REPLAY_DIVERGED: "a request replayed after its worker died produced tokens other than those it had already produced (never silently)",
    ErrorCode.INTERNAL: "a kernel bug; the kernel logged it and keeps serving",
}


def splice(doc: str) -> str:
    head, _, rest = doc.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return head + render() + tail.lstrip("\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--write", type=Path, help="splice the reference into this markdown file")
    args = p.parse_args(argv)
    if args.write:
        args.write.write_text(splice(args.write.read_text()))
    else:
        sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
