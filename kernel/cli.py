"""`aiosim`: the one command. Subcommands import their modules lazily so agents start fast."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kernel.flags import add_kernel_flags, default_address

EPILOG = """examples:
  aiosim kernel --state-dir state --scheduler rr --quantum 8
  aiosim agent run hello --address ipc://state/kernel.sock
  aiosim agent add alice --state-dir state      # operator: a new identity; prints its secret last
  aiosim ps --address ipc://state/kernel.sock
  aiosim top --address ipc://state/kernel.sock      # live view; q quits
  aiosim call --address ipc://state/kernel.sock proc.ping '{"payload": 1}'
  aiosim gateway --address ipc://state/kernel.sock --listen 127.0.0.1:8000   # OpenAI API; key = a secret
  aiosim launch --agents math:2,narrative:1,rec:1 --scheduler rr --json out/run.json
  aiosim bench switch --json out/switch.json
"""


LIGHT_COMMANDS = ("kernel", "agent", "ps", "call", "keygen", "gateway", "top")


def cmd_kernel(args: argparse.Namespace) -> int:
    from kernel.flags import config_from_args
    from kernel.main import run_kernel

    return run_kernel(config_from_args(args))


def cmd_agent_run(args: argparse.Namespace) -> int:
    from agents.runtime import run_agent

    return run_agent(args)


def cmd_agent_programs(args: argparse.Namespace) -> int:
    import pkgutil

    import agents.examples as ex

    for mod in pkgutil.iter_modules(ex.__path__):
        if not mod.name.startswith("_"):  # helpers, not programs
            print(mod.name)
    return 0


def cmd_ps(args: argparse.Namespace) -> int:
    from kernel.clitools import ps

    return ps(args)


def cmd_call(args: argparse.Namespace) -> int:
    from kernel.clitools import call

    return call(args)


def cmd_top(args: argparse.Namespace) -> int:
    from kernel.top import run_top

    return run_top(args)


def add_client_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", default=None, help="kernel address (default ipc://./state/kernel.sock or $AIOSIM_ADDRESS)")
    p.add_argument("--timeout-s", type=float, default=30.0, help="reply timeout")
    add_curve_flags(p)


def add_curve_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server-key", default=None, help="tcp:// only: the kernel's CURVE public key, or a file with it "
                   "(STATE/curve/kernel.key; default $AIOSIM_SERVER_KEY)")
    p.add_argument("--client-keys", default=None, help="tcp:// only: this client's key pair file from `aiosim keygen` "
                   "(needed when the kernel has --curve-allow; default $AIOSIM_CLIENT_KEYS, else a fresh pair)")


def cmd_keygen(args: argparse.Namespace) -> int:
    from agents.curve import write_client_keys

    public = write_client_keys(args.file)
    print(f"client key pair written to {args.file} (mode 0600); add its public key to the kernel's --curve-allow file:")
    print(f"public key: {public.decode()}")
    return 0


def build_parser(is_light: bool = False) -> argparse.ArgumentParser:
    """The full parser; with is_light, launch and bench (heavier modules) are left out."""
    p = argparse.ArgumentParser(prog="aiosim", description="aiosim: a multiprocess LLM agent operating system simulator.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    k = sub.add_parser("kernel", help="run the kernel process (workers, scheduler, services)")
    add_kernel_flags(k)
    k.set_defaults(func=cmd_kernel)

    a = sub.add_parser("agent", help="run agents, list example programs, manage identities (add, list, rm)").add_subparsers(dest="agent_cmd", required=True)
    from agents.runtime import add_arguments

    run = a.add_parser("run", help="run one agent as its own process")
    add_arguments(run)
    run.set_defaults(func=cmd_agent_run)
    a.add_parser("programs", help="list example agent programs").set_defaults(func=cmd_agent_programs)
    from kernel.identity_cli import add_identity_parsers

    add_identity_parsers(a)

    ps = sub.add_parser("ps", help="list registered agents")
    add_client_flags(ps)
    ps.add_argument("--all", action="store_true", help="include exited agents")
    ps.add_argument("--json", action="store_true", help="print JSON")
    ps.set_defaults(func=cmd_ps)

    c = sub.add_parser("call", help="make any syscall and print the reply as JSON (exit 1 on an error reply)")
    add_client_flags(c)
    c.add_argument("--agent", default="cli", help="register under this name (ignored with --token)")
    c.add_argument("--token", help="reuse an existing agent's token instead of registering")
    c.add_argument("--secret-file", help="the agent's identity secret file (default STATE/secrets/NAME.secret for an "
                   "ipc://STATE/kernel.sock address); created, mode 0600, on the name's first registration")
    c.add_argument("--stream", action="store_true", help="print stream messages as they come")
    c.add_argument("--trace", type=Path, metavar="PATH", help="sched.stats only: also write its timelines as a Chrome "
                   "trace-event JSON (open it in https://ui.perfetto.dev or chrome://tracing)")
    c.add_argument("syscall", metavar="CALL", help="e.g. proc.ping, llm.generate, mem.put")
    c.add_argument("json_args", metavar="JSON_ARGS", nargs="?", default="{}", help="arguments as a JSON object")
    c.set_defaults(func=cmd_call)

    top = sub.add_parser("top", help="live view of a running kernel: agents, queue by policy rank, batches, KV, tokens/s")
    add_client_flags(top)
    top.add_argument("--interval-s", type=float, default=1.0, help="refresh period (default %(default)s)")
    top.set_defaults(func=cmd_top)

    kg = sub.add_parser("keygen", help="write a CURVE client key pair file (for kernels on tcp:// with --curve-allow)")
    kg.add_argument("file", type=Path, help="where to write the key pair (mode 0600)")
    kg.set_defaults(func=cmd_keygen)

    _add_module(sub, "agents.gateway.cli")
    if is_light:
        return p
    _add_module(sub, "agents.launch.cli")
    b = sub.add_parser("bench", help="benchmarks (results in JSON)").add_subparsers(dest="bench", required=True)
    for name in ("switch", "sched", "programs", "table5", "engine", "chaos", "scale", "gateway"):
        _add_module(b, f"benchmarks.{name}")
    return p


def _add_module(sub: argparse._SubParsersAction, module: str) -> None:
    """Subcommands whose parser lives with their code (`add_parser(sub)`; light imports only)."""
    import importlib

    importlib.import_module(module).add_parser(sub)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    is_light = bool(argv) and argv[0] in LIGHT_COMMANDS
    args = build_parser(is_light).parse_args(argv)
    if getattr(args, "address", "missing") is None:
        args.address = default_address()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except ValueError as exc:
        from agents.curve import MissingServerKey

        if not isinstance(exc, MissingServerKey):
            raise
        print(f"aiosim: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
