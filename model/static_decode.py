"""The GPT's decode loop with fixed shapes, for GPUs: `Text2Semantic.generate(loop="static")`.

On a GPU, eager decoding is bound by Python and kernel launches, not by the GPU (the issue
measured 453 launches and 7.3 ms of CPU per token against 1.9 ms of GPU time). Here every step
has the same shapes, so its launches can be recorded once and replayed:
- the KV cache has a fixed capacity; each step writes its key and value at a position held in a
  device tensor, and attends over the whole capacity with one mask that hides what is not
  written yet (built once per step, shared by all layers);
- a step is the whole of it: repetition penalty (from a [batch, vocab] "seen" mask instead of
  the growing token list), top-p/top-k, the seeded draw, the stop flags, writing the token,
  then the transformer (embedding, 24 layers, logits) for the next one;
- tokens, lengths and stops stay on the device; the host looks at them every `CHECK_EVERY`
  steps (a finished row's extra steps are cut off at its length);
- on CUDA each step is captured as a CUDA graph after a warm-up and replayed. There are two:
  steps before `min_tokens` draw over the vocabulary without EOS, as the eager loop does, and
  the draw's width is part of the graph. The generators are registered with the graphs, so
  replay n draws what eager step n would (torch's graph-safe philox state).

It computes what the eager loop computes: the tests run both on a CPU and compare tokens
(greedy, and seeded sampling per row, with left-padded rows). On a CPU the eager loop stays the
default: attending over the whole capacity is slower there than over the written keys.
"""

from __future__ import annotations

import logging

import torch

CHECK_EVERY = 8  # decode steps between looks at the stop flags from the host

log = logging.getLogger(__name__)


class StaticKVCache:
    """The prefill's per-layer cache tensors, written one position per step at a device-held index."""

    def __init__(self, k: list[torch.Tensor], v: list[torch.Tensor], length: int):
        self.k, self.v = k, v
        self.position = torch.full((1,), length, dtype=torch.long, device=k[0].device)

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        self.k[layer].index_copy_(2, self.position, k)
        self.v[layer].index_copy_(2, self.position, v)
        return self.k[layer], self.v[layer]

    def advance(self) -> None:
        self.position.add_(1)


