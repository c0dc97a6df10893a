"""Declarations of the service syscalls: mem.*, storage.*, tool.*, access.*, audit.*."""

from __future__ import annotations

from syscalls.names import MAX_NAME_LEN, NAME_PATTERN
from syscalls.schema import Field, Syscall

KEY = Field("key", "str", "entry key", required=True, min=1, max=256)
OWNER = Field("owner", "str|nil", "owning agent's name (default: the caller); others need a grant", max=MAX_NAME_LEN,
              pattern=NAME_PATTERN)
GRANTEE = Field("grantee", "str", "agent name", required=True, min=1, max=MAX_NAME_LEN, pattern=NAME_PATTERN)
QUERY = Field("query", "str", "keywords", required=True, min=1, max=1024)
LIMIT = Field("limit", "int", "at most this many results", default=10, min=1, max=1000)
VALUE = Field("value", "any", "any msgpack value", required=True)

MEM = (
    Syscall("mem.put", "Stores a value in the owner's short-term memory; over quota, least-recently-used entries move to storage.",
            (KEY, VALUE, OWNER), "{bytes: int, evicted: [str]}", ("PERMISSION_DENIED", "QUOTA_EXCEEDED"),
            {"key": "goal", "value": "plan a trip"}, {"bytes": 16, "evicted": []}),
    Syscall("mem.get", "Reads a memory entry (found transparently if it was evicted to storage).",
            (KEY, OWNER), "{value: any, was_evicted: bool}", ("NOT_FOUND", "PERMISSION_DENIED"),
            {"key": "goal"}, {"value": "plan a trip", "was_evicted": False}),
    Syscall("mem.list", "Lists memory keys, resident and evicted.",
            (OWNER,), "{entries: [{key, bytes, is_resident}], used_bytes, quota_bytes}", ("PERMISSION_DENIED",),
            {}, {"entries": [{"key": "goal", "bytes": 16, "is_resident": True}], "used_bytes": 16, "quota_bytes": 1048576}),
    Syscall("mem.search", "Keyword search over memory values (resident and evicted).",
            (QUERY, OWNER, LIMIT), "{hits: [{key, score}]}", ("PERMISSION_DENIED",),
            {"query": "trip"}, {"hits": [{"key": "goal", "score": 1.0}]}),
    Syscall("mem.delete", "Deletes a memory entry.",
            (KEY, OWNER), "{deleted: bool}", ("PERMISSION_DENIED",),
            {"key": "goal"}, {"deleted": True}),
)

STORAGE = (
    Syscall("storage.put", "Writes a new version of a key in the owner's persistent namespace.",
            (KEY, VALUE, OWNER), "{version: int}", ("PERMISSION_DENIED", "QUOTA_EXCEEDED"),
            {"key": "prefs", "value": {"genre": "jazz"}}, {"version": 1}),
    Syscall("storage.get", "Reads the latest (or a given) version of a key.",
            (KEY, Field("version", "int|nil", "a past version", min=1), OWNER),
            "{value: any, version: int}", ("NOT_FOUND", "PERMISSION_DENIED"),
            {"key": "prefs"}, {"value": {"genre": "jazz"}, "version": 1}),
    Syscall("storage.list", "Lists live keys with their latest version.",
            (Field("prefix", "str", "key prefix", default="", max=256), OWNER),
            "{keys: [{key, version, bytes}]}", ("PERMISSION_DENIED",),
            {"prefix": ""}, {"keys": [{"key": "prefs", "version": 1, "bytes": 12}]}),
    Syscall("storage.delete", "Deletes a key (recorded as a new tombstone version; rollback can undo it).",
            (KEY, OWNER), "{deleted: bool, version: int|nil}", ("PERMISSION_DENIED",),
            {"key": "prefs"}, {"deleted": True, "version": 2}),
    Syscall("storage.versions", "Lists every version of a key.",
            (KEY, OWNER), "{versions: [{version, time, bytes, is_deleted}]}", ("NOT_FOUND", "PERMISSION_DENIED"),
            {"key": "prefs"}, {"versions": [{"version": 1, "time": 1763730000.0, "bytes": 12, "is_deleted": False}]}),
    Syscall("storage.rollback", "Makes an old version current again, as a new version.",
            (KEY, Field("version", "int", "version to restore", required=True, min=1), OWNER),
            "{version: int}", ("NOT_FOUND", "PERMISSION_DENIED"),
            {"key": "prefs", "version": 1}, {"version": 3}),
    Syscall("storage.search", "Keyword search over the latest values of live keys.",
            (QUERY, OWNER, LIMIT), "{hits: [{key, score, snippet}]}", ("PERMISSION_DENIED",),
            {"query": "jazz"}, {"hits": [{"key": "prefs", "score": 1.0, "snippet": "genre: jazz"}]}),
)

TOOL = (
    Syscall("tool.list", "Lists registered tools with their argument schemas.",
            (), "{tools: [{name, doc, args: [{name, type, required, doc}]}]}", (),
            {}, {"tools": [{"name": "calculator", "doc": "arithmetic", "args": []}]}),
    Syscall("tool.call", "Runs a tool in the tool pool (a separate process) with a timeout and an output limit.",
            (Field("name", "str", "tool name", required=True, min=1, max=64),
             Field("args", "map", "the tool's arguments", default=None),
             Field("timeout_s", "float|nil", "per-call timeout (capped by the kernel's maximum)", min=0.001, max=600.0)),
            "{result: any}", ("NOT_FOUND", "TIMEOUT", "TOOL_ERROR", "INVALID_ARGUMENT"),
            {"name": "calculator", "args": {"expression": "2*(3+4)"}}, {"result": 14}),
)

ACCESS = (
    Syscall("access.grant", "Grants another agent (by name; it must have an identity) access to one of the caller's resources.",
            (GRANTEE,
             Field("resource", "str", "what to share", required=True, choices=("memory", "storage", "snapshots")),
             Field("mode", "str", "read, write, or readwrite", default="read", choices=("read", "write", "readwrite"))),
            "{grant_id: int}", ("NOT_FOUND",),
            {"grantee": "rec-1", "resource": "storage", "mode": "read"}, {"grant_id": 7}),
    Syscall("access.revoke", "Revokes the caller's grants to an agent on a resource.",
            (GRANTEE,
             Field("resource", "str", "resource", required=True, choices=("memory", "storage", "snapshots"))),
            "{revoked: int}", (),
            {"grantee": "rec-1", "resource": "storage"}, {"revoked": 1}),
    Syscall("access.list", "Lists grants the caller gave and received.",
            (), "{given: [grant], received: [grant]}", (),
            {}, {"given": [{"grant_id": 7, "owner": "rec-0", "grantee": "rec-1", "resource": "storage", "mode": "read"}], "received": []}),
    Syscall("audit.query", "Queries the append-only audit log (grants, revocations, denials, bad tokens and secrets, identities). An agent sees events that name it.",
            (Field("agent", "str|nil", "filter by agent name", max=64),
             Field("event", "str|nil", "filter by event type: grant, revoke, deny, bad_token, bad_secret, identity", max=32),
             Field("since", "float|nil", "unix time lower bound"),
             LIMIT),
            "{events: [{seq, time, event, agent, target, resource, detail}]}", (),
            {"event": "deny"}, {"events": []}),
)
