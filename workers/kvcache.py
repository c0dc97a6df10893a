"""DynamicCache <-> plain tensors: select rows (beams), left-pad and merge, split back.

Cache tensors are [rows, kv_heads, seq, head_dim] per layer, keys and values.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

LayerKV = tuple[torch.Tensor, torch.Tensor]


def cache_layers(cache: DynamicCache) -> list[LayerKV]:
    return [(layer.keys, layer.values) for layer in cache.layers]


def make_cache(layers: list[LayerKV], config: Any) -> DynamicCache:
    """Wrap tensors without copying them (DynamicCache(ddp_cache_data=...) copies every layer)."""
    if not _is_plain_dynamic(config, len(layers)):
        return DynamicCache(ddp_cache_data=layers, config=config)  # e.g. sliding-window layers
    cache = DynamicCache(config=config)  # plain DynamicLayers, checked above
    cache.layers = [_dynamic_layer(k, v) for k, v in layers]
    return cache


def _dynamic_layer(keys: torch.Tensor, values: torch.Tensor) -> DynamicLayer:
    """A layer holding `keys`/`values` themselves, set up by the layer's own public
    `lazy_initialization` (as its first `update` does) rather than by copying them into it
    (tests/workers/test_snapshot.py checks that it decodes like the library's own cache)."""
    layer = DynamicLayer()
    layer.lazy_initialization(keys, values)
    layer.keys, layer.values = keys, values
    return layer


_PLAIN_DYNAMIC: dict[int, tuple[Any, int | None]] = {}  # id(config) -> (config, num layers or None)


def _is_plain_dynamic(config: Any, num_layers: int) -> bool:
    """Does DynamicCache(config=config) hold `num_layers` plain DynamicLayers? Memoized per config
    (the entry keeps the config alive, so its id is never reused for another one)."""
    memo = _PLAIN_DYNAMIC.get(id(config))
    if memo is None or memo[0] is not config:
        layers = DynamicCache(config=config).layers
        plain = all(type(layer) is DynamicLayer for layer in layers)
        memo = _PLAIN_DYNAMIC[id(config)] = (config, len(layers) if plain else None)
    return memo[1] == num_layers


def cache_len(cache: DynamicCache) -> int:
    return int(cache.layers[0].keys.shape[2])


def cache_bytes(cache: DynamicCache | None) -> int:
    if cache is None:
        return 0
    return sum(k.nbytes + v.nbytes for k, v in cache_layers(cache))


def select_rows(cache: DynamicCache, rows: torch.Tensor, config: Any) -> DynamicCache:
    """Rows of a new cache = `rows` of the old one (reorders, repeats or drops beams)."""
    return make_cache(
        [(k.index_select(0, rows), v.index_select(0, rows)) for k, v in cache_layers(cache)], config
    )


def merge_left_padded(caches: list[DynamicCache], config: Any) -> tuple[DynamicCache, list[int]]:
    """Left-pad every cache with zeros to the longest one and stack rows; returns pad per cache."""
    longest = max(cache_len(c) for c in caches)
    pads = [longest - cache_len(c) for c in caches]
    merged = []
    for layer in range(len(caches[0].layers)):
        keys = [_left_pad(c.layers[layer].keys, p) for c, p in zip(caches, pads, strict=True)]
        values = [_left_pad(c.layers[layer].values, p) for c, p in zip(caches, pads, strict=True)]
        merged.append((torch.cat(keys, 0), torch.cat(values, 0)))
    return make_cache(merged, config), pads


def _left_pad(t: torch.Tensor, pad: int) -> torch.Tensor:
    if pad == 0:
        return t
    zeros = t.new_zeros((t.shape[0], t.shape[1], pad, t.shape[3]))
    return torch.cat([zeros, t], 2)


def split_rows(cache: DynamicCache, start: int, stop: int, seq_len: int, config: Any) -> DynamicCache:
    """Rows [start, stop) keeping only the last `seq_len` positions (drops the left padding)."""
    return make_cache(
        [
            (k[start:stop, :, -seq_len:, :].contiguous(), v[start:stop, :, -seq_len:, :].contiguous())
            for k, v in cache_layers(cache)
        ],
        config,
    )
