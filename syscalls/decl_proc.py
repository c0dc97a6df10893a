"""Declarations of the proc.* and sched.* syscalls (process table and kernel introspection)."""

from __future__ import annotations

from syscalls.names import MAX_NAME_LEN, NAME_PATTERN
from syscalls.schema import Field, Syscall

NAME = Field("name", "str", "agent name, unique among live agents (letters, digits, '.', '_', '-'; no '/')",
             required=True, min=1, max=MAX_NAME_LEN, pattern=NAME_PATTERN)

PROC = (
    Syscall(
        name="proc.register",
        doc="Registers the caller as an agent (the handshake); returns its id and the secret token that every later call must carry.",
        args=(
            NAME,
            Field("pid", "int|nil", "OS process id of the agent (the kernel watches it and reaps the agent when it dies)", min=0),
            Field("meta", "map|nil", "free-form metadata shown by proc.ps", max=64),
        ),
        result="{agent_id: int, token: str, protocol_version: int, kernel_pid: int, max_message_bytes: int}",
        errors=("ALREADY_EXISTS",),
        example_args={"name": "math-0", "pid": 4242},
        example_result={"agent_id": 1, "token": "9f2c...", "protocol_version": 2, "kernel_pid": 4100, "max_message_bytes": 1048576},
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
        args=(Field("agent", "str|nil", "only this agent's requests", max=64),),
        result=("{policy: str, config: map, workers: [map], overhead: map, requests: [timeline: {rid, agent, state, arrival, "
                "first_scheduled, first_token, finish, waiting_s, queued_s, turnaround_s, ttft_s, preemptions, num_slices, "
                "num_output_tokens, output_tokens, slices: [[worker_id, start_s, end_s, num_tokens]], preemption_s, "
                "snapshot_durations_s, restore_durations_s, ...} (section 4)], agents: {name: {mean_waiting_s, mean_queued_s, "
                "mean_turnaround_s, mean_ttft_s, mean_preemptions, mean_num_slices, num_requests, output_tokens}}}"),
        example_args={},
        example_result={"policy": "rr", "config": {"quantum": 8}, "workers": [], "requests": [], "agents": {}},
        needs_token=False,
    ),
)
