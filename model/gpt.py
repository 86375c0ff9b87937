"""Text2Semantic decoder (the "GPT"): phones + BERT features -> semantic tokens, with a KV cache.

Sequence layout: [phones of reference + target text | semantic tokens of the reference | new tokens].
Phones attend to all phones (and never to audio); audio tokens attend to every phone and
causally to earlier audio tokens. Each stream has its own sine positions scaled by a learned
alpha. Layers are post-norm. Generation stops at EOS (=1024), which is not allowed during the
first MIN_TOKENS steps, or at the cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import GPTConfig

MIN_TOKENS = 11      # EOS is masked for the first steps (about 0.4 s of audio)
MAX_TOKENS = 1500    # hard cap: 60 s at 25 tokens/s
CACHE_STEP = 128     # generated positions a KV cache first holds room for (it doubles as needed)


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x @ W.T + b where the matrices may be stored in fp16 (see `half_matrices`).

    One row at a time (decoding) runs in the weight's precision, which halves the bytes read;
    many rows (the prompt) are compute-bound, where a CPU's fp32 kernels win, so the matrix is
    widened for that one product.
    """
    if weight.dtype == x.dtype:
        return F.linear(x, weight, bias)
    rows = x.numel() // x.shape[-1]
    if rows > 8:
        return F.linear(x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype))
    return F.linear(x.to(weight.dtype), weight, None if bias is None else bias.to(weight.dtype)).to(x.dtype)


class Linear(nn.Linear):
    def forward(self, x):
        return _linear(x, self.weight, self.bias)


class _Embedding(nn.Module):
    def __init__(self, dim: int, vocab: int):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, dim)

    def forward(self, x):
        return self.word_embeddings(x)


class SinePositions(nn.Module):
    """x + alpha * PE(position); PE interleaves sin (even dims) and cos (odd dims)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.alpha = nn.Parameter(torch.ones(1))
        self._cached: torch.Tensor | None = None  # the table so far: decoding reads one row a step

    def table(self, n: int, device, dtype) -> torch.Tensor:
        pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
        div = torch.exp(torch.arange(0, self.dim, 2, device=device, dtype=torch.float32)
                        * (-math.log(10000.0) / self.dim))
        pe = torch.zeros(n, self.dim, device=device)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        return pe.to(dtype)

    def rows(self, n: int, device, dtype) -> torch.Tensor:
        """A table of at least `n` rows, computed once and extended by doubling: each row depends
        only on its position, so a longer table holds the same rows."""
        pe = self._cached
        stale = pe is None or pe.shape[0] < n or pe.device != device or pe.dtype != dtype
        if stale or (pe.is_inference() and not torch.is_inference_mode_enabled()):  # autograd can't save those
            pe = self._cached = self.table(max(n, 256, 0 if pe is None else 2 * pe.shape[0]), device, dtype)
        return pe

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        n = start + x.shape[1]
        return x + self.alpha * self.rows(n, x.device, x.dtype)[start:n][None]


class SelfAttention(nn.Module):
    """torch.nn.MultiheadAttention's parameter layout (in_proj_weight, out_proj) with a KV cache."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x, mask=None, cache: "KVCache | None" = None, layer: int = 0):
        b, t, d = x.shape
        q, k, v = _linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        if cache is not None:
            k, v = cache.append(layer, k, v)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


class Layer(nn.Module):
    def __init__(self, c: GPTConfig):
        super().__init__()
        self.self_attn = SelfAttention(c.hidden_dim, c.head)
        self.linear1 = Linear(c.hidden_dim, c.linear_units)
        self.linear2 = Linear(c.linear_units, c.hidden_dim)
        self.norm1 = nn.LayerNorm(c.hidden_dim)
        self.norm2 = nn.LayerNorm(c.hidden_dim)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x, mask=None, cache=None, layer: int = 0):
        x = self.norm1(x + self.drop(self.self_attn(x, mask, cache, layer)))
        return self.norm2(x + self.drop(self.linear2(self.drop(F.relu(self.linear1(x))))))


class _Stack(nn.Module):
    def __init__(self, c: GPTConfig):
        super().__init__()
        self.layers = nn.ModuleList(Layer(c) for _ in range(c.n_layer))


