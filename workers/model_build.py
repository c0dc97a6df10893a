"""Build the embedded random-weight models and the byte-level tokenizer, once per cache dir.

Several workers may start at once: a build holds an exclusive file lock, writes into a temp dir
and renames it into place, so readers only ever see a complete model dir.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

SEED = 1234
VOCAB_SIZE = 512
MAX_CONTEXT = 4096
SPECIALS = ["<s>", "</s>", "<pad>"]
BOS_ID, EOS_ID, PAD_ID = 256, 257, 258
COMPLETE_MARKER = ".complete"


def aiosim_home() -> Path:
    return Path(os.environ.get("AIOSIM_HOME", Path.home() / ".cache" / "aiosim"))


def models_dir() -> Path:
    return aiosim_home() / "models"


def build_byte_tokenizer(out_dir: Path) -> None:
    """256 byte tokens, then <s> </s> <pad>, then reserved specials up to VOCAB_SIZE."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_chars = pre_tokenizers.ByteLevel.alphabet()
    alphabet = sorted(byte_chars, key=lambda ch: _byte_of_char()[ch])
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    extras = [f"<extra_{i}>" for i in range(VOCAB_SIZE - 256 - len(SPECIALS))]
    tok.add_special_tokens(SPECIALS + extras)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    fast.save_pretrained(str(out_dir))


def _byte_of_char() -> dict[str, int]:
    """GPT-2's bytes_to_unicode table, inverted: printable char -> byte value."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


def build_tiny_llama(out_dir: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=VOCAB_SIZE, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, head_dim=64,
        max_position_embeddings=MAX_CONTEXT, bos_token_id=BOS_ID, eos_token_id=EOS_ID,
        pad_token_id=PAD_ID, tie_word_embeddings=False,
    )
    _save_random(LlamaForCausalLM, config, out_dir)


def build_gpt2_small_random(out_dir: Path) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=VOCAB_SIZE, n_positions=MAX_CONTEXT, n_embd=768, n_layer=12, n_head=12,
        bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID,
    )
    _save_random(GPT2LMHeadModel, config, out_dir)


def _save_random(model_cls: type, config: object, out_dir: Path) -> None:
    torch.manual_seed(SEED)
    model = model_cls(config).to(torch.float32).eval()
    model.save_pretrained(str(out_dir))
    build_byte_tokenizer(out_dir)


BUILDERS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "tiny": ("tiny-llama-v1", build_tiny_llama),
    "gpt2-small-random": ("gpt2-small-random-v1", build_gpt2_small_random),
}


def ensure_built(spec: str) -> Path:
    """Return the dir of an embedded model, building it under a file lock if missing."""
    name, builder = BUILDERS[spec]
    final = models_dir() / name
    if (final / COMPLETE_MARKER).exists():
        return final
    models_dir().mkdir(parents=True, exist_ok=True)
    with open(models_dir() / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (final / COMPLETE_MARKER).exists():
            _build_into(final, builder)
    return final


def _build_into(final: Path, builder: Callable[[Path], None]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        builder(tmp)
        (tmp / COMPLETE_MARKER).write_text("ok\n")
        if final.exists():  # a stale, incomplete dir from a crashed build
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
