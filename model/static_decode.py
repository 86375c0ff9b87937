"""The GPT's decode loop with fixed shapes, for GPUs: `Text2Semantic.generate(loop="static")`.

On a GPU, eager decoding is bound by Python and kernel launches, not by the GPU (the issue
measured 453 launches and 7.3 ms of CPU per token against 1.9 ms of GPU time). Here every step
has the same shapes, so its launches can be recorded once and replayed:
- the KV cache has a fixed capacity; each step writes its key and value at a position held in a
  device tensor, and attends over the whole capacity with one mask that hides what is not
  written yet (built once per step, shared by all layers);
- the repetition penalty reads a [batch, vocab] "seen" mask instead of the growing token list;
- tokens, lengths and stops stay on the device; the host looks at them every `CHECK_EVERY`
  steps (a finished row's extra steps are cut off at its length);
- on CUDA, the transformer step (embedding, 24 layers, logits) is captured as a CUDA graph
  after a warm-up and replayed; sampling runs eagerly on the device after it (seeded per row,
  as the eager loop samples).

It computes what the eager loop computes: the tests run both on a CPU and compare tokens
(greedy, and seeded sampling per row, with left-padded rows). On a CPU the eager loop stays the
default: attending over the whole capacity is slower there than over the written keys.
"""

from __future__ import annotations

import torch

CHECK_EVERY = 8  # decode steps between looks at the stop flags from the host


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
    """One decode step of fixed shape: token [B, 1] in, logits [B, V] out, through static
    buffers; `run()` replays a CUDA graph where there is one."""

    def __init__(self, gpt, cache: StaticKVCache, key_ok: torch.Tensor, n_prompt: int, graph: bool):
        self.gpt, self.cache = gpt, cache
        b, capacity = key_ok.shape
        device = key_ok.device
        self.key_ok = key_ok[:, None, None, :]
        self.slots = torch.arange(capacity, device=device)
        self.token = torch.zeros(b, 1, dtype=torch.long, device=device)
        self.audio_position = torch.full((1,), n_prompt, dtype=torch.long, device=device)
        self.table = gpt.ar_audio_position.rows(capacity, device, gpt.ar_audio_embedding.word_embeddings.weight.dtype)
        self.logits: torch.Tensor | None = None
        self.graph = None
        if graph:
            self._capture()

    def _forward(self) -> torch.Tensor:
        gpt = self.gpt
        # what SinePositions.forward adds at this step's position, read from a device index
        emb = gpt.ar_audio_embedding(self.token) + gpt.ar_audio_position.alpha * self.table[self.audio_position][None]
        mask = self.key_ok & (self.slots <= self.cache.position)[None, None, None, :]
        h = gpt._run(emb, mask, self.cache)
        self.audio_position.add_(1)
        return gpt.ar_predict_layer(h[:, -1])

    def _capture(self) -> None:
        # warm up on a side stream (as CUDA graphs require), then record one step; both advance
        # the cache, so the position is restored after each
        start, audio = self.cache.position.clone(), self.audio_position.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._forward()
                self.cache.position.copy_(start)
                self.audio_position.copy_(audio)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = self._forward()
        self.cache.position.copy_(start)
        self.audio_position.copy_(audio)

    def run(self, token: torch.Tensor) -> torch.Tensor:
        self.token.copy_(token)
        if self.graph is not None:
            self.graph.replay()
            return self.logits
        return self._forward()


def decode(gpt, h: torch.Tensor, cache, key_ok: torch.Tensor, y: torch.Tensor, n_prompt: int, caps: torch.Tensor,
           max_tokens: int, min_tokens: int, params, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The decode loop after the prefill (`h` its last hidden states, `cache` its KVCache at full
    capacity, `y` [B, P] the prompt's tokens). Returns the new tokens [B, max_tokens] and each
    row's length."""
    from .gpt import sample_penalized

    c = gpt.config
    b, device = y.shape[0], y.device
    static = StaticKVCache(cache.k, cache.v, cache.length)
    step_fn = StaticStep(gpt, static, key_ok[:, :cache.capacity], n_prompt, graph=device.type == "cuda")
    seen = torch.zeros(b, c.vocab_size, dtype=torch.bool, device=device)
    seen.scatter_(1, y, True)
    tokens = torch.zeros(b, max_tokens, dtype=torch.long, device=device)
    lengths = caps.clone()
    finished = torch.zeros(b, dtype=torch.bool, device=device)
    logits = gpt.ar_predict_layer(h[:, -1])
    for step in range(max_tokens):
        if step < min_tokens:
            logits = logits[:, :-1]           # EOS not allowed yet
        penalized = penalize_seen(logits, seen[:, :logits.shape[1]], params.repetition_penalty)
        token = sample_penalized(penalized, params, generator)
        stop = (token[:, 0] == c.EOS) | (penalized.argmax(-1) == c.EOS)
        lengths = torch.where(stop & ~finished, torch.full_like(lengths, step), lengths)
        finished = finished | stop | (step + 1 >= caps)
        tokens[:, step] = token[:, 0]
        seen.scatter_(1, token, True)
        if step + 1 == max_tokens or (step % CHECK_EVERY == CHECK_EVERY - 1 and bool(finished.all())):
            break
        logits = step_fn.run(token)
    return tokens, lengths


def penalize_seen(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """`penalize_repetition` from a [B, V] mask of the tokens seen so far: the same values, as
    the eager loop's gather/scatter over the token list writes each seen token once."""
    logits = logits.float()
    if penalty == 1.0:
        return logits.clone()
    return torch.where(seen, torch.where(logits < 0, logits * penalty, logits / penalty), logits)
