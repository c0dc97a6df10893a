"""Everything that must derive from the one syscall list does."""

from __future__ import annotations

import inspect
from pathlib import Path

from agents.sdk import Client
from kernel.dispatch import build_table
from syscalls.docgen import BEGIN, END, render
from syscalls.table import SYSCALLS, method_name

ROOT = Path(__file__).resolve().parents[2]


def test_every_syscall_has_a_handler():
    table = build_table()
    assert set(table) == set(SYSCALLS)


def test_sdk_has_a_typed_method_per_syscall():
    for name, spec in SYSCALLS.items():
        method = getattr(Client, method_name(name))
        params = inspect.signature(method).parameters
        assert [p for p in params if p != "self"] == [f.name for f in spec.args]
        assert spec.doc in method.__doc__


def test_protocol_doc_reference_is_current():
    doc = (ROOT / "docs" / "protocol.md").read_text()
    assert BEGIN in doc and END in doc
    generated = doc[doc.index(BEGIN): doc.index(END) + len(END)] + "\n"
    assert generated == render(), "run: python -m syscalls.docgen --write docs/protocol.md"
    for name in SYSCALLS:
        assert f"### `{name}`" in doc


def test_protocol_doc_states_every_overhead_field():
    """sched.stats `overhead`: every key the kernel sends is defined in section 4."""
    from kernel.llm.overhead import Overhead

    doc = (ROOT / "docs" / "protocol.md").read_text()
    section = doc[doc.index("`overhead` measures"):doc.index("With `logprobs: true`")]
    missing = [key for key in Overhead().to_wire() if f"`{key}`" not in section]
    assert not missing, f"docs/protocol.md section 4 does not define overhead fields {missing}"


def test_agents_and_gateway_import_no_torch():
    import subprocess
    import sys

    code = ("import sys, agents.sdk, agents.runtime, kernel.cli, agents.gateway.app, agents.gateway.cli; "
            "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_top_level_is_the_fixed_layout():
    """The brief fixes the top level: every Python package or module there is one of these, and
    setup.cfg installs exactly the non-test ones."""
    fixed = {"kernel", "agents", "syscalls", "workers", "benchmarks", "tests"}
    found = {p.stem for p in ROOT.iterdir() if (p / "__init__.py").exists() or p.suffix == ".py"}
    assert found <= fixed, f"top-level packages outside the fixed layout: {sorted(found - fixed)}"
    cfg = (ROOT / "setup.cfg").read_text()
    include = cfg[cfg.index("[options.packages.find]"):].split("\n\n")[0]
    listed = {line.strip().removesuffix(".*") for line in include.splitlines()[2:] if line.strip()}
    assert listed == fixed - {"tests"}
