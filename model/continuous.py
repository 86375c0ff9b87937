"""Continuous batching: sentences join a running decode when a row is free and leave it when
they stop, so a server never waits for a batch's longest sentence before starting new ones.

`ContinuousDecoder` holds `rows` rows of a fixed-capacity KV cache. `add` prefills one sentence
on its own (its text and prompt, exactly as `generate` would for it alone), copies its keys and
values into a free row and keeps its first logits. Each `step` then samples one token for every
occupied row, retires the rows that stopped (EOS, or their own token cap) and runs one
transformer step for the rest, each row at its own position: the mask lets a row see only the
keys it has written, and its sampler (repetition penalty over its own tokens, its own seeded
generator) is the one it would have alone. So a sentence's tokens do not depend on which others
shared its rows, or when they came (tested against `generate` on a CPU).

Occupied rows are kept at the front (a retiring row's place is taken by the last one), so a
step runs on views of the occupied rows over the positions they have written, not on every row
at full capacity. Its per-row bookkeeping still costs more than `generate`'s loop on a CPU
(benchmarks/RESULTS.md). (A CUDA graph would want every step at the full rows and capacity, as
`model.static_decode` does; not built yet.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .gpt import MIN_TOKENS, KVCache, SamplingParams, sample_penalized
from .static_decode import penalize_seen


@dataclass
class _Row:
    key: object                 # the caller's handle for this sentence
    cap: int                    # the most tokens it may say
    n_prompt: int               # its reference's semantic tokens (audio positions start after them)
    generator: torch.Generator
    tokens: list[int] = field(default_factory=list)


class _RowCache:
    """The decoder's keys and values: each row writes its new key at its own position."""

    def __init__(self, k: list[torch.Tensor], v: list[torch.Tensor], position: torch.Tensor):
        self.k, self.v, self.position = k, v, position
        self.rows = torch.arange(position.shape[0], device=position.device)

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        self.k[layer][self.rows, :, self.position] = k[:, :, 0]
        self.v[layer][self.rows, :, self.position] = v[:, :, 0]
        return self.k[layer], self.v[layer]

    def advance(self) -> None:
        self.position.add_(1)


