"""Continuous batching: sentences join a running decode when a row is free and leave it when
they stop, so a server never waits for a batch's longest sentence before starting new ones.

`ContinuousDecoder` holds `rows` rows of a fixed-capacity KV cache (`RowKVCache`). `add`
prefills one sentence on its own (the model's `prefill`, exactly as `generate` runs it for the
sentence alone), copies its keys and values into a free row and keeps its first logits. Each
`step` then samples one token for every occupied row, retires the rows that stopped (EOS, or
their own token cap) and runs one transformer step for the rest, each row at its own
position: the mask lets a row see only the keys it has written, and its sampler (repetition
penalty over its own tokens, its own seeded generator) is the one it would have alone. So a
sentence's tokens do not depend on which others shared its rows, or when they came (tested
against `generate` on a CPU, in both loops).

Two loops, as `generate` has:
- "eager" (the CPU default): occupied rows are kept at the front (a retiring row's place is
  taken by the last one), and a step runs on views of them over the positions they have
  written, not on every row at full capacity.
- "static" (the CUDA default): every step runs all rows over the full capacity, so its shapes
  never change. A step is two halves, each captured once as a CUDA graph on CUDA and replayed:
  sampling every row (penalty, top-k/top-p, a draw from the row slot's registered generator),
  then the transformer step (embedding, layers, logits). A free row is computed too, and
  nothing reads it. Rows still under `min_tokens` draw without EOS, which changes the draw's
  width, so they are drawn again between the halves from their own generators; once a row may
  say EOS, its slot's generator is set to where its own stopped and the graph draws it. The
  host reads the tokens and stop flags once a step (one transfer), since rows join and leave
  between steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .cache import GrowingKVCache, RowKVCache, layer_tensors
from .interface import Decodable
from .sampling import MIN_TOKENS, SamplingParams, draw
from .static import capture_graph


@dataclass
class _Row:
    key: object                 # the caller's handle for this sentence
    cap: int                    # the most tokens it may say
    generator: torch.Generator  # its own, seeded: what `generate` would draw from
    tokens: list[int] = field(default_factory=list)
    handed_over: bool = False   # static loop: its slot's generator now continues this one


class ContinuousDecoder:
    """`rows` sentences decoding at once, each at its own position of a `capacity`-position row;
    `loop` "eager", "static" or "auto" (static on CUDA). `moved` counts the rows the eager loop
    has moved to keep the occupied ones at the front."""

    def __init__(self, model: Decodable, rows: int, capacity: int, params: SamplingParams = SamplingParams(),
                 min_tokens: int = MIN_TOKENS, loop: str = "auto"):
        c, device = model.config, model.device
        if loop == "auto":
            loop = "static" if device.type == "cuda" else "eager"
        if loop not in ("eager", "static"):
            raise ValueError(f"loop must be auto, eager or static, not {loop!r}")
        self.model, self.params, self.min_tokens, self.capacity, self.loop = model, params, min_tokens, capacity, loop
        position = torch.zeros(rows, dtype=torch.long, device=device)
        self.active = torch.zeros(rows, dtype=torch.long, device=device)   # 1 where a row is occupied
        self.cache = RowKVCache(*layer_tensors(model, rows, capacity), position,
                                self.active if loop == "static" else 1)
        self.n_text = torch.zeros(rows, dtype=torch.long, device=device)   # a row's audio starts after its text
        self.slots = torch.arange(capacity, device=device)
        self.seen = torch.zeros(rows, c.vocab_size, dtype=torch.bool, device=device)
        self.logits = torch.zeros(rows, c.vocab_size, device=device)
        self.token = torch.zeros(rows, 1, dtype=torch.long, device=device)
        self.stop = torch.zeros(rows, dtype=torch.bool, device=device)
        self.slot_generators = [torch.Generator(device=device) for _ in range(rows)] if loop == "static" else []
        self.table = model.audio_position_table(capacity)
        self.occupant: list[_Row | None] = [None] * rows
        self.moved = 0
        self.graphs: dict[str, torch.cuda.CUDAGraph | None] = {}
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
        c = self.model.config
        if not self.free_rows:
            raise RuntimeError("no free row: wait for a sentence to finish")
        n_text, n_prompt = int(phones.shape[0]), int(prompt.shape[0])
        if not self.fits(n_text, n_prompt, cap):
            raise ValueError(f"{n_text + n_prompt + cap} positions do not fit the decoder's {self.capacity}")
        row = self.occupant.index(None)
        y = prompt.long()[None]
        length = n_text + n_prompt
        alone = GrowingKVCache(*layer_tensors(self.model, 1, length))
        first = self.model.prefill([phones], [bert], y, alone)
        for layer in range(c.n_layer):
            self.cache.k[layer][row, :, :length] = alone.k[layer][0, :, :length]
            self.cache.v[layer][row, :, :length] = alone.v[layer][0, :, :length]
        self.cache.position[row] = length
        self.n_text[row] = n_text
        self.active[row] = 1
        self.logits[row] = first.logits[0].float()
        self.seen[row] = False
        self.seen[row, y[0]] = True
        self.occupant[row] = _Row(key, cap, torch.Generator(device=y.device).manual_seed(seed))
        if self.loop == "static":
            self._hand_over(row)

    @torch.no_grad()
    def step(self) -> list[tuple[object, torch.Tensor]]:
        """Sample a token for every occupied row, retire those that stopped, and advance the
        rest one position. Returns (key, tokens) of each sentence that finished."""
        active = [i for i, r in enumerate(self.occupant) if r is not None]
        if not active:
            return []
        # rows still under min_tokens sample without EOS, as `generate` does at those steps
        early = [i for i in active if len(self.occupant[i].tokens) < self.min_tokens]
        if self.loop == "static":
            self._replay("sample")               # every row, from its slot's generator, EOS allowed
            if early:
                self._sample(early, eos=False)    # overwritten: these draw from their own generators
            self._replay("forward")              # every row moves on, even one that just stopped
        else:
            for group, eos in ((early, False), ([i for i in active if i not in early], True)):
                if group:
                    self._sample(group, eos)
        rows = len(self.occupant)
        host = torch.cat([self.token[:, 0], self.stop.long()]).tolist()     # the step's one wait
        finished = []
        for i in active:
            row = self.occupant[i]
            if host[rows + i]:
                finished.append(i)
                continue
            row.tokens.append(host[i])
            if len(row.tokens) >= row.cap:
                finished.append(i)
        done = [(self.occupant[i].key, torch.tensor(self.occupant[i].tokens, dtype=torch.long)) for i in finished]
        if self.loop == "eager":
            self.seen.scatter_(1, self.token, True)
        for i in sorted(finished, reverse=True):
            self._retire(i)
        if self.loop == "static":
            for i in active:
                self._hand_over(i)
        elif self.busy:
            self._advance()
        return done

    def _sample(self, group: list[int], eos: bool) -> None:
        """Draw the rows of `group` from their own generators, over the vocabulary with or without EOS."""
        c = self.model.config
        width = c.vocab_size if eos else c.vocab_size - 1
        index = torch.tensor(group, device=self.logits.device)
        self.token[index], self.stop[index] = draw(self.logits[index, :width], self.seen[index, :width], self.params,
                                                   [self.occupant[i].generator for i in group], c.EOS)

    def _hand_over(self, i: int) -> None:
        """Once a row may say EOS, the static loop's graph draws it from the row's slot generator:
        it takes over the row's own generator where that stopped (before, its draws are discarded)."""
        row = self.occupant[i]
        if row is not None and not row.handed_over and len(row.tokens) >= self.min_tokens:
            self.slot_generators[i].set_state(row.generator.get_state())
            row.handed_over = True

    def _retire(self, row: int) -> None:
        """Free `row`. The eager loop moves the last occupied row into it, so occupied rows stay
        0..n-1 and a step runs on views of the first n rows (retiring from the highest row down
        keeps this true)."""
        last = len(self.occupant) - self.free_rows - 1
        if self.loop == "eager" and last != row:
            end = int(self.cache.position[last])
            for store in (self.cache.k, self.cache.v):
                for layer in store:
                    layer[row, :, :end] = layer[last, :, :end]
            for t in (self.cache.position, self.n_text, self.logits, self.seen, self.token):
                t[row] = t[last]
            self.occupant[row] = self.occupant[last]
            self.moved += 1
            row = last
        self.occupant[row] = None
        self.active[row] = 0

    def _advance(self) -> None:
        """The eager loop's transformer step: the first n rows over the positions they have written."""
        n = len(self.occupant) - self.free_rows
        end = int(self.cache.position[:n].max()) + 1
        rows = RowKVCache([k[:n, :, :end] for k in self.cache.k], [v[:n, :, :end] for v in self.cache.v],
                          self.cache.position[:n])
        self._forward(rows, self.token[:n], self.logits[:n])

    def _forward(self, cache: RowKVCache, token: torch.Tensor, logits: torch.Tensor) -> None:
        position = cache.position
        n_text = self.n_text[:position.shape[0]]
        audio = position - n_text                 # the token's place among the audio positions
        emb = self.model.embed_audio_at(token, self.table[audio][:, None])
        mask = (self.slots[None, :cache.capacity] <= position[:, None])[:, None, None, :]
        logits.copy_(self.model.step(emb, mask, cache))

    # -- the static loop: two fixed-shape halves of a step, each a CUDA graph on a GPU ----------
    def _sample_all(self) -> None:
        token, stop = draw(self.logits, self.seen, self.params, self.slot_generators, self.model.config.EOS)
        self.token.copy_(token)
        self.stop.copy_(stop)

    def _forward_all(self) -> None:
        self.seen.scatter_(1, self.token, True)
        self._forward(self.cache, self.token, self.logits)

    def _replay(self, half: str) -> None:
        graph = self.graphs.get(half)
        if graph is not None:
            graph.replay()
        else:
            (self._sample_all if half == "sample" else self._forward_all)()

    def _capture(self) -> None:
        """Record both halves as CUDA graphs. Nothing is decoding yet."""
        state = [self.cache.position, self.logits, self.seen, self.token, self.stop]
        for half, body, generators in (("sample", self._sample_all, self.slot_generators),
                                       ("forward", self._forward_all, [])):
            self.graphs[half] = capture_graph(body, state, generators, f"the continuous step's {half} half")
