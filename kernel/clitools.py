"""`aiosim ps` and `aiosim call`: small clients for users debugging a kernel."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agents import keyring
from agents.sdk import Client, KernelError


def _connect_error(args: argparse.Namespace, exc: KernelError) -> int:
    print(f"aiosim: no answer from a kernel at {args.address} ({exc.code}: {exc.message}). "
          "Start one with `aiosim kernel` or pass --address.", file=sys.stderr)
    return 2


def ps(args: argparse.Namespace) -> int:
    client = Client(args.address, timeout_s=args.timeout_s, server_key=args.server_key, client_keys=args.client_keys)
    try:
        agents = client.proc_ps(all=args.all)["agents"]
    except KernelError as exc:
        return _connect_error(args, exc)
    finally:
        client.close()
    if args.json:
        print(json.dumps(agents, indent=2))
        return 0
    header = f"{'ID':>4}  {'NAME':<20} {'PID':>7}  {'STATE':<8} {'SYSCALLS':>8} {'ACTIVE':>6} {'UPTIME_S':>9}"
    print(header)
    for a in agents:
        print(f"{a['agent_id']:>4}  {a['name'][:20]:<20} {a['pid'] or '-':>7}  {a['state']:<8} "
              f"{a['num_syscalls']:>8} {a['num_active_requests']:>6} {a['uptime_s']:>9.1f}")
    return 0


def call(args: argparse.Namespace) -> int:
    try:
        call_args = json.loads(args.json_args)
    except json.JSONDecodeError as exc:
        print(f"aiosim call: JSON_ARGS is not valid JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(call_args, dict):
        print("aiosim call: JSON_ARGS must be a JSON object, e.g. '{\"key\": \"x\"}'", file=sys.stderr)
        return 2
    if args.trace is not None and args.syscall != "sched.stats":
        print("aiosim call: --trace is for sched.stats only", file=sys.stderr)
        return 2
    needs_register = args.token is None and args.syscall not in ("proc.register", "proc.ping", "proc.ps", "sched.stats")
    if args.syscall == "proc.register":
        _fill_secret(args, call_args)
    try:
        client = Client(args.address, name=args.agent if needs_register else None, token=args.token,
                        timeout_s=args.timeout_s, secret_file=args.secret_file, server_key=args.server_key,
                        client_keys=args.client_keys)
    except KernelError as exc:
        return _connect_error(args, exc) if exc.code == "TIMEOUT" else _print_error(exc)
    on_stream = (lambda chunk: print(json.dumps({"stream": chunk}), flush=True)) if args.stream else None
    if args.stream:
        call_args.setdefault("stream", True)
    try:
        result = client.call(args.syscall, _on_stream=on_stream, **call_args)
    except KernelError as exc:
        return _print_error(exc)
    finally:
        client.close()  # deregisters only an agent this command registered itself
    if args.trace is not None:
        from kernel.trace import write_trace

        print(f"wrote {args.trace} ({write_trace(result, args.trace)} trace events)", file=sys.stderr)
    if args.syscall == "proc.register" and isinstance(result, dict) and result.get("secret"):
        keyring.keep(args.address, call_args["name"], result["secret"], _secret_path(args, call_args["name"]))
    print(json.dumps({"ok": True, "result": result}, indent=2, default=_jsonable))
    return 0


def _secret_path(args: argparse.Namespace, name: str) -> Path | None:
    return Path(args.secret_file) if args.secret_file else keyring.default_secret_file(args.address, name)


def _fill_secret(args: argparse.Namespace, call_args: dict) -> None:
    """A raw proc.register presents the name's kept secret unless the caller gave one."""
    name = call_args.get("name")
    if isinstance(name, str) and "secret" not in call_args:
        secret = keyring.load(args.address, name, _secret_path(args, name))
        if secret is not None:
            call_args["secret"] = secret


def _print_error(exc: KernelError) -> int:
    print(json.dumps({"ok": False, "error": {"code": exc.code, "message": exc.message}}, indent=2))
    return 1


def _jsonable(obj: object) -> object:
    if isinstance(obj, bytes):
        return obj.hex()
    return str(obj)