class StaticStep:
    """One decode step of fixed shape, sampling included, on device buffers only: it samples a
    token for every row from `logits`, records it, and leaves the next step's logits there.
    `run(early)` replays a CUDA graph where there is one."""

    def __init__(self, gpt, cache: StaticKVCache, key_ok: torch.Tensor, n_prompt: int, y: torch.Tensor,
                 logits: torch.Tensor, caps: torch.Tensor, max_tokens: int, params, generator):
        c = gpt.config
        b, capacity = key_ok.shape
        device = key_ok.device
        self.gpt, self.cache, self.params, self.generator = gpt, cache, params, generator
        self.key_ok = key_ok[:, None, None, :]
        self.slots = torch.arange(capacity, device=device)
        self.audio_position = torch.full((1,), n_prompt, dtype=torch.long, device=device)
        self.table = gpt.ar_audio_position.rows(capacity, device, gpt.ar_audio_embedding.word_embeddings.weight.dtype)
        self.logits = logits.float()
        self.seen = torch.zeros(b, c.vocab_size, dtype=torch.bool, device=device).scatter_(1, y, True)
        self.tokens = torch.zeros(b, max_tokens, dtype=torch.long, device=device)
        self.step = torch.zeros(1, dtype=torch.long, device=device)
        self.caps, self.lengths = caps, caps.clone()
        self.finished = torch.zeros(b, dtype=torch.bool, device=device)
        self.graphs: dict[bool, torch.cuda.CUDAGraph] = {}

    def _state(self) -> list[torch.Tensor]:
        """Everything a step changes but the cache's keys (a step only writes past the position)."""
        return [self.cache.position, self.audio_position, self.logits, self.seen, self.tokens, self.step,
                self.lengths, self.finished]

    def _generators(self) -> list[torch.Generator]:
        g = self.generator
        return list(g) if isinstance(g, list) else [g] if g is not None else []

    def _body(self, early: bool) -> None:
        from .gpt import sample_penalized

        gpt, c = self.gpt, self.gpt.config
        width = c.vocab_size - 1 if early else c.vocab_size         # EOS not allowed yet
        penalized = penalize_seen(self.logits[:, :width], self.seen[:, :width], self.params.repetition_penalty)
        token = sample_penalized(penalized, self.params, self.generator)
        stop = (token[:, 0] == c.EOS) | (penalized.argmax(-1) == c.EOS)
        self.lengths.copy_(torch.where(stop & ~self.finished, self.step, self.lengths))
        self.finished.logical_or_(stop | (self.step + 1 >= self.caps))
        self.tokens.scatter_(1, self.step.expand(token.shape[0], 1), token)
        self.seen.scatter_(1, token, True)
        self.step.add_(1)
        # the next token's logits (after the last token too: a graph has no "last" step)
        emb = gpt.ar_audio_embedding(token) + gpt.ar_audio_position.alpha * self.table[self.audio_position][None]
        mask = self.key_ok & (self.slots <= self.cache.position)[None, None, None, :]
        h = gpt._run(emb, mask, self.cache)
        self.audio_position.add_(1)
        self.logits.copy_(gpt.ar_predict_layer(h[:, -1]))

    def capture(self, early: bool) -> None:
        """Record the step as a CUDA graph: warm up on a side stream (as graphs require), then
        record. Both would advance the decode, so its state and the generators are restored."""
        saved = [t.clone() for t in self._state()]
        generators = self._generators()
        rng = [g.get_state() for g in generators]

        def restore():
            for t, s in zip(self._state(), saved):
                t.copy_(s)
            for g, s in zip(generators, rng):
                g.set_state(s)

        graph = torch.cuda.CUDAGraph()
        for g in generators:
            graph.register_generator_state(g)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._body(early)
                restore()
        torch.cuda.current_stream().wait_stream(stream)
        with torch.cuda.graph(graph):
            self._body(early)
        restore()
        self.graphs[early] = graph

    def run(self, early: bool) -> None:
        graph = self.graphs.get(early)
        if graph is not None:
            graph.replay()
        else:
            self._body(early)


def decode(gpt, h: torch.Tensor, cache, key_ok: torch.Tensor, y: torch.Tensor, n_prompt: int, caps: torch.Tensor,
           max_tokens: int, min_tokens: int, params, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The decode loop after the prefill (`h` its last hidden states, `cache` its KVCache at full
    capacity, `y` [B, P] the prompt's tokens). Returns the new tokens [B, max_tokens] and each
    row's length."""
    static = StaticKVCache(cache.k, cache.v, cache.length)
    step = StaticStep(gpt, static, key_ok[:, :cache.capacity], n_prompt, y, gpt.ar_predict_layer(h[:, -1]),
                      caps, max_tokens, params, generator)
    if y.device.type == "cuda":
        try:
            for early in {n < min_tokens for n in range(max_tokens)}:
                step.capture(early)
        except RuntimeError as e:  # an op torch cannot capture here: the same steps, eagerly
            step.graphs.clear()
            log.warning("CUDA graph capture failed, decoding without graphs: %s", str(e).splitlines()[0])
    for n in range(max_tokens):
        step.run(early=n < min_tokens)
        if n % CHECK_EVERY == CHECK_EVERY - 1 and bool(step.finished.all()):
            break
    return step.tokens, step.lengths


def penalize_seen(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """`penalize_repetition` from a [B, V] mask of the tokens seen so far: the same values, as
    the eager loop's gather/scatter over the token list writes each seen token once."""
    logits = logits.float()
    if penalty == 1.0:
        return logits.clone()
    return torch.where(seen, torch.where(logits < 0, logits * penalty, logits / penalty), logits)
