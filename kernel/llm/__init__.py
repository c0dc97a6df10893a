"""The kernel's LLM service: worker processes, tokenizer, and the glue to the scheduler core."""
