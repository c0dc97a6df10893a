"""The seeded workload of `aiosim bench programs`: agent programs that are chains of calls.

Pure (stdlib only). A program arrives (Poisson, `rate_per_s` programs/s), runs on client
bench-<agent> (agents drawn uniformly) and makes its calls one after another, each as soon as
the previous one is answered (no think time). Its number of calls is bounded Pareto on
[min_calls, max_calls] and each call's output length bounded Pareto on [min_tokens,
max_tokens], both rounded (shape alpha 1: most programs short, a few long). Every call carries
program_id p<index>, so plas ranks it by its own program's service; fair sees only the agent.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from benchmarks.sched_workload import bounded_pareto, percentile, row_label


@dataclass(slots=True, frozen=True)
class ProgramSpec:
    num_programs: int
    num_agents: int
    seed: int
    min_calls: int = 1
    max_calls: int = 16
    min_tokens: int = 8
    max_tokens: int = 256
    alpha: float = 1.0
    num_priorities: int = 4


@dataclass(slots=True, frozen=True)
class Program:
    index: int
    agent: int  # client bench-<agent>
    arrival_s: float  # offset of its first call from the start of the run
    call_tokens: tuple[int, ...]  # max_new_tokens of each call, in order
    priority: int  # used by the priority policy only: agent % num_priorities

    @property
    def program_id(self) -> str:
        return f"p{self.index}"

    def label(self, step: int) -> str:
        """request_id label of call `step`; the kernel's rid is bench-<agent>/<label>."""
        return f"p{self.index}.{step}"


def _draw(rng: random.Random, low: int, high: int, alpha: float) -> int:
    return min(high, max(low, round(bounded_pareto(rng, low, high, alpha))))


def draw_programs(spec: ProgramSpec) -> list[tuple[int, ...]]:
    """Each program's call lengths, seeded; independent of the arrival rate."""
    rng = random.Random(f"programs-{spec.seed}")
    out = []
    for _ in range(spec.num_programs):
        num_calls = _draw(rng, spec.min_calls, spec.max_calls, spec.alpha)
        out.append(tuple(_draw(rng, spec.min_tokens, spec.max_tokens, spec.alpha) for _ in range(num_calls)))
    return out


def make_programs(spec: ProgramSpec, rate_per_s: float) -> list[Program]:
    rng = random.Random(f"program-arrivals-{spec.seed}")
    t, programs = 0.0, []
    for i, calls in enumerate(draw_programs(spec)):
        if i:
            t += rng.expovariate(1.0) / rate_per_s
        agent = rng.randrange(spec.num_agents)
        programs.append(Program(i, agent, t, calls, agent % spec.num_priorities))
    return programs


def mean_program_tokens(spec: ProgramSpec) -> float:
    programs = draw_programs(spec)
    return sum(sum(p) for p in programs) / len(programs)


def program_turnarounds(rows: list[dict], programs: list[Program]) -> dict[int, float]:
    """Per program whose calls all finished: first call's arrival to last call's finish, from
    sched.stats rows (rid bench-<agent>/p<index>.<step>)."""
    by_label = {row_label(r): r for r in rows}
    out = {}
    for p in programs:
        calls = [by_label.get(p.label(j)) for j in range(len(p.call_tokens))]
        if all(c is not None and c.get("state") == "finished" for c in calls):
            out[p.index] = calls[-1]["finish"] - calls[0]["arrival"]
    return out


def summarize_programs(turnaround: dict[int, float], programs: list[Program]) -> dict:
    values = sorted(turnaround.values())
    short = sorted(t for i, t in turnaround.items() if len(programs[i].call_tokens) == 1)
    return {
        "num_programs": len(values),
        "num_failed": len(programs) - len(values),
        "mean_program_turnaround_s": sum(values) / len(values) if values else None,
        "p99_program_turnaround_s": percentile(values, 0.99) if values else None,
        "median_program_turnaround_s": percentile(values, 0.5) if values else None,
        "mean_one_call_program_turnaround_s": sum(short) / len(short) if short else None,
    }


def describe_programs(spec: ProgramSpec, programs: list[Program], rate_per_s: float) -> dict:
    calls = sorted(len(p.call_tokens) for p in programs)
    tokens = sorted(sum(p.call_tokens) for p in programs)
    return {
        "num_programs": spec.num_programs, "num_agents": spec.num_agents, "seed": spec.seed,
        "calls_law": f"bounded_pareto[{spec.min_calls},{spec.max_calls}] alpha {spec.alpha}",
        "tokens_law": f"bounded_pareto[{spec.min_tokens},{spec.max_tokens}] alpha {spec.alpha}",
        "arrival_rate_per_s": rate_per_s, "duration_s": programs[-1].arrival_s if programs else 0.0,
        "num_calls": sum(calls), "median_calls": percentile(calls, 0.5), "max_calls": calls[-1] if calls else 0,
        "mean_program_tokens": sum(tokens) / len(tokens) if tokens else 0.0,
        "p99_program_tokens": percentile(tokens, 0.99),
    }
