"""`aiosim gateway`: serve OpenAI's API over HTTP in front of a running kernel (docs/gateway.md).

Light imports only at parse time (the CLI builds every parser); the server's modules load on run.
"""

from __future__ import annotations

import argparse
import sys

DEFAULT_LISTEN = "127.0.0.1:8000"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from kernel.cli import add_client_flags

    p = sub.add_parser("gateway", help="OpenAI-compatible HTTP gateway to a running kernel (API key = an identity's secret)")
    add_client_flags(p)
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help="where to serve HTTP (default %(default)s; port 0 picks a free one, printed when ready)")
    p.add_argument("--die-with-parent", action="store_true", help=argparse.SUPPRESS)  # as `aiosim kernel --gateway`'s child
    p.set_defaults(func=run_gateway)


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"not HOST:PORT: {text!r} (e.g. 127.0.0.1:8000)")
    return host or "127.0.0.1", int(port)


def run_gateway(args: argparse.Namespace) -> int:
    import asyncio

    try:
        host, port = parse_listen(args.listen)
    except argparse.ArgumentTypeError as exc:
        print(f"aiosim gateway: {exc}", file=sys.stderr)
        return 2
    if args.die_with_parent:
        from kernel.lifeline import die_with_parent

        die_with_parent()
    client_kw = {"timeout_s": args.timeout_s, "server_key": args.server_key, "client_keys": args.client_keys}
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(serve(args.address, host, port, client_kw))


async def serve(address: str, host: str, port: int, client_kw: dict) -> int:
    """Serve until SIGINT/SIGTERM; then deregister every agent the gateway registered."""
    import asyncio
    import signal

    import uvicorn

    from agents.gateway.app import Gateway, build_app
    from agents.gateway.bridge import KernelBridge
    from agents.gateway.metrics import GatewayMetrics

    loop = asyncio.get_running_loop()
    bridge = KernelBridge(address, loop, **client_kw)
    bridge.start()
    app = build_app(Gateway(bridge, GatewayMetrics()))
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=5))
    for sig in (signal.SIGINT, signal.SIGTERM):  # uvicorn stops on them, then raises them again: already handled
        signal.signal(sig, lambda *_: None)
    announce = asyncio.ensure_future(_announce(server, address))
    try:
        await server.serve()
    finally:
        announce.cancel()
        bridge.close()
    return 0 if server.started else 1


async def _announce(server, address: str) -> None:
    import asyncio

    while not server.started:
        await asyncio.sleep(0.02)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    print(f"aiosim gateway: serving http://{host}:{port}/v1 for the kernel at {address}", flush=True)
