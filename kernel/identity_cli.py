"""`aiosim agent add|list|rm --state-dir DIR`: the operator manages identities of a running kernel.

Acts as the kernel's operator with the token in DIR/operator.token (mode 0600: whoever can read
the state dir is the operator). `add` prints the new secret as the last word of its last line and
keeps it in DIR/secrets/NAME.secret (mode 0600), where `aiosim agent run` and the SDK find it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agents import keyring
from agents.sdk import Client, KernelError
from kernel.config import default_state_dir


def add_identity_parsers(sub: argparse._SubParsersAction) -> None:
    for cmd, what in (("add", "create an identity and print its secret"), ("list", "list identities"),
                      ("rm", "delete an identity with its storage, memory and grants")):
        p = sub.add_parser(cmd, help=f"{what} (operator: needs the state dir)")
        if cmd != "list":
            p.add_argument("name", help="agent name")
        p.add_argument("--state-dir", type=Path, default=None, help="the kernel's state dir (default ./state or $AIOSIM_STATE)")
        p.add_argument("--address", default="", help="kernel address (default ipc://STATE_DIR/kernel.sock)")
        p.add_argument("--timeout-s", type=float, default=30.0, help="reply timeout")
        p.set_defaults(func=run_identity_command)


def run_identity_command(args: argparse.Namespace) -> int:
    state = (args.state_dir or default_state_dir()).resolve()
    token_file = state / "operator.token"
    if not token_file.is_file():
        print(f"aiosim agent {args.agent_cmd}: no {token_file}: is a kernel running with --state-dir {state}?", file=sys.stderr)
        return 2
    address = args.address or f"ipc://{state / 'kernel.sock'}"
    client = Client(address, token=token_file.read_text().strip(), timeout_s=args.timeout_s)
    try:
        return _run(client, args, state)
    except KernelError as exc:
        print(f"aiosim agent {args.agent_cmd}: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        client.close()


def _run(client: Client, args: argparse.Namespace, state: Path) -> int:
    if args.agent_cmd == "add":
        secret = client.identity_add(name=args.name)["secret"]
        path = state / "secrets" / f"{args.name}.secret"
        keyring.keep(client.address, args.name, secret, path)
        print(f"identity {args.name} created; secret kept in {path} (mode 0600)")
        print(f"secret: {secret}")
    elif args.agent_cmd == "rm":
        removed = client.identity_remove(name=args.name)["removed"]
        print(f"identity {args.name} {'removed' if removed else 'not found'}")
        return 0 if removed else 1
    else:
        print(f"{'NAME':<40} {'LIVE':<5} CREATED")
        for row in client.identity_list()["identities"]:
            print(f"{row['name']:<40} {'yes' if row['is_live'] else 'no':<5} {row['created']:.0f}")
    return 0
