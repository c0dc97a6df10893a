"""The calculator tool: a recursive-descent arithmetic parser and evaluator (no eval).

Grammar (Python's precedence and associativity):
  expr  := term (('+' | '-') term)*
  term  := unary (('*' | '/' | '//' | '%') unary)*
  unary := ('+' | '-') unary | power
  power := atom ('**' unary)?          right-associative, binds tighter than unary on its left
  atom  := NUMBER | NAME | NAME '(' expr (',' expr)* ')' | '(' expr ')'
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import NoReturn

from kernel.services.tools.spec import ToolEnv, ToolSpec
from syscalls.errors import ErrorCode, SyscallError
from syscalls.schema import Field

Number = int | float
TOKEN_RE = re.compile(
    r"\s*(?:(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|([A-Za-z_]\w*)|(\*\*|//|[-+*/%(),]))"
)
MAX_DEPTH = 100
MAX_POW_BITS = 100_000

FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {  # name -> (fn, min, max args)
    "sqrt": (math.sqrt, 1, 1),
    "abs": (abs, 1, 1),
    "round": (round, 1, 2),
    "min": (lambda *a: min(a), 1, 64),
    "max": (lambda *a: max(a), 1, 64),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "log": (math.log, 1, 2),
    "exp": (math.exp, 1, 1),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
}
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


class CalcError(Exception):
    """A math error (division by zero, domain, overflow) -> TOOL_ERROR."""


def tokenize(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = TOKEN_RE.match(text, pos)
        if m is None or m.end() == pos:
            _syntax(f"unexpected character {text[pos:].lstrip()[:1]!r} at {pos}")
        tokens.append(m.group(m.lastindex))
        pos = m.end()
    return tokens


class Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0

    def parse(self) -> Number:
        if not self.tokens:
            _syntax("empty expression")
        value = self.expr()
        if self.pos != len(self.tokens):
            _syntax(f"unexpected {self.tokens[self.pos]!r}")
        return value

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            _syntax(f"expected {expected or 'a value'}, got {tok or 'end of input'!r}")
        self.pos += 1
        return tok

    def expr(self) -> Number:
        value = self.term()
        while self.peek() in ("+", "-"):
            value = apply(self.take(), value, self.term())
        return value

    def term(self) -> Number:
        value = self.unary()
        while self.peek() in ("*", "/", "//", "%"):
            value = apply(self.take(), value, self.unary())
        return value

    def unary(self) -> Number:
        if self.peek() in ("+", "-"):
            sign = self.take()
            self._enter()
            value = self.unary()
            self.depth -= 1
            return -value if sign == "-" else +value
        return self.power()

    def power(self) -> Number:
        base = self.atom()
        if self.peek() == "**":
            self.take()
            self._enter()
            exponent = self.unary()
            self.depth -= 1
            return apply("**", base, exponent)
        return base

    def atom(self) -> Number:
        tok = self.take()
        if tok == "(":
            self._enter()
            value = self.expr()
            self.take(")")
            self.depth -= 1
            return value
        if tok[0].isdigit() or tok[0] == ".":
            return float(tok) if any(c in tok for c in ".eE") else int(tok)
        if tok[0].isalpha() or tok[0] == "_":
            return self.call(tok) if self.peek() == "(" else constant(tok)
        _syntax(f"unexpected {tok!r}")

    def call(self, name: str) -> Number:
        if name not in FUNCTIONS:
            _syntax(f"unknown function {name!r}")
        self.take("(")
        self._enter()
        args = [self.expr()]
        while self.peek() == ",":
            self.take()
            args.append(self.expr())
        self.take(")")
        self.depth -= 1
        fn, lo, hi = FUNCTIONS[name]
        if not lo <= len(args) <= hi:
            _syntax(f"{name}() takes {lo}..{hi} arguments, got {len(args)}")
        return _guard(lambda: fn(*args))

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            _syntax(f"nested deeper than {MAX_DEPTH}")


def constant(name: str) -> float:
    if name not in CONSTANTS:
        _syntax(f"unknown name {name!r}")
    return CONSTANTS[name]


def apply(op: str, a: Number, b: Number) -> Number:
    if op == "**":
        _check_power(a, b)
    ops: dict[str, Callable[[Number, Number], Number]] = {
        "+": lambda x, y: x + y,
        "-": lambda x, y: x - y,
        "*": lambda x, y: x * y,
        "/": lambda x, y: x / y,
        "//": lambda x, y: x // y,
        "%": lambda x, y: x % y,
        "**": lambda x, y: x**y,
    }
    return _guard(lambda: ops[op](a, b))


def _check_power(a: Number, b: Number) -> None:
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
        if b * a.bit_length() > MAX_POW_BITS:
            raise CalcError(f"result of {a} ** {b} is too large")
    if isinstance(a, (int, float)) and a == 0 and isinstance(b, (int, float)) and b < 0:
        raise CalcError("zero to a negative power")


def _guard(fn: Callable[[], Number]) -> Number:
    try:
        value = fn()
    except ZeroDivisionError:
        raise CalcError("division by zero") from None
    except (OverflowError, ValueError, TypeError) as exc:
        raise CalcError(str(exc)) from None
    if isinstance(value, complex):
        raise CalcError("complex result")
    return value


def _syntax(message: str) -> NoReturn:
    raise SyscallError(ErrorCode.INVALID_ARGUMENT, f"field 'expression': {message}")


def evaluate(expression: str) -> Number:
    """Value of an arithmetic expression; INVALID_ARGUMENT on junk, CalcError on math errors."""
    return Parser(expression).parse()


def to_wire(value: Number) -> Number:
    """msgpack carries ints in [-2**63, 2**64); larger ones are returned as floats."""
    if isinstance(value, int) and not -(1 << 63) <= value < (1 << 64):
        return _guard(lambda: float(value))
    return value


def _run(args: dict, env: ToolEnv) -> Number:
    return to_wire(evaluate(args["expression"]))


TOOL = ToolSpec(
    "calculator",
    "Evaluates arithmetic: + - * / // % ** parentheses, unary minus, ints and floats, "
    "functions " + ", ".join(FUNCTIONS) + ", constants pi e tau.",
    (Field("expression", "str", "e.g. '2*(3+4) - sqrt(16)'", required=True, min=1, max=2000),),
    _run,
)
