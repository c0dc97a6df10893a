"""Resolve a model spec, load it once per worker, and describe it (ModelInfo + fingerprint).

The fingerprint names everything that changes the bits of a decode: weights, dtype, device,
torch thread count and attention implementation. A snapshot only restores bit-exactly into a
worker with an equal fingerprint (workers/snapshot.py checks it).
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from workers.model_build import BUILDERS, ensure_built

DEFAULT_ATTN = "sdpa"


@dataclass(slots=True)
class ModelInfo:
    model_id: str
    model_dir: str
    kv_bytes_per_token: int
    max_context: int
    eos_token_id: int
    vocab_size: int
    fingerprint: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id, "model_dir": self.model_dir,
            "kv_bytes_per_token": self.kv_bytes_per_token, "max_context": self.max_context,
            "eos_token_id": self.eos_token_id, "vocab_size": self.vocab_size,
            "fingerprint": dict(self.fingerprint),
        }


@dataclass(slots=True)
class LoadedModel:
    """A model ready for step-wise decoding; owned by one worker process."""

    model: Any
    tokenizer: Any
    info: ModelInfo
    device: torch.device
    cache_keyword: str = ""  # the forward's name for the KV cache (see `cache_keyword`)

    def __post_init__(self) -> None:
        self.cache_keyword = self.cache_keyword or cache_keyword(self.model)

    def forward(self, input_ids: torch.Tensor, cache: Any = None, **kwargs: Any) -> tuple[Any, torch.Tensor]:
        """One forward with use_cache; returns (the cache after it, logits)."""
        if cache is not None:
            kwargs[self.cache_keyword] = cache
        out = self.model(input_ids=input_ids, use_cache=True, **kwargs)
        return getattr(out, self.cache_keyword), out.logits


def cache_keyword(model: Any) -> str:
    """`cache` where the installed transformers names the forward's KV cache so (5.24 on; the old
    `past_key_values` logs a deprecation there), `past_key_values` on older releases."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def resolve_model_dir(spec: str) -> Path:
    """`tiny` / `gpt2-small-random` -> build or reuse the embedded model; else a local HF dir."""
    if spec in BUILDERS:
        return ensure_built(spec)
    path = Path(spec).expanduser()
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"model spec {spec!r} is neither a known name nor a model dir")
    return path


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_model(
    spec: str = "tiny", threads: int = 1, attn_implementation: str = DEFAULT_ATTN,
    dtype: torch.dtype = torch.float32,
) -> LoadedModel:
    """Load once per process; pins torch's thread count (part of the fingerprint)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.set_num_threads(threads)
    model_dir = resolve_model_dir(spec)
    device = pick_device()
    model = AutoModelForCausalLM.from_pretrained(
        str(model_dir), local_files_only=True, dtype=dtype, attn_implementation=attn_implementation
    ).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    info = describe(spec, model_dir, model, tokenizer, threads, attn_implementation, device)
    return LoadedModel(model=model, tokenizer=tokenizer, info=info, device=device)


def describe(
    spec: str, model_dir: Path, model: Any, tokenizer: Any, threads: int, attn: str,
    device: torch.device,
) -> ModelInfo:
    config = model.config
    dtype = next(model.parameters()).dtype
    model_id = BUILDERS[spec][0] if spec in BUILDERS else model_dir.name
    eos = config.eos_token_id if config.eos_token_id is not None else tokenizer.eos_token_id
    eos = eos[0] if isinstance(eos, list) else eos
    fingerprint = {
        "model_id": model_id, "weights_sha256": weights_sha256(model),
        "dtype": str(dtype).removeprefix("torch."), "device": device.type,
        "torch_threads": threads, "attn_implementation": attn,
    }
    return ModelInfo(
        model_id=model_id, model_dir=str(model_dir), kv_bytes_per_token=kv_bytes_per_token(config, dtype),
        max_context=max_context(config), eos_token_id=int(eos), vocab_size=int(config.vocab_size),
        fingerprint=fingerprint,
    )


def kv_bytes_per_token(config: Any, dtype: torch.dtype) -> int:
    layers = config.num_hidden_layers
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return layers * 2 * kv_heads * head_dim * torch.tensor([], dtype=dtype).element_size()


def max_context(config: Any) -> int:
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if value:
            return int(value)
    raise ValueError("model config names no context window")


def weights_sha256(model: Any) -> str:
    """sha256 over (name, dtype, shape, bytes) of every state-dict tensor, in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
