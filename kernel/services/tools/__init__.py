"""The tool manager: a registry of tools and a pool of runner processes that execute them."""
