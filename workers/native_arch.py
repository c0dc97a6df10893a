"""The architectures aiosim decodes with its own forward pass: their weights, norms and MLPs.

Llama family (LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM without a binding sliding
window) and GPT-2 (GPT2LMHeadModel). Weights are taken from the loaded Hugging Face model
(safetensors via from_pretrained) into plain tensors, each linear's as [in, out] (a matmul with
that layout is one kernel class for every row count >= 4 here, and the fastest), q/k/v fused into
one matrix, gate/up into one. Anything else runs through the generic transformers path
(workers/decoder.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

NATIVE_ARCHITECTURES = ("LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM", "GPT2LMHeadModel")
MAX_ROPE_TABLE = 1 << 16


@dataclass(slots=True)
class Layer:  # every linear is (weight [in, out], bias or None)
    norm1: tuple[torch.Tensor, torch.Tensor | None]
    qkv: tuple[torch.Tensor, torch.Tensor | None]
    out: tuple[torch.Tensor, torch.Tensor | None]
    norm2: tuple[torch.Tensor, torch.Tensor | None]
    up: tuple[torch.Tensor, torch.Tensor | None]  # Llama: gate and up stacked
    down: tuple[torch.Tensor, torch.Tensor | None]


@dataclass(slots=True)
class Arch:
    kind: str  # "llama" | "gpt2"
    num_heads: int
    kv_heads: int
    head_dim: int
    eps: float
    embed: torch.Tensor
    positions: torch.Tensor | None  # GPT-2 learned positions
    rope: tuple[torch.Tensor, torch.Tensor] | None  # Llama cos/sin tables [positions, head_dim]
    layers: list[Layer]
    final_norm: tuple[torch.Tensor, torch.Tensor | None]
    lm_head: torch.Tensor
    max_positions: int

    def norm(self, x: torch.Tensor, weights: tuple[torch.Tensor, torch.Tensor | None]) -> torch.Tensor:
        weight, bias = weights
        if self.kind == "gpt2":
            return F.layer_norm(x, (x.shape[-1],), weight, bias, self.eps)
        return F.rms_norm(x, (x.shape[-1],), weight, self.eps)

    def mlp(self, x: torch.Tensor, layer: Layer) -> torch.Tensor:
        hidden = linear(x, layer.up)
        if self.kind == "gpt2":
            hidden = F.gelu(hidden, approximate="tanh")
        else:
            gate, up = hidden.chunk(2, dim=-1)
            hidden = F.silu(gate) * up
        return linear(hidden, layer.down)

    def embed_tokens(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        x = self.embed.index_select(0, ids)
        if self.positions is not None:
            x = x + self.positions.index_select(0, positions)
        return x

    def rope_at(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """cos/sin [rows, 1, head_dim] of the positions (None for GPT-2), once per forward."""
        if self.rope is None:
            return None
        return self.rope[0].index_select(0, positions)[:, None, :], self.rope[1].index_select(0, positions)[:, None, :]

    @staticmethod
    def rotate(x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        """Rotary embedding of x [rows, heads, head_dim] (identity without rope)."""
        if rope is None:
            return x
        half = x.shape[-1] // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * rope[0] + rotated * rope[1]


def linear(x: torch.Tensor, weights: tuple[torch.Tensor, torch.Tensor | None]) -> torch.Tensor:
    """x [rows, in] @ weight [in, out] (+ bias)."""
    weight, bias = weights
    return torch.mm(x, weight) if bias is None else torch.addmm(bias, x, weight)


def unsupported_reason(model: Any) -> str | None:
    """Why `model` cannot take the native path, or None if it can."""
    config = model.config
    name = type(model).__name__
    if name not in NATIVE_ARCHITECTURES:
        return f"architecture {name} has no native forward"
    if name == "GPT2LMHeadModel":
        if getattr(config, "scale_attn_by_inverse_layer_idx", False) or getattr(config, "reorder_and_upcast_attn", False):
            return "GPT-2 attention variants are not native"
        if getattr(config, "activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
            return f"GPT-2 activation {config.activation_function} is not native"
        return None
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"activation {config.hidden_act} is not native"
    window = getattr(config, "sliding_window", None)
    uses_window = getattr(config, "use_sliding_window", name == "MistralForCausalLM")
    if window and uses_window and window < getattr(config, "max_position_embeddings", 0):
        return "a sliding attention window is not native"
    if getattr(config, "mlp_bias", False):
        return "MLP biases are not native"
    return None


def _linear(module: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    return module.weight.detach().t().contiguous(), None if module.bias is None else module.bias.detach()


def _stack(*modules: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    weights = torch.cat([m.weight.detach() for m in modules], 0).t().contiguous()
    biases = [m.bias for m in modules]
    if all(b is None for b in biases):
        return weights, None
    return weights, torch.cat([b.detach() if b is not None else torch.zeros(m.weight.shape[0], dtype=weights.dtype, device=weights.device) for m, b in zip(modules, biases, strict=True)])


def _conv1d(module: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """GPT-2's Conv1D already keeps [in, out]."""
    return module.weight.detach(), module.bias.detach()


