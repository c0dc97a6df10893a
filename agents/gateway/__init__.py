"""The OpenAI-compatible HTTP gateway (`aiosim gateway`): a client of the kernel like an agent.

Imports no torch. See docs/gateway.md.
"""
