"""Hypothesis state machines: random arrivals, lengths (heavy-tailed), beams, priorities,
cancels, worker deaths, 1-3 workers, every policy, with/without KV budget, swap/recompute.

Checked after every step (Harness.check): Scheduler.check_integrity(); the simulated workers
and LMDB agree with the scheduler (a swapped request has exactly one live snapshot, a resident
one is on exactly its worker, nothing leaks); the simulated workers never exceed the KV budget.
Checked on every plan: a worker is never idle while a request it may run is runnable; the
rr/mlfq/fair bounds of the policies' docstrings; srpt, las, plas and priority never serve a
request that comes after one they skip (by the harness's own count of hints, service and
deadlines; a continuation as its members will be after the running slice); a lookahead plan is
one the policy would make; a revoked continuation is one it would no longer make, and the
worker either drops it unstarted or runs it (the revoke came late). At teardown everything is drained: every request completes exactly once, with exactly max_new_tokens or at its scripted stop.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from kernel.scheduler import POLICIES, SchedConfig
from tests.scheduler.harness import Harness

LENGTHS = st.one_of(st.integers(1, 8), st.integers(9, 40), st.sampled_from([90, 180]))
BUDGET_TOKENS = st.sampled_from([None, 120, 200, 400])


class SchedulerMachine(RuleBasedStateMachine):
    policy_name = "rr"

    @initialize(
        num_workers=st.integers(1, 3),
        max_batch=st.integers(1, 4),
        quantum=st.integers(1, 6),
        budget_tokens=BUDGET_TOKENS,
        preempt=st.sampled_from(["swap", "recompute"]),
        fifo_slice_steps=st.integers(1, 8),
        checkpoint_every=st.sampled_from([0, 0, 1, 3, 10]),
    )
    def setup(self, num_workers, max_batch, quantum, budget_tokens, preempt, fifo_slice_steps, checkpoint_every):
        config = SchedConfig(
            policy=self.policy_name,
            quantum=quantum,
            max_batch=max_batch,
            kv_budget_bytes=None if budget_tokens is None else budget_tokens * 2,
            preempt=preempt,
            fifo_slice_steps=fifo_slice_steps,
            checkpoint_every=checkpoint_every,
            mlfq_boost_s=0.02,
            fair_weights={"c": 2.0},
            priority_aging_s=0.01,
        )
        self.h = Harness(config, num_workers)

    @rule(
        agent=st.sampled_from(["a", "b", "c"]),
        prompt_len=LENGTHS,
        max_new=LENGTHS,
        beams=st.sampled_from([1, 1, 2, 3]),
        priority=st.integers(0, 3),
        stop=st.one_of(st.none(), st.integers(1, 30)),
        hint=st.one_of(st.none(), st.integers(1, 60)),
        program=st.sampled_from([None, "p", "q"]),
    )
    def submit(self, agent, prompt_len, max_new, beams, priority, stop, hint, program):
        self.h.submit(agent, prompt_len, max_new, beams, priority, stop, hint, program)

    @rule(data=st.data())
    def dispatch(self, data):
        self.h.dispatch(data.draw(st.sampled_from(sorted(self.h.sim.workers))))

    @rule(data=st.data(), is_revoke_first=st.booleans())
    def complete(self, data, is_revoke_first):
        self.h.complete(data.draw(st.sampled_from(sorted(self.h.sim.workers))), is_revoke_first)

    @rule(data=st.data())
    def run_all_once(self, data):
        for wid in sorted(self.h.sim.workers):
            self.h.complete(wid) or self.h.dispatch(wid)

    @precondition(lambda self: self.h.num_rids > 0)
    @rule(data=st.data())
    def cancel(self, data):
        self.h.cancel(data.draw(st.sampled_from(sorted(self.h.expected) + ["nobody/0"])))

    @rule(data=st.data())
    def kill_worker(self, data):
        if data.draw(st.integers(0, 5)) == 0:  # rare
            self.h.kill(data.draw(st.sampled_from(sorted(self.h.sim.workers))))

    @rule(dt=st.floats(0.0, 0.05))
    def idle_time(self, dt):
        self.h.clock.advance(dt)

    @invariant()
    def consistent(self):
        if hasattr(self, "h"):
            self.h.check()

    def teardown(self):
        if hasattr(self, "h"):
            self.h.drain()


SETTINGS = settings(
    max_examples=int(os.environ.get("SCHED_STATEFUL_EXAMPLES", "150")),
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

for _name in POLICIES:
    _machine = type(f"Machine_{_name}", (SchedulerMachine,), {"policy_name": _name})
    _case = _machine.TestCase
    _case.settings = SETTINGS
    globals()[f"TestScheduler_{_name}"] = _case
del _machine, _case, _name