def _norm(module: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    return module.weight.detach(), None if getattr(module, "bias", None) is None else module.bias.detach()


def extract(model: Any, max_context: int) -> Arch:
    """Plain tensors of a supported model (see unsupported_reason)."""
    if type(model).__name__ == "GPT2LMHeadModel":
        return _extract_gpt2(model)
    config, inner = model.config, model.model
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    layers = [
        Layer(
            norm1=_norm(block.input_layernorm),
            qkv=_stack(block.self_attn.q_proj, block.self_attn.k_proj, block.self_attn.v_proj),
            out=_linear(block.self_attn.o_proj), norm2=_norm(block.post_attention_layernorm),
            up=_stack(block.mlp.gate_proj, block.mlp.up_proj), down=_linear(block.mlp.down_proj),
        )
        for block in inner.layers
    ]
    return Arch(
        kind="llama", num_heads=heads, kv_heads=getattr(config, "num_key_value_heads", None) or heads,
        head_dim=head_dim, eps=config.rms_norm_eps, embed=inner.embed_tokens.weight.detach(), positions=None,
        rope=_rope_tables(inner, min(max_context, MAX_ROPE_TABLE)), layers=layers,
        final_norm=_norm(inner.norm), lm_head=model.lm_head.weight.detach().t().contiguous(), max_positions=min(max_context, MAX_ROPE_TABLE),
    )


@torch.no_grad()
def _rope_tables(inner: Any, num_positions: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin for every position, from the model's own rotary module (any rope scaling)."""
    weight = inner.embed_tokens.weight
    probe = torch.zeros(1, 1, 1, dtype=weight.dtype, device=weight.device)
    positions = torch.arange(num_positions, device=weight.device)[None, :]
    cos, sin = inner.rotary_emb(probe, positions)
    return cos[0].contiguous(), sin[0].contiguous()


def _extract_gpt2(model: Any) -> Arch:
    config, inner = model.config, model.transformer
    layers = [
        Layer(
            norm1=_norm(block.ln_1), qkv=_conv1d(block.attn.c_attn), out=_conv1d(block.attn.c_proj),
            norm2=_norm(block.ln_2), up=_conv1d(block.mlp.c_fc), down=_conv1d(block.mlp.c_proj),
        )
        for block in inner.h
    ]
    heads = config.n_head
    return Arch(
        kind="gpt2", num_heads=heads, kv_heads=heads, head_dim=config.n_embd // heads,
        eps=config.layer_norm_epsilon, embed=inner.wte.weight.detach(), positions=inner.wpe.weight.detach(),
        rope=None, layers=layers, final_norm=_norm(inner.ln_f), lm_head=model.lm_head.weight.detach().t().contiguous(),
        max_positions=config.n_positions,
    )