class KVCache:
    """Keys/values of every layer, written in place; `append` returns the filled view.

    It starts at `capacity` positions and doubles when full (up to `limit`), rather than holding
    room for every item's token cap from the start: caps are generous (a quarter of a normal
    reading rate), so a full-size cache for a batch of 16 v2 sentences held about 1 GB that
    decoding rarely reached. Each layer has its own tensors and grows on its own, so a growth
    holds at most one layer's old and new copies at once."""

    def __init__(self, n_layer: int, batch: int, heads: int, head_dim: int, capacity: int, device, dtype,
                 limit: int | None = None):
        shape = (batch, heads, capacity, head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layer)]
        self.limit = max(capacity, limit or capacity)
        self.length = 0
        self._pending = 0

    @classmethod
    def over(cls, k: list[torch.Tensor], v: list[torch.Tensor]) -> "KVCache":
        """An empty cache writing into tensors someone else keeps (a static decoder's), which
        never grows."""
        cache = cls.__new__(cls)
        cache.k, cache.v, cache.limit = k, v, k[0].shape[2]
        cache.length = cache._pending = 0
        return cache

    @property
    def capacity(self) -> int:
        return self.k[-1].shape[2]

    def _grow(self, layer: int, needed: int) -> None:
        size = min(self.limit, max(needed, 2 * self.k[layer].shape[2]))
        for store in (self.k, self.v):
            old = store[layer]
            store[layer] = old.new_zeros(*old.shape[:2], size, old.shape[3])
            store[layer][:, :, :self.length] = old[:, :, :self.length]
            del old

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        start, n = self.length, k.shape[2]
        if start + n > self.k[layer].shape[2]:
            self._grow(layer, start + n)
        self.k[layer][:, :, start:start + n] = k
        self.v[layer][:, :, start:start + n] = v
        self._pending = n
        return self.k[layer][:, :, :start + n], self.v[layer][:, :, :start + n]

    def advance(self) -> None:
        self.length += self._pending


@dataclass(frozen=True)
class SamplingParams:
    top_k: int = 15
    top_p: float = 1.0
    temperature: float = 1.0
    repetition_penalty: float = 1.35


def penalize_repetition(logits: torch.Tensor, previous: torch.Tensor, penalty: float) -> torch.Tensor:
    """fp32 copy of the logits with every token already in `previous` made less likely
    (negative logits multiplied, positive ones divided by `penalty`)."""
    logits = logits.float().clone()
    if previous.numel() and penalty != 1.0:
        seen = logits.gather(1, previous)
        seen = torch.where(seen < 0, seen * penalty, seen / penalty)
        logits.scatter_(1, previous, seen)
    return logits


def sample_next(logits: torch.Tensor, previous: torch.Tensor, p: SamplingParams,
                generator: torch.Generator | None) -> torch.Tensor:
    """Upstream's order: repetition penalty -> top-p -> temperature -> top-k -> sample. [B, V] -> [B, 1]."""
    return sample_penalized(penalize_repetition(logits, previous, p.repetition_penalty), p, generator)


def sample_penalized(logits: torch.Tensor, p: SamplingParams,
                     generator: torch.Generator | list[torch.Generator] | None) -> torch.Tensor:
    """`sample_next` after the repetition penalty: top-p -> temperature -> top-k -> sample.
    `generator` is one for the batch, or one per row (each row then draws as it would alone)."""
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


