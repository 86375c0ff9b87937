"""The decode loop with fixed shapes, for GPUs: `Text2Semantic.generate(loop="static")`.

On a GPU, eager decoding is bound by Python and kernel launches, not by the GPU (the issue
measured 453 launches and 7.3 ms of CPU per token against 1.9 ms of GPU time). Here every step
has the same shapes, so its launches can be recorded once and replayed:
- the KV cache has a fixed capacity (`StaticKVCache`); each step writes its key and value at a
  position held in a device tensor, and attends over the whole capacity with one mask that
  hides what is not written yet (built once per step, shared by all layers);
- a step is the whole of it: repetition penalty (from a [batch, vocab] "seen" mask), top-p/top-k,
  the seeded draw, the stop flags, writing the token, then the network step (embedding, layers,
  logits) for the next one;
- tokens, lengths and stops stay on the device; the host looks at them every `CHECK_EVERY`
  steps (a finished row's extra steps are cut off at its length);
- on CUDA each step is captured as a CUDA graph after a warm-up and replayed. There are two:
  steps before `min_tokens` draw over the vocabulary without EOS, as the eager loop does, and
  the draw's width is part of the graph. The generators are registered with the graphs, so
  replay n draws what eager step n would (torch's graph-safe philox state).

A `StaticDecoder` (buffers and graphs) is kept in the model's `DecoderCache` and reused by later
calls of the same batch size, capacity bucket and sampling settings, so a sentence pays for no
capture; the prefill writes straight into its cache (so one model decodes on one thread at a
time, as the server's lock has it). It computes what the eager loop computes: the tests run
both on a CPU and compare tokens (greedy, seeded sampling per row, left-padded rows, one
decoder reused). On a CPU the eager loop stays the default: attending over the whole capacity is
slower there than over the written keys.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator

import torch

from .cache import GrowingKVCache, StaticKVCache, layer_tensors
from .interface import Decodable, DecodeBatch, Prefill
from .sampling import SamplingParams, draw

CHECK_EVERY = 8      # decode steps between looks at the stop flags from the host
BUCKET = 256         # capacities are rounded up to this, so sentences of similar length share a decoder
KEEP = 4             # decoders kept per model (each holds its KV cache: ~0.8 GB for 16 v2 rows of 1024, fp16)

log = logging.getLogger(__name__)


class StaticDecoder:
    """Every buffer a decode touches, at fixed shapes, and the step over them (sampling included):
    it samples a token for every row from `logits`, records it, and leaves the next step's logits
    there. `run(early)` replays a CUDA graph where one was captured. `generators`: "rows" (one
    per row), "shared" (one for the batch) or "default" (torch's)."""

    def __init__(self, model: Decodable, batch: int, capacity: int, params: SamplingParams, generators: str):
        c, device = model.config, model.device
        self.model, self.params, self.capacity = model, params, capacity
        self.cache = StaticKVCache(*layer_tensors(model, batch, capacity))
        self.key_ok = torch.ones(batch, 1, 1, capacity, dtype=torch.bool, device=device)
        self.slots = torch.arange(capacity, device=device)
        self.audio_position = torch.zeros(1, dtype=torch.long, device=device)
        self.table = model.audio_position_table(capacity)
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

    def prefill_cache(self) -> GrowingKVCache:
        """A cache for the prefill that writes straight into this decoder's keys and values."""
        return GrowingKVCache(self.cache.k, self.cache.v)

    def start(self, first: Prefill, caps: torch.Tensor, generator) -> None:
        """Set up a decode after `first` (its prefill) wrote the phone and prompt positions of the cache."""
        n_prompt = first.prompt.shape[1]
        self.key_ok.fill_(True)
        self.key_ok[:, 0, 0, :first.key_ok.shape[1]] = first.key_ok
        self.cache.position.fill_(first.n_text + n_prompt)
        self.audio_position.fill_(n_prompt)
        self.logits.copy_(first.logits)
        self.seen.zero_().scatter_(1, first.prompt, True)
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
        model, c = self.model, self.model.config
        width = c.vocab_size - 1 if early else c.vocab_size         # EOS not allowed yet
        token, stop = draw(self.logits[:, :width], self.seen[:, :width], self.params, self.generator, c.EOS)
        self.lengths.copy_(torch.where(stop & ~self.finished, self.step, self.lengths))
        self.finished.logical_or_(stop | (self.step + 1 >= self.caps))
        self.tokens.scatter_(1, self.step.expand(token.shape[0], 1), token)
        self.seen.scatter_(1, token, True)
        self.step.add_(1)
        # the next token's logits (after the last token too: a graph has no "last" step)
        emb = model.embed_audio_at(token, self.table[self.audio_position][None])
        mask = self.key_ok & (self.slots <= self.cache.position)[None, None, None, :]
        self.logits.copy_(model.step(emb, mask, self.cache))
        self.audio_position.add_(1)

    def run(self, early: bool) -> None:
        if self.cache.k[0].device.type == "cuda" and early not in self.graphs:
            self.graphs[early] = capture_graph(lambda: self._body(early), self._state(), self.generators,
                                               "the decode step")
        graph = self.graphs.get(early)
        if graph is not None:
            graph.replay()
        else:
            self._body(early)


class DecoderCache:
    """A model's `StaticDecoder`s, the most recently used `KEEP`, made on first use.

    A decoder serves calls of one batch size, capacity bucket, sampling settings and kind of
    generator. Its key also holds the weights' addresses: a graph reads the weights it was
    captured with, so a model moved or converted since gets a new one."""

    def __init__(self):
        self._kept: OrderedDict[tuple, StaticDecoder] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def __iter__(self) -> Iterator[StaticDecoder]:
        return iter(list(self._kept.values()))

    def get(self, model: Decodable, batch: DecodeBatch) -> StaticDecoder:
        """The decoder for `batch` on `model`."""
        capacity = -(-batch.positions // BUCKET) * BUCKET
        generator = batch.generator
        kind = "rows" if isinstance(generator, list) else "shared" if generator is not None else "default"
        key = (batch.size, capacity, batch.params, kind, tuple(p.data_ptr() for p in model.parameters()))
        if key not in self._kept:
            while len(self._kept) >= KEEP:
                self._kept.popitem(last=False)
            self._kept[key] = StaticDecoder(model, batch.size, capacity, batch.params, kind)
        self._kept.move_to_end(key)
        return self._kept[key]


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


def decode(model: Decodable, batch: DecodeBatch, decoders: DecoderCache) -> list[torch.Tensor]:
    """Each row's new tokens, without EOS: the prefill writes the cache of the decoder `decoders`
    keeps for `batch`, then its steps run."""
    decoder = decoders.get(model, batch)
    first = model.prefill(batch.phones, batch.bert, batch.prompt, decoder.prefill_cache())
    decoder.start(first, batch.caps, batch.generator)
    for n in range(batch.max_tokens):
        decoder.run(early=n < batch.min_tokens)
        if n % CHECK_EVERY == CHECK_EVERY - 1 and bool(decoder.finished.all()):
            break
    tokens, lengths = decoder.tokens[:, :batch.max_tokens], decoder.lengths.tolist()
    return [tokens[i, :lengths[i]].clone() for i in range(batch.size)]    # the buffers are reused
