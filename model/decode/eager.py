"""The eager decode loop (the CPU default): `Text2Semantic.generate(loop="eager")`.

Each step draws a token for every row, then runs only the new position through the network
over the keys written so far (`GrowingKVCache`). Rows stop at EOS (not allowed during the first
`min_tokens` steps) or at their own cap, as each would alone. Without the cache every step
prefills the whole sequence again: the reference the cached loop is tested against.
"""

from __future__ import annotations

import torch

from .cache import GrowingKVCache, layer_tensors
from .interface import Decodable, DecodeBatch
from .sampling import draw

CACHE_STEP = 128     # generated positions a KV cache first holds room for (it doubles as needed)


def decode(model: Decodable, batch: DecodeBatch, use_cache: bool = True) -> list[torch.Tensor]:
    """Each row's new tokens, without EOS."""
    c = model.config
    b, n_prompt = batch.size, batch.prompt.shape[1]
    cache = None
    if use_cache:
        start = min(batch.positions, batch.n_text + n_prompt + CACHE_STEP)
        cache = GrowingKVCache(*layer_tensors(model, b, start), limit=batch.positions)
    first = model.prefill(batch.phones, batch.bert, batch.prompt, cache)
    logits = first.logits
    key_ok = torch.cat([first.key_ok, first.key_ok.new_ones(b, batch.max_tokens)], dim=1)
    seen = torch.zeros(b, c.vocab_size, dtype=torch.bool, device=logits.device).scatter_(1, batch.prompt, True)
    y = batch.prompt
    finished = torch.zeros(b, dtype=torch.bool, device=logits.device)
    lengths = batch.caps.clone()
    # a new token may see every cached key unless some row is left-padded: then no mask at all
    # (a boolean mask per layer per token costs ~15 % of a CPU step)
    unpadded = bool(key_ok.all())
    for step in range(batch.max_tokens):
        width = c.vocab_size - 1 if step < batch.min_tokens else c.vocab_size      # EOS not allowed yet
        token, stop = draw(logits[:, :width], seen[:, :width], batch.params, batch.generator, c.EOS)
        lengths[stop & ~finished] = step
        finished |= stop | (step + 1 >= batch.caps)      # a row's own cap: as if it ran alone
        y = torch.cat([y, token], dim=1)
        if bool(finished.all()):
            break
        seen.scatter_(1, token, True)
        if cache is not None:
            mask = None if unpadded else key_ok[:, None, None, :cache.length + 1]
            logits = model.step(model.embed_audio(token, start=n_prompt + step), mask, cache)
        else:
            logits = model.prefill(batch.phones, batch.bert, y).logits
    new = y[:, n_prompt:]
    return [new[i, :int(lengths[i])] for i in range(b)]
