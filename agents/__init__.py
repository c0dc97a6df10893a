"""aiosim agents: SDK, runtime and example agents. Never imports torch."""
