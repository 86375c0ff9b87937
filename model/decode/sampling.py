"""Sampling one token per row: the settings, the repetition penalty and the draw.

Every decode loop (eager, static, continuous) draws through `draw`, so they sample alike by
construction. Upstream's order is kept: repetition penalty -> top-p -> temperature -> top-k ->
sample. It uses device tensors only (no host wait), so a CUDA graph can hold it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MIN_TOKENS = 11      # EOS is masked for the first steps (about 0.4 s of audio)
MAX_TOKENS = 1500    # hard cap: 60 s at 25 tokens/s


@dataclass(frozen=True)
class SamplingParams:
    top_k: int = 15
    top_p: float = 1.0
    temperature: float = 1.0
    repetition_penalty: float = 1.35


Generators = torch.Generator | list[torch.Generator] | None


def penalize(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """fp32 logits [B, W] with every token marked in `seen` [B, W] made less likely: negative
    logits multiplied, positive ones divided by `penalty`. Each seen token is penalised once,
    however often it was said (as upstream's gather/scatter over the token list does)."""
    logits = logits.float()
    if penalty == 1.0:
        return logits.clone()
    return torch.where(seen, torch.where(logits < 0, logits * penalty, logits / penalty), logits)


def sample(logits: torch.Tensor, p: SamplingParams, generator: Generators) -> torch.Tensor:
    """top-p -> temperature -> top-k -> a draw: [B, W] -> [B, 1]. `generator` is one for the
    batch, or one per row (each row then draws as it would alone)."""
    if p.top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        drop = sorted_logits.softmax(-1).cumsum(-1) > p.top_p
        drop[:, 0] = False
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    logits = logits / max(p.temperature, 1e-5)
    if p.top_k:
        pivot = logits.topk(min(p.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < pivot, float("-inf"))
    probs = logits.softmax(-1)
    # exponential race: argmax(p / E) with E ~ Exp(1) is a draw from p
    if isinstance(generator, list):
        race = torch.stack([torch.empty_like(row).exponential_(1, generator=g) for row, g in zip(probs, generator)])
    else:
        race = torch.empty_like(probs).exponential_(1, generator=generator)
    return (probs / race).argmax(dim=-1, keepdim=True)


def draw(logits: torch.Tensor, seen: torch.Tensor, params: SamplingParams, generator: Generators,
         eos: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One token per row [B, 1] from logits [B, W] after the repetition penalty over `seen`
    [B, W], and whether the row stops [B]: it drew EOS, or EOS leads the penalised logits (as
    upstream stops). A width without EOS (W <= eos) is a step where EOS is not allowed yet."""
    penalized = penalize(logits, seen, params.repetition_penalty)
    token = sample(penalized, params, generator)
    return token, (token[:, 0] == eos) | (penalized.argmax(-1) == eos)
