"""Continuous batching: sentences join a running decode when a row is free and leave it when
they stop, so a server never waits for a batch's longest sentence before starting new ones.

`ContinuousDecoder` holds `rows` rows of a fixed-capacity KV cache. `add` prefills one sentence
on its own (its text and prompt, exactly as `generate` would for it alone), copies its keys and
values into a free row and keeps its first logits. Each `step` then samples one token for every
occupied row, retires the rows that stopped (EOS, or their own token cap) and runs one
transformer step for the rest, each row at its own position: the mask lets a row see only the
keys it has written, and its sampler (repetition penalty over its own tokens, its own seeded
generator) is the one it would have alone. So a sentence's tokens do not depend on which others
shared its rows, or when they came (tested against `generate` on a CPU, in both loops).

Two loops, as `generate` has:
- "eager" (the CPU default): occupied rows are kept at the front (a retiring row's place is
  taken by the last one), and a step runs on views of them over the positions they have
  written, not on every row at full capacity.
- "static" (the CUDA default): every step runs all rows over the full capacity, so its shapes
  never change, and on CUDA the transformer step (embedding, layers, logits) is captured once
  as a CUDA graph and replayed. A free row is computed too, and nothing reads it. Sampling
  runs after the replay, on the device; the host reads the stop flags once a step, since rows
  join and leave between steps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from .gpt import MIN_TOKENS, KVCache, SamplingParams, sample_penalized
from .static_decode import penalize_seen

log = logging.getLogger(__name__)


@dataclass
class _Row:
    key: object                 # the caller's handle for this sentence
    cap: int                    # the most tokens it may say
    generator: torch.Generator
    tokens: list[int] = field(default_factory=list)


class _RowCache:
    """The decoder's keys and values: each row writes its new key at its own position and moves
    on by `stride` (1, or 0 for a free row in the static loop)."""

    def __init__(self, k: list[torch.Tensor], v: list[torch.Tensor], position: torch.Tensor,
                 stride: torch.Tensor | int = 1):
        self.k, self.v, self.position, self.stride = k, v, position, stride
        self.rows = torch.arange(position.shape[0], device=position.device)

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        self.k[layer][self.rows, :, self.position] = k[:, :, 0]
        self.v[layer][self.rows, :, self.position] = v[:, :, 0]
        return self.k[layer], self.v[layer]

    def advance(self) -> None:
        self.position.add_(self.stride)


class ContinuousDecoder:
    def __init__(self, gpt, rows: int, capacity: int, params: SamplingParams = SamplingParams(),
                 min_tokens: int = MIN_TOKENS, loop: str = "auto"):
        c = gpt.config
        device, dtype = gpt.bert_proj.weight.device, gpt.bert_proj.weight.dtype
        if loop == "auto":
            loop = "static" if device.type == "cuda" else "eager"
        if loop not in ("eager", "static"):
            raise ValueError(f"loop must be auto, eager or static, not {loop!r}")
        self.gpt, self.params, self.min_tokens, self.capacity, self.loop = gpt, params, min_tokens, capacity, loop
        shape = (rows, c.head, capacity, c.hidden_dim // c.head)
        position = torch.zeros(rows, dtype=torch.long, device=device)
        self.active = torch.zeros(rows, dtype=torch.long, device=device)   # 1 where a row is occupied
        self.cache = _RowCache([torch.zeros(shape, device=device, dtype=dtype) for _ in range(c.n_layer)],
                               [torch.zeros(shape, device=device, dtype=dtype) for _ in range(c.n_layer)], position,
                               self.active if loop == "static" else 1)
        self.n_text = torch.zeros(rows, dtype=torch.long, device=device)   # a row's audio starts after its text
        self.slots = torch.arange(capacity, device=device)
        self.seen = torch.zeros(rows, c.vocab_size, dtype=torch.bool, device=device)
        self.logits = torch.zeros(rows, c.vocab_size, device=device)
        self.token = torch.zeros(rows, 1, dtype=torch.long, device=device)
        self.table = gpt.ar_audio_position.rows(capacity, device, dtype)
        self.occupant: list[_Row | None] = [None] * rows
        self.graph = None
        if loop == "static" and device.type == "cuda":
            self._capture()

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
        self.n_text[row] = n_text
        self.active[row] = 1
        self.logits[row] = gpt.ar_predict_layer(h[0, -1]).float()
        self.seen[row] = False
        self.seen[row, y[0]] = True
        self.occupant[row] = _Row(key, cap, torch.Generator(device=xy.device).manual_seed(seed))

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
            self.token.copy_(token)
            self._advance()
        return done

    def _retire(self, row: int, token: torch.Tensor) -> None:
        """Free `row`. The eager loop moves the last occupied row into it, so occupied rows stay
        0..n-1 and a step runs on views of the first n rows (retiring from the highest row down
        keeps this true)."""
        last = len(self.occupant) - self.free_rows - 1
        if self.loop == "eager" and last != row:
            end = int(self.cache.position[last])
            for store in (self.cache.k, self.cache.v):
                for layer in store:
                    layer[row, :, :end] = layer[last, :, :end]
            for t in (self.cache.position, self.n_text, self.logits, self.seen, token):
                t[row] = t[last]
            self.occupant[row] = self.occupant[last]
            row = last
        self.occupant[row] = None
        self.active[row] = 0

    def _advance(self) -> None:
        """One transformer step for the occupied rows: in the eager loop, the first n rows over
        the positions they have written; in the static loop, every row over the capacity (the
        graph's replay where there is one)."""
        if self.graph is not None:
            self.graph.replay()
        elif self.loop == "static":
            self._forward(self.cache, self.token, self.logits)
        else:
            n = len(self.occupant) - self.free_rows
            end = int(self.cache.position[:n].max()) + 1
            rows = _RowCache([k[:n, :, :end] for k in self.cache.k], [v[:n, :, :end] for v in self.cache.v],
                             self.cache.position[:n])
            self._forward(rows, self.token[:n], self.logits[:n])

    def _forward(self, cache: _RowCache, token: torch.Tensor, logits: torch.Tensor) -> None:
        gpt, position = self.gpt, cache.position
        n_text = self.n_text[:position.shape[0]]
        audio = position - n_text                 # the token's place among the audio positions
        emb = gpt.ar_audio_embedding(token) + gpt.ar_audio_position.alpha * self.table[audio][:, None]
        mask = (self.slots[None, :cache.k[0].shape[2]] <= position[:, None])[:, None, None, :]
        h = gpt._run(emb, mask, cache)
        logits.copy_(gpt.ar_predict_layer(h[:, -1]))

    def _capture(self) -> None:
        """Record the static step as a CUDA graph (warm-up on a side stream first, as graphs
        require). Nothing is decoding yet; the positions and logits it moves are restored."""
        saved = [t.clone() for t in (self.cache.position, self.logits)]
        try:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):
                    self._forward(self.cache, self.token, self.logits)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._forward(self.cache, self.token, self.logits)
            self.graph = graph
        except RuntimeError as e:  # an op torch cannot capture here: the same step, eagerly
            log.warning("CUDA graph capture failed, continuous decoding without it: %s", str(e).splitlines()[0])
        for t, s in zip((self.cache.position, self.logits), saved):
            t.copy_(s)
