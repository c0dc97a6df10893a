"""Declarations of the proc.* and sched.* syscalls (process table and kernel introspection)."""

from __future__ import annotations

from syscalls.names import MAX_NAME_LEN, NAME_PATTERN
from syscalls.schema import Field, Syscall

NAME = Field("name", "str", "agent name, unique among live agents (letters, digits, '.', '_', '-'; no '/')",
             required=True, min=1, max=MAX_NAME_LEN, pattern=NAME_PATTERN)

PROC = (
    Syscall(
        name="proc.register",
        doc=("Registers the caller as an agent (the handshake); returns its id and the session token that every later "
             "call must carry. The first registration of a name creates its identity and returns its secret, once; "
             "later registrations of that name must present it."),
        args=(
            NAME,
            Field("pid", "int|nil", "OS process id of the agent (the kernel watches it and reaps the agent when it dies)", min=0),
            Field("meta", "map|nil", "free-form metadata shown by proc.ps", max=64),
            Field("secret", "str|nil", "the name's identity secret (required once the name has an identity)", max=128),
        ),
        result=("{agent_id: int, token: str, secret: str|nil (the new identity's secret, only on the name's first "
                "registration), protocol_version: int, kernel_pid: int, max_message_bytes: int}"),
        errors=("ALREADY_EXISTS", "UNAUTHENTICATED"),
        example_args={"name": "math-0", "pid": 4242},
        example_result={"agent_id": 1, "token": "1.9f2c...", "secret": "5be1...", "protocol_version": 2, "kernel_pid": 4100, "max_message_bytes": 1048576},
        needs_token=False,
    ),
    Syscall(
        name="proc.exit",
        doc="Deregisters the caller: cancels its requests, frees its memory and snapshots. The token is invalid afterwards.",
        args=(Field("code", "int", "exit status, recorded in the process table", default=0, min=-255, max=255),),
        result="{cancelled_requests: int}",
        example_args={"code": 0},
        example_result={"cancelled_requests": 0},
    ),
    Syscall(
        name="proc.ps",
        doc="Lists registered agents (live ones, and with all=true also exited ones).",
        args=(Field("all", "bool", "include exited agents", default=False),),
        result="{agents: [{agent_id, name, pid, state: 'running'|'exited'|'killed', num_syscalls, uptime_s, num_active_requests, exit_code, meta}]}",
        example_args={},
        example_result={"agents": [{"agent_id": 1, "name": "math-0", "pid": 4242, "state": "running", "num_syscalls": 12, "uptime_s": 3.2, "num_active_requests": 1, "exit_code": None}]},
        needs_token=False,
    ),
    Syscall(
        name="proc.ping",
        doc="Liveness check; echoes the payload.",
        args=(Field("payload", "any", "echoed back unchanged", default=None),),
        result="{pong: true, payload: any, kernel_pid: int, time: float}",
        example_args={"payload": "hi"},
        example_result={"pong": True, "payload": "hi", "kernel_pid": 4100, "time": 1763730000.5},
        needs_token=False,
    ),
    Syscall(
        name="sched.stats",
        doc="Scheduler state and per-request timelines (all agents' requests, finished and active), plus per-agent means.",
        args=(Field("agent", "str|nil", "only this agent's requests", max=64),
              Field("requests", "bool", "include the per-request timelines (false: only totals and per-agent means, "
                    "cheap with thousands of requests)", default=True)),
        result=("{policy: str, config: map, workers: [map], overhead: map, journal: {requests, tokens, replies}|nil, "
                "kv: [{worker_id, used_bytes, budget_bytes}], totals: {finished, failed, cancelled, output_tokens, active}, "
                "requests: [timeline: {rid, agent, state, arrival, "
                "first_scheduled, first_token, finish, waiting_s, queued_s, turnaround_s, ttft_s, preemptions, num_slices, "
                "num_output_tokens, output_tokens, slices: [[worker_id, start_s, end_s, num_tokens]], preemption_s, "
                "snapshot_durations_s, restore_durations_s, ...} (section 4)], agents: {name: {mean_waiting_s, mean_queued_s, "
                "mean_turnaround_s, mean_ttft_s, mean_preemptions, mean_num_slices, num_requests, output_tokens}}}"),
        example_args={},
        example_result={"policy": "rr", "config": {"quantum": 8}, "workers": [], "requests": [], "agents": {}},
        needs_token=False,
    ),
)

IDENTITY = (
    Syscall(
        name="identity.add",
        doc="Operator only: creates the identity of a name and returns its secret (the only time it is shown).",
        args=(Field("name", "str", "agent name", required=True, min=1, max=MAX_NAME_LEN, pattern=NAME_PATTERN),),
        result="{name: str, secret: str}",
        errors=("ALREADY_EXISTS", "PERMISSION_DENIED"),
        example_args={"name": "alice"},
        example_result={"name": "alice", "secret": "5be1..."},
    ),
    Syscall(
        name="identity.list",
        doc="Operator only: lists identities (names, creation times, whether an agent runs under the name).",
        args=(),
        result="{identities: [{name, created, is_live}]}",
        errors=("PERMISSION_DENIED",),
        example_args={},
        example_result={"identities": [{"name": "alice", "created": 1763730000.0, "is_live": False}]},
    ),
    Syscall(
        name="identity.whoami",
        doc=("The name of the identity whose secret this is, for clients that are handed only a secret (the gateway "
             "takes it as an API key, then registers under that name with it). A secret that belongs to no identity is "
             "UNAUTHENTICATED and audited as bad_secret (the secret is never logged)."),
        args=(Field("secret", "str", "an identity secret", required=True, min=1, max=128),),
        result="{name: str}",
        errors=("UNAUTHENTICATED",),
        example_args={"secret": "5be1..."},
        example_result={"name": "alice"},
        needs_token=False,
    ),
    Syscall(
        name="identity.remove",
        doc=("Operator only: deletes an identity and everything keyed by its name (its live agent is retired; its "
             "storage, memory and every grant given or received are deleted), so a later owner of the name starts empty."),
        args=(Field("name", "str", "agent name", required=True, min=1, max=MAX_NAME_LEN, pattern=NAME_PATTERN),),
        result="{removed: bool}",
        errors=("PERMISSION_DENIED",),
        example_args={"name": "alice"},
        example_result={"removed": True},
    ),
)