class Text2Semantic(nn.Module):
    def __init__(self, c: GPTConfig):
        super().__init__()
        self.config = c
        d = c.embedding_dim
        self.bert_proj = nn.Linear(c.bert_dim, d)
        self.ar_text_embedding = _Embedding(d, c.phoneme_vocab_size)
        self.ar_text_position = SinePositions(d)
        self.ar_audio_embedding = _Embedding(d, c.vocab_size)
        self.ar_audio_position = SinePositions(d)
        self.h = _Stack(c)
        self.ar_predict_layer = Linear(d, c.vocab_size, bias=False)

    def half_matrices(self) -> "Text2Semantic":
        """Store the transformer's matrices in fp16 and keep everything else in fp32.

        Decoding one token reads every weight once, so on a CPU it is bound by memory
        bandwidth: half the bytes is nearly twice the speed. Weights come from fp16 files, so
        this keeps them exactly; only each matrix product's inputs are rounded to fp16.
        """
        for layer in self.h.layers:
            attn = layer.self_attn
            attn.in_proj_weight.data = attn.in_proj_weight.data.half()
            for lin in (attn.out_proj, layer.linear1, layer.linear2):
                lin.weight.data = lin.weight.data.half()
        self.ar_predict_layer.weight.data = self.ar_predict_layer.weight.data.half()
        return self

    def embed_text(self, phones: torch.Tensor, bert: torch.Tensor) -> torch.Tensor:
        """phones [B, N], bert [B, bert_dim, N] -> [B, N, d]."""
        x = self.ar_text_embedding(phones) + self.bert_proj(bert.transpose(1, 2).to(self.bert_proj.weight.dtype))
        return self.ar_text_position(x)

    def _run(self, x, mask=None, cache=None):
        for i, layer in enumerate(self.h.layers):
            x = layer(x, mask, cache, i)
        if cache is not None:
            cache.advance()
        return x

    @staticmethod
    def prefix_mask(n_text: int, n_audio: int, device) -> torch.Tensor:
        """Boolean [T, T] mask, True = may attend: text sees text; audio sees text + earlier audio."""
        t = n_text + n_audio
        allowed = torch.zeros(t, t, dtype=torch.bool, device=device)
        allowed[:, :n_text] = True
        allowed[n_text:, n_text:] = torch.tril(torch.ones(n_audio, n_audio, dtype=torch.bool, device=device))
        return allowed

    # -- training ---------------------------------------------------------------------------
    def teacher_forced(self, phones, phone_lengths, bert, codes, code_lengths):
        """Logits for every target, the targets, and which of them are real (not padding).

        Targets are the codes followed by EOS, as upstream trains them: the first code is
        predicted from the last phone's position, every later code and EOS from the code before.
        Returns logits [B, L + 1, V], targets [B, L + 1], valid [B, L + 1] for codes [B, L]."""
        eos = self.config.EOS
        b = phones.shape[0]
        y_pad = torch.arange(codes.shape[1], device=codes.device)[None] >= code_lengths[:, None]
        targets = F.pad(codes.masked_fill(y_pad, 0), (0, 1), value=0)
        targets[torch.arange(b), code_lengths] = eos
        inputs = targets[:, :-1]          # the codes themselves; position i predicts target i + 1
        n_text, n_audio = phones.shape[1], inputs.shape[1]
        x = self.embed_text(phones, bert)
        y = self.ar_audio_position(self.ar_audio_embedding(inputs))
        pad = torch.cat([
            torch.arange(n_text, device=phones.device)[None] >= phone_lengths[:, None],
            torch.arange(n_audio, device=codes.device)[None] >= code_lengths[:, None]], dim=1)
        allowed = self.prefix_mask(n_text, n_audio, phones.device)[None, None] & ~pad[:, None, None, :]
        # a fully blocked row (padding) would give NaN: let it see itself
        allowed = allowed | torch.eye(n_text + n_audio, dtype=torch.bool, device=phones.device)
        h = self._run(torch.cat([x, y], dim=1), allowed)
        last_phone = h[torch.arange(b, device=h.device), phone_lengths - 1]          # [B, d]
        logits = self.ar_predict_layer(torch.cat([last_phone[:, None], h[:, n_text:]], dim=1))
        valid = torch.arange(n_audio + 1, device=codes.device)[None] <= code_lengths[:, None]
        return logits, targets, valid

    def forward(self, phones, phone_lengths, bert, codes, code_lengths):
        """Summed cross-entropy over the batch, and top-1 accuracy over predicted tokens."""
        logits, targets, valid = self.teacher_forced(phones, phone_lengths, bert, codes, code_lengths)
        loss = F.cross_entropy(logits[valid], targets[valid], reduction="sum")
        acc = (logits[valid].argmax(-1) == targets[valid]).float().mean()
        return loss, acc

    # -- inference --------------------------------------------------------------------------
    def kv_cache_bytes(self, rows: int, positions: int) -> int:
        """The most a `generate` call's KV cache takes: keys and values of every layer for `rows`
        items of `positions` (text + prompt + token cap) each."""
        c = self.config
        return 2 * c.n_layer * rows * positions * c.hidden_dim * self.bert_proj.weight.element_size()

    @torch.no_grad()
    def generate(self, phones: list[torch.Tensor], bert: list[torch.Tensor], prompt: torch.Tensor | None,
                 params: SamplingParams = SamplingParams(), seed: int | list[int] | None = 0,
                 use_cache: bool = True, max_tokens: int | list[int] = MAX_TOKENS,
                 min_tokens: int = MIN_TOKENS, loop: str = "auto") -> list[torch.Tensor]:
        """Sample semantic tokens for several texts at once, all continuing one reference prompt.

        phones[i] [N_i] holds reference + target phone ids, bert[i] [bert_dim, N_i], prompt [P]
        the reference's semantic tokens. Shorter texts are left-padded and their padding is
        masked out, so every item sees exactly what it would see alone. Returns each item's
        new tokens without EOS. `min_tokens` steps pass before EOS may be sampled. `seed` and
        `max_tokens` are one for the batch, or one per item: then each item samples and stops as
        it would alone, whatever else is in the batch (what a server batching requests needs).
        `loop`: "eager" (the CPU default), or "static" (the CUDA default): fixed-shape steps
        replayed as a CUDA graph on a GPU (`model.static_decode`); both give the same tokens.
        """
        c = self.config
        b, device = len(phones), phones[0].device
        caps = torch.tensor(max_tokens if isinstance(max_tokens, list) else [max_tokens] * b, device=device)
        max_tokens = int(caps.max())
        if isinstance(seed, list):
            generator = [torch.Generator(device=device).manual_seed(s) for s in seed]
        else:
            generator = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
        n_text = max(int(p.shape[0]) for p in phones)
        x = torch.zeros(b, n_text, c.embedding_dim, device=device)
        key_ok = torch.ones(b, n_text, dtype=torch.bool, device=device)
        for i, (p, e) in enumerate(zip(phones, bert)):
            x[i, n_text - p.shape[0]:] = self.embed_text(p[None], e[None])[0]
            key_ok[i, :n_text - p.shape[0]] = False
        y = (prompt if prompt is not None else torch.zeros(0, device=device)).long()[None].expand(b, -1)
        n_prompt = y.shape[1]
        xy = torch.cat([x.to(self.bert_proj.weight.dtype),
                        self.ar_audio_position(self.ar_audio_embedding(y))], dim=1)
        key_ok = torch.cat([key_ok, torch.ones(b, n_prompt + max_tokens, dtype=torch.bool, device=device)], 1)

        def mask(t: int) -> torch.Tensor:
            allowed = self.prefix_mask(n_text, t - n_text, device)[None] & key_ok[:, None, :t]
            return (allowed | torch.eye(t, dtype=torch.bool, device=device))[:, None]

        if loop == "auto":
            loop = "static" if device.type == "cuda" and use_cache else "eager"
        if loop not in ("eager", "static") or (loop == "static" and not use_cache):
            raise ValueError(f"loop must be auto, eager or static (static needs the cache), not {loop!r}")
        cache, full = None, n_text + n_prompt + max_tokens + 1
        if loop == "static":
            from .static_decode import decode, decoder_for

            # the prefill writes straight into the reused decoder's fixed-capacity cache
            decoder = decoder_for(self, b, full, params, generator)
            cache = KVCache.over(decoder.cache.k, decoder.cache.v)
        elif use_cache:
            start = min(full, n_text + n_prompt + CACHE_STEP)
            cache = KVCache(c.n_layer, b, c.head, c.hidden_dim // c.head, start, device, xy.dtype, limit=full)
        h = self._run(xy, mask(xy.shape[1]), cache)
        if loop == "static":
            tokens, lengths = decode(self, decoder, h, key_ok, y, n_text, caps, max_tokens, min_tokens, generator)
            return [tokens[i, :int(lengths[i])] for i in range(b)]
        finished = torch.zeros(b, dtype=torch.bool, device=device)
        lengths = caps.clone()
        # a new token may see every cached key unless some row is left-padded: then no mask at all
        # (a boolean mask per layer per token costs ~15 % of a CPU step)
        unpadded = bool(key_ok.all())
        for step in range(max_tokens):
            logits = self.ar_predict_layer(h[:, -1])
            if step < min_tokens:
                logits = logits[:, :-1]           # EOS not allowed yet
            # upstream stops when the sample is EOS or when EOS leads the *penalised* logits
            penalized = penalize_repetition(logits, y, params.repetition_penalty)
            token = sample_penalized(penalized, params, generator)
            stop = (token[:, 0] == c.EOS) | (penalized.argmax(-1) == c.EOS)
            lengths[stop & ~finished] = step
            finished |= stop | (step + 1 >= caps)      # a row's own cap: as if it ran alone
            y = torch.cat([y, token], dim=1)
            if bool(finished.all()):
                break
            emb = self.ar_audio_position(self.ar_audio_embedding(token), start=n_prompt + step)
            if cache is not None:
                t = cache.length + 1
                h = self._run(emb, None if unpadded else key_ok[:, None, None, :t], cache)
            else:
                xy = torch.cat([xy, emb], dim=1)
                h = self._run(xy, mask(xy.shape[1]))
        new = y[:, n_prompt:]
        return [new[i, :int(lengths[i])] for i in range(b)]
