"""GenParams: the per-request decoding parameters, as sent by the kernel (docs/architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from syscalls.errors import ErrorCode, SyscallError


@dataclass(slots=True)
class GenParams:
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0 => greedy
    top_k: int = 0  # 0 => off
    top_p: float = 1.0  # 1.0 => off
    seed: int | None = None  # None => the worker picks one (and snapshots it)
    num_beams: int = 1
    length_penalty: float = 1.0
    early_stopping: bool = False
    stop: list[str] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)
    logprobs: bool = False  # record each chosen token's log-probability (float32; not with beams)

    @property
    def is_beam(self) -> bool:
        return self.num_beams >= 2

    @property
    def is_greedy(self) -> bool:
        return self.temperature <= 0.0

    def to_wire(self) -> dict[str, Any]:
        """Every field; lists copied (what dataclasses.asdict gives, ~10x cheaper)."""
        wire = {name: getattr(self, name) for name in self.__dataclass_fields__}
        wire["stop"], wire["stop_token_ids"] = list(self.stop), list(self.stop_token_ids)
        return wire

    @classmethod
    def from_wire(cls, raw: dict[str, Any] | None) -> GenParams:
        """Tolerates missing fields (defaults) and ignores unknown ones."""
        raw = raw or {}
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw and raw[k] is not None}
        params = cls(**known)
        params.validate()
        return params

    def validate(self) -> None:
        checks = [
            (isinstance(self.max_new_tokens, int) and self.max_new_tokens >= 0, "max_new_tokens"),
            (self.temperature >= 0.0, "temperature"),
            (isinstance(self.top_k, int) and self.top_k >= 0, "top_k"),
            (0.0 < self.top_p <= 1.0, "top_p"),
            (isinstance(self.num_beams, int) and self.num_beams >= 1, "num_beams"),
            (all(isinstance(s, str) and s for s in self.stop), "stop"),
            (all(isinstance(t, int) for t in self.stop_token_ids), "stop_token_ids"),
        ]
        for is_ok, name in checks:
            if not is_ok:
                raise SyscallError(ErrorCode.INVALID_ARGUMENT, f"bad GenParams.{name}")
