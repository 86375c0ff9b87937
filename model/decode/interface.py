"""What the decode loops and the network share: the model interface the loops drive, what a
prefill hands them, and the batch `Text2Semantic.generate` asks them to decode.

The loops import no model: they drive any `Decodable` (in practice `model.gpt.Text2Semantic`),
so `gpt.py` can dispatch to them without an import cycle.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import torch

from ..config import GPTConfig
from .sampling import Generators, SamplingParams


@dataclass(frozen=True)
class Prefill:
    """A prompt run through the network: where decoding starts from."""
    logits: torch.Tensor      # [B, V] for the first new token
    key_ok: torch.Tensor      # [B, n_text + P] False on a row's left padding
    n_text: int               # phone positions (every row left-padded to the longest)
    prompt: torch.Tensor      # [B, P] the audio tokens prefilled after the phones


@dataclass(frozen=True)
class DecodeBatch:
    """Texts to continue one prompt each, and how: `Text2Semantic.generate` makes it."""
    phones: list[torch.Tensor]   # [N_i] reference + target phone ids
    bert: list[torch.Tensor]     # [bert_dim, N_i]
    prompt: torch.Tensor         # [B, P] the reference's semantic tokens
    params: SamplingParams
    generator: Generators        # one for the batch, one per row, or None (torch's default)
    caps: torch.Tensor           # [B] each row's token cap
    max_tokens: int              # the largest cap
    min_tokens: int              # steps before EOS may be drawn

    @property
    def size(self) -> int:
        return len(self.phones)

    @property
    def n_text(self) -> int:
        return max(int(p.shape[0]) for p in self.phones)

    @property
    def positions(self) -> int:
        """Every position a decode may write: phones, prompt, tokens, and the step after the last."""
        return self.n_text + self.prompt.shape[1] + self.max_tokens + 1


class Decodable(Protocol):
    """The network as the loops see it (`Text2Semantic`'s public decoding interface)."""
    config: GPTConfig

    @property
    def device(self) -> torch.device: ...

    @property
    def dtype(self) -> torch.dtype: ...

    def prefill(self, phones: list[torch.Tensor], bert: list[torch.Tensor], prompt: torch.Tensor,
                cache=None) -> Prefill: ...

    def step(self, x: torch.Tensor, mask: torch.Tensor | None, cache) -> torch.Tensor: ...

    def embed_audio(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor: ...

    def audio_position_table(self, n: int) -> torch.Tensor: ...

    def embed_audio_at(self, tokens: torch.Tensor, position_rows: torch.Tensor) -> torch.Tensor: ...

    def parameters(self) -> Iterator[torch.nn.Parameter]: ...
