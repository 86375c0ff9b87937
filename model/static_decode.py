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

A `StaticDecoder` (buffers and graphs) is kept on the model and reused by later calls of the
same batch size, capacity bucket and sampling settings, so a sentence pays for no capture; the
prefill writes straight into its cache (so one model decodes on one thread at a time, as the
server's lock has it). It computes what the eager loop computes: the tests run
both on a CPU and compare tokens (greedy, seeded sampling per row, left-padded rows, one
decoder reused). On a CPU the eager loop stays the default: attending over the whole capacity is
slower there than over the written keys.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import torch

CHECK_EVERY = 8      # decode steps between looks at the stop flags from the host
BUCKET = 256         # capacities are rounded up to this, so sentences of similar length share a decoder
KEEP = 4             # decoders kept per model (each holds its KV cache: ~0.8 GB for 16 v2 rows of 1024, fp16)

log = logging.getLogger(__name__)


class StaticKVCache:
    """Per-layer cache tensors of fixed capacity, written one position per step at a device-held index."""

    def __init__(self, k: list[torch.Tensor], v: list[torch.Tensor]):
        self.k, self.v = k, v
        self.position = torch.zeros(1, dtype=torch.long, device=k[0].device)

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        self.k[layer].index_copy_(2, self.position, k)
        self.v[layer].index_copy_(2, self.position, v)
        return self.k[layer], self.v[layer]

    def advance(self) -> None:
        self.position.add_(1)


class StaticDecoder:
    """Every buffer a decode touches, at fixed shapes, and the step over them (sampling included):
    it samples a token for every row from `logits`, records it, and leaves the next step's logits
    there. `run(early)` replays a CUDA graph where one was captured."""

    def __init__(self, gpt, batch: int, capacity: int, params, generators: str):
        c = gpt.config
        device, dtype = gpt.bert_proj.weight.device, gpt.bert_proj.weight.dtype
        shape = (batch, c.head, capacity, c.hidden_dim // c.head)
        self.gpt, self.params, self.capacity = gpt, params, capacity
        self.cache = StaticKVCache([torch.zeros(shape, device=device, dtype=dtype) for _ in range(c.n_layer)],
                                   [torch.zeros(shape, device=device, dtype=dtype) for _ in range(c.n_layer)])
        self.key_ok = torch.ones(batch, 1, 1, capacity, dtype=torch.bool, device=device)
        self.slots = torch.arange(capacity, device=device)
        self.audio_position = torch.zeros(1, dtype=torch.long, device=device)
        self.table = gpt.ar_audio_position.rows(capacity, device, dtype)
        self.logits = torch.zeros(batch, c.vocab_size, device=device)
        self.seen = torch.zeros(batch, c.vocab_size, dtype=torch.bool, device=device)
        self.tokens = torch.zeros(batch, capacity, dtype=torch.long, device=device)
        self.step = torch.zeros(1, dtype=torch.long, device=device)
        self.caps = torch.zeros(batch, dtype=torch.long, device=device)
        self.lengths = torch.zeros(batch, dtype=torch.long, device=device)
        self.finished = torch.zeros(batch, dtype=torch.bool, device=device)
        # the graphs read these generators' states at each replay: a call copies its own in
        count = {"rows": batch, "shared": 1, "default": 0}[generators]
        self.generators = [torch.Generator(device=device) for _ in range(count)]
        self.generator = self.generators if generators == "rows" else (self.generators or [None])[0]
        self.graphs: dict[bool, torch.cuda.CUDAGraph | None] = {}

    def start(self, key_ok: torch.Tensor, y: torch.Tensor, n_text: int, logits: torch.Tensor, caps: torch.Tensor,
              generator) -> None:
        """Set up a decode after its prefill wrote `n_text` + prompt positions of the cache:
        key_ok [B, n_text + P] (False on left padding), y [B, P] the prompt's tokens."""
        n_prompt = y.shape[1]
        self.key_ok.fill_(True)
        self.key_ok[:, 0, 0, :key_ok.shape[1]] = key_ok
        self.cache.position.fill_(n_text + n_prompt)
        self.audio_position.fill_(n_prompt)
        self.logits.copy_(logits)
        self.seen.zero_().scatter_(1, y, True)
        self.step.zero_()
        self.caps.copy_(caps)
        self.lengths.copy_(caps)
        self.finished.zero_()
        given = generator if isinstance(generator, list) else [generator] if generator is not None else []
        for mine, theirs in zip(self.generators, given):
            mine.set_state(theirs.get_state())

    def _state(self) -> list[torch.Tensor]:
        """Everything a step changes but the cache's keys (a step only writes past the position)."""
        return [self.cache.position, self.audio_position, self.logits, self.seen, self.tokens, self.step,
                self.lengths, self.finished]

    def _body(self, early: bool) -> None:
        gpt, c = self.gpt, self.gpt.config
        width = c.vocab_size - 1 if early else c.vocab_size         # EOS not allowed yet
        token, stop = draw(self.logits[:, :width], self.seen[:, :width], self.params, self.generator, c.EOS)
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

    def run(self, early: bool) -> None:
        if self.cache.k[0].device.type == "cuda" and early not in self.graphs:
            self.graphs[early] = capture_graph(lambda: self._body(early), self._state(), self.generators,
                                               "the decode step")
        graph = self.graphs.get(early)
        if graph is not None:
            graph.replay()
        else:
            self._body(early)


def capture_graph(body, state: list[torch.Tensor], generators: list[torch.Generator], what: str):
    """`body` recorded as a CUDA graph, or None (with a warning) where torch cannot capture one
    of its ops: then the caller runs it eagerly. It is warmed up twice on a side stream first (as
    graphs require); `state` (what it changes) and the generators are restored after each run.
    The generators are registered, so each replay draws what the next eager call would."""
    saved = [t.clone() for t in state]
    rng = [g.get_state() for g in generators]

    def restore():
        for t, s in zip(state, saved):
            t.copy_(s)
        for g, s in zip(generators, rng):
            g.set_state(s)

    try:
        graph = torch.cuda.CUDAGraph()
        for g in generators:
            graph.register_generator_state(g)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                body()
                restore()
        torch.cuda.current_stream().wait_stream(stream)
        with torch.cuda.graph(graph):
            body()
        return graph
    except RuntimeError as e:
        log.warning("CUDA graph capture of %s failed, running it eagerly: %s", what, str(e).splitlines()[0])
        return None
    finally:
        restore()


def decoder_for(gpt, batch: int, positions: int, params, generator) -> StaticDecoder:
    """The model's decoder for `batch` rows of at least `positions`, made on first use. Its key
    holds the weights' addresses: a graph reads the weights it was captured with, so a model
    moved or converted since gets a new one."""
    capacity = -(-positions // BUCKET) * BUCKET
    kind = "rows" if isinstance(generator, list) else "shared" if generator is not None else "default"
    weights = tuple(p.data_ptr() for p in gpt.parameters())
    key = (batch, capacity, params, kind, weights)
    kept: OrderedDict = gpt.__dict__.setdefault("_static_decoders", OrderedDict())
    if key not in kept:
        while len(kept) >= KEEP:
            kept.popitem(last=False)
        kept[key] = StaticDecoder(gpt, batch, capacity, params, kind)
    kept.move_to_end(key)
    return kept[key]


def decode(gpt, decoder: StaticDecoder, h: torch.Tensor, key_ok: torch.Tensor, y: torch.Tensor, n_text: int,
           caps: torch.Tensor, max_tokens: int, min_tokens: int, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The decode loop after the prefill wrote `decoder`'s cache (`h` its last hidden states,
    `y` [B, P] the prompt's tokens). Returns the new tokens [B, max_tokens] and each row's length."""
    decoder.start(key_ok, y, n_text, gpt.ar_predict_layer(h[:, -1]), caps, generator)
    for n in range(max_tokens):
        decoder.run(early=n < min_tokens)
        if n % CHECK_EVERY == CHECK_EVERY - 1 and bool(decoder.finished.all()):
            break
    return decoder.tokens[:, :max_tokens].clone(), decoder.lengths.clone()   # the buffers are reused


def draw(logits: torch.Tensor, seen: torch.Tensor, params, generator, eos: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One token per row [B, 1] from logits [B, W] after the repetition penalty over `seen`
    [B, W], and whether the row stops [B]: it drew EOS, or EOS leads the penalised logits (as
    upstream stops). The eager loop's sampling, on device tensors only."""
    from .gpt import sample_penalized

    penalized = penalize_seen(logits, seen, params.repetition_penalty)
    token = sample_penalized(penalized, params, generator)
    return token, (token[:, 0] == eos) | (penalized.argmax(-1) == eos)


def penalize_seen(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """`penalize_repetition` from a [B, V] mask of the tokens seen so far: the same values, as
    the eager loop's gather/scatter over the token list writes each seen token once."""
    logits = logits.float()
    if penalty == 1.0:
        return logits.clone()
    return torch.where(seen, torch.where(logits < 0, logits * penalty, logits / penalty), logits)