class ContinuousDecoder:
    def __init__(self, gpt, rows: int, capacity: int, params: SamplingParams = SamplingParams(),
                 min_tokens: int = MIN_TOKENS):
        c = gpt.config
        device, dtype = gpt.bert_proj.weight.device, gpt.bert_proj.weight.dtype
        self.gpt, self.params, self.min_tokens, self.capacity = gpt, params, min_tokens, capacity
        shape = (rows, c.head, capacity, c.hidden_dim // c.head)
        position = torch.zeros(rows, dtype=torch.long, device=device)
        self.cache = _RowCache([torch.zeros(shape, device=device, dtype=dtype) for _ in range(c.n_layer)],
                               [torch.zeros(shape, device=device, dtype=dtype) for _ in range(c.n_layer)], position)
        self.slots = torch.arange(capacity, device=device)
        self.seen = torch.zeros(rows, c.vocab_size, dtype=torch.bool, device=device)
        self.logits = torch.zeros(rows, c.vocab_size, device=device)
        self.table = gpt.ar_audio_position.rows(capacity, device, dtype)
        self.occupant: list[_Row | None] = [None] * rows

    @property
    def free_rows(self) -> int:
        return self.occupant.count(None)

    @property
    def busy(self) -> bool:
        return self.free_rows < len(self.occupant)

    def fits(self, n_phones: int, n_prompt: int, cap: int) -> bool:
        return n_phones + n_prompt + cap <= self.capacity

    @torch.no_grad()
    def add(self, key, phones: torch.Tensor, bert: torch.Tensor, prompt: torch.Tensor, seed: int, cap: int) -> None:
        """Prefill one sentence (phones [N] reference + target, bert [bert_dim, N], prompt [P]
        the reference's tokens) into a free row; it samples from the next `step` on."""
        gpt, c = self.gpt, self.gpt.config
        if not self.free_rows:
            raise RuntimeError("no free row: wait for a sentence to finish")
        n_text, n_prompt = int(phones.shape[0]), int(prompt.shape[0])
        if not self.fits(n_text, n_prompt, cap):
            raise ValueError(f"{n_text + n_prompt + cap} positions do not fit the decoder's {self.capacity}")
        row = self.occupant.index(None)
        x = gpt.embed_text(phones[None], bert[None])
        y = prompt.long()[None]
        xy = torch.cat([x.to(gpt.bert_proj.weight.dtype), gpt.ar_audio_position(gpt.ar_audio_embedding(y))], dim=1)
        length = n_text + n_prompt
        alone = KVCache(c.n_layer, 1, c.head, c.hidden_dim // c.head, length, xy.device, xy.dtype)
        mask = gpt.prefix_mask(n_text, n_prompt, xy.device)[None, None]
        h = gpt._run(xy, mask, alone)
        for layer in range(c.n_layer):
            self.cache.k[layer][row, :, :length] = alone.k[layer][0, :, :length]
            self.cache.v[layer][row, :, :length] = alone.v[layer][0, :, :length]
        self.cache.position[row] = length
        self.logits[row] = gpt.ar_predict_layer(h[0, -1]).float()
        self.seen[row] = False
        self.seen[row, y[0]] = True
        self.occupant[row] = _Row(key, cap, n_prompt, torch.Generator(device=xy.device).manual_seed(seed))

    @torch.no_grad()
    def step(self) -> list[tuple[object, torch.Tensor]]:
        """Sample a token for every occupied row, retire those that stopped, and advance the
        rest one position. Returns (key, tokens) of each sentence that finished."""
        c = self.gpt.config
        active = [i for i, r in enumerate(self.occupant) if r is not None]
        if not active:
            return []
        token = torch.zeros(len(self.occupant), 1, dtype=torch.long, device=self.logits.device)
        stop = torch.zeros(len(self.occupant), dtype=torch.bool)
        # rows still under min_tokens sample without EOS, as `generate` does at those steps
        early = [i for i in active if len(self.occupant[i].tokens) < self.min_tokens]
        for group, width in ((early, c.vocab_size - 1), ([i for i in active if i not in early], c.vocab_size)):
            if not group:
                continue
            index = torch.tensor(group, device=self.logits.device)
            penalty = self.params.repetition_penalty
            penalized = penalize_seen(self.logits[index, :width], self.seen[index, :width], penalty)
            drawn = sample_penalized(penalized, self.params, [self.occupant[i].generator for i in group])
            token[index] = drawn
            stop[index.cpu()] = ((drawn[:, 0] == c.EOS) | (penalized.argmax(-1) == c.EOS)).cpu()
        finished = []
        for i in active:
            row = self.occupant[i]
            if bool(stop[i]):
                finished.append(i)
                continue
            row.tokens.append(int(token[i]))
            if len(row.tokens) >= row.cap:
                finished.append(i)
        done = [(self.occupant[i].key, torch.tensor(self.occupant[i].tokens, dtype=torch.long)) for i in finished]
        self.seen.scatter_(1, token, True)
        for i in sorted(finished, reverse=True):
            self._retire(i, token)
        if self.busy:
            self._advance(token[:len(self.occupant) - self.free_rows])
        return done

    def _retire(self, row: int, token: torch.Tensor) -> None:
        """Free `row`, moving the last occupied row into it: occupied rows stay 0..n-1, so a step
        runs on views of the first n rows (retiring from the highest row down keeps this true)."""
        last = len(self.occupant) - self.free_rows - 1
        if last != row:
            end = int(self.cache.position[last])
            for store in (self.cache.k, self.cache.v):
                for layer in store:
                    layer[row, :, :end] = layer[last, :, :end]
            for t in (self.cache.position, self.logits, self.seen, token):
                t[row] = t[last]
            self.occupant[row] = self.occupant[last]
        self.occupant[last] = None

    def _advance(self, token: torch.Tensor) -> None:
        """One transformer step for the n occupied rows, over the positions they have written."""
        gpt, n = self.gpt, token.shape[0]
        position = self.cache.position[:n]
        end = int(position.max()) + 1
        audio = torch.tensor([r.n_prompt + len(r.tokens) - 1 for r in self.occupant[:n]], device=token.device)
        emb = gpt.ar_audio_embedding(token) + gpt.ar_audio_position.alpha * self.table[audio][:, None]
        mask = (self.slots[None, :end] <= position[:, None])[:, None, None, :]
        rows = _RowCache([k[:n, :, :end] for k in self.cache.k], [v[:n, :, :end] for v in self.cache.v], position)
        h = gpt._run(emb, mask, rows)
        self.logits[:n] = gpt.ar_predict_layer(h[:, -1]).float()
